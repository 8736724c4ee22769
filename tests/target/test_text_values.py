"""What lands in a contact's name or text custom field, for every kind of value."""

from __future__ import annotations

import datetime as dt
import decimal
from collections import Counter

import pytest
from target_sendgrid_contacts.mapping import ContactMapper
from target_sendgrid_contacts.text_values import strip_controls, text_value


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Ann", "Ann"),
        ("  Ann Marie  ", "Ann Marie"),
        ("A\x00nn", "Ann"),
        ("\x1b[31mAnn\x1b[0m", "[31mAnn[0m"),
        ("Ann\x7f", "Ann"),
        ("Ann\x9b", "Ann"),  # C1 control (CSI)
        ("Ann\x01\x02\x08", "Ann"),
        ("Ann\nMarie", "Ann Marie"),
        ("Ann\t\tMarie\r\n", "Ann Marie"),
        ("Zoë", "Zoë"),
        ("Ngọc Ánh", "Ngọc Ánh"),
        ("李小龙", "李小龙"),
        ("Мария", "Мария"),
        ("محمد", "محمد"),
        ("श्री\u200d", "श्री\u200d"),  # a zero-width joiner is part of the script
        ("Ann\ud800", "Ann"),  # a lone surrogate cannot be sent as UTF-8
    ],
)
def test_control_characters_are_stripped_and_letters_of_every_script_kept(value, expected):
    assert strip_controls(value) == expected
    assert text_value(value).text == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, "true"),
        (False, "false"),
        (3, "3"),
        (2.5, "2.5"),
        (decimal.Decimal("2.5"), "2.5"),
        (decimal.Decimal("2.50"), "2.50"),
        (decimal.Decimal("1E+2"), "100"),
        (-7, "-7"),
        (dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc), "2026-01-02T03:04:05+00:00"),
    ],
)
def test_numbers_and_booleans_become_their_plain_json_text(value, expected):
    assert text_value(value) == (expected, None)


@pytest.mark.parametrize("value", [["Ann", "Marie"], {"family": "Smith"}, [], {}])
def test_a_list_or_object_is_dropped_with_a_reason(value):
    assert text_value(value) == (None, "list_or_object")


@pytest.mark.parametrize("value", [None, "", "   ", "\x00\x1b"])
def test_nothing_to_store_is_not_counted_as_dropped(value):
    assert text_value(value) == (None, None)


def test_a_contact_with_odd_names_is_synced_with_clean_names_and_drops_counted():
    mapper = ContactMapper(
        email_field="email", first_name_field="first", last_name_field="last", custom_fields=[]
    )
    unconvertible: Counter[str] = Counter()
    names = [
        ({"first": ["Ann", "Marie"], "last": {"family": "Smith"}}, {}),
        ({"first": True, "last": 3}, {"first_name": "true", "last_name": "3"}),
        ({"first": "An\x00n\x1b", "last": "Sm\x7fith"},
         {"first_name": "Ann", "last_name": "Smith"}),
    ]
    for extra, expected in names:
        mapped = mapper.map({"email": "a@b.co", **extra}, Counter(), unconvertible)
        assert mapped.contact == {"email": "a@b.co", **expected}
    assert unconvertible == {"first_name": 1, "last_name": 1}

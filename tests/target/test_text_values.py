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
        (
            {"first": "An\x00n\x1b", "last": "Sm\x7fith"},
            {"first_name": "Ann", "last_name": "Smith"},
        ),
    ]
    for extra, expected in names:
        mapped = mapper.map({"email": "a@b.co", **extra}, Counter(), unconvertible)
        assert mapped.contact == {"email": "a@b.co", **expected}
    assert unconvertible == {"first_name": 1, "last_name": 1}


@pytest.mark.integration
def test_odd_names_reach_sendgrid_clean_and_the_report_counts_what_was_left_empty(
    sandbox, run_target
):
    from sandbox.singer_input import MEMBERS_SCHEMA, record, schema

    people = [
        ("ann@example.com", ["Ann", "Marie"], "Sm\x00ith\x1b"),
        ("bob@example.com", True, {"family": "Jones"}),
        ("cy@example.com", "Cy\nRil", 3),
    ]
    lines = [schema("people", MEMBERS_SCHEMA, ["amplitude_id"])]
    for n, (email, first, last) in enumerate(people):
        lines.append(
            record(
                "people",
                {
                    "amplitude_id": n,
                    "user_properties": {"email": email, "first_name": first, "last_name": last},
                },
            )
        )

    result = run_target(lines, list_name="Odd names", raise_errors=True)

    entry = result.report["lists"][0]
    assert entry["upserted"] == 3
    assert entry["adds_up"] is True
    assert entry["unconvertible"] == {"first_name": 1, "last_name": 1}
    assert result.report["totals"]["unconvertible"] == {"first_name": 1, "last_name": 1}
    assert "left empty (value did not fit): first_name 1, last_name 1" in result.log
    stored = {
        c["email"]: c
        for c in sandbox.sendgrid.members(sandbox.sendgrid.list_by_name("Odd names")["id"])
    }
    assert (
        stored["ann@example.com"].get("first_name"),
        stored["ann@example.com"]["last_name"],
    ) == (None, "Smith")
    assert (
        stored["bob@example.com"]["first_name"],
        stored["bob@example.com"].get("last_name"),
    ) == ("true", None)
    assert (stored["cy@example.com"]["first_name"], stored["cy@example.com"]["last_name"]) == (
        "Cy Ril",
        "3",
    )

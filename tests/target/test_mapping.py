"""Record paths, value conversion and the limits applied before anything is sent."""

from __future__ import annotations

import datetime as dt
import decimal
from collections import Counter

import pytest
from target_sendgrid_contacts.mapping import (
    ContactMapper,
    CustomFieldSpec,
    convert_value,
    field_type_for,
    get_path,
    path_values,
    schema_at,
    split_path,
)


def mapper(**custom: tuple[str, str]) -> ContactMapper:
    return ContactMapper(
        email_field="user_properties.email",
        first_name_field="user_properties.first_name",
        last_name_field="last",
        custom_fields=[CustomFieldSpec(n, split_path(p), t) for n, (p, t) in custom.items()],
    )


def test_dotted_paths_read_nested_values_and_absent_is_none():
    record = {"a": {"b": {"c": 1}}, "x": None, "s": "text"}
    assert get_path(record, split_path("a.b.c")) == 1
    assert get_path(record, split_path("a.b.missing")) is None
    assert get_path(record, split_path("x.y")) is None
    assert get_path(record, split_path("s.y")) is None


@pytest.mark.parametrize(
    "paths",
    [
        ["user_properties.email", "user_properties.first_name", "user_properties.plan"],
        ["email", "first_name"],
        ["user_properties.email", "last"],
        ["a.b.c", "a.b"],
    ],
)
def test_several_paths_read_at_once_give_what_each_path_gives(paths):
    records = [
        {"user_properties": {"email": "a@b.co", "plan": 0}, "email": "x@y.co", "last": "L"},
        {"user_properties": None, "first_name": "Ann"},
        {"user_properties": "a@b.co", "a": {"b": {"c": 1}}},
        {"user_properties": {"first_name": {"nested": 1}}, "a": {"b": 5}},
        {},
    ]
    read = path_values([split_path(p) for p in paths])
    for record in records:
        assert read(record) == [get_path(record, split_path(p)) for p in paths]


def test_contacts_mapped_from_one_object_match_those_mapped_path_by_path():
    def nested(custom: dict) -> ContactMapper:
        return ContactMapper(
            email_field="user_properties.email",
            first_name_field="user_properties.first_name",
            last_name_field="user_properties.last_name",
            custom_fields=[CustomFieldSpec(n, split_path(p), "Text") for n, p in custom.items()],
        )

    same_object = nested({"plan": "user_properties.plan"})  # read in one pass
    mixed = nested({"plan": "user_properties.plan", "top": "top"})  # read path by path
    record = {
        "user_properties": {"email": " Ann@B.co ", "first_name": "Ann", "plan": " pro "},
        "top": None,
    }
    counters = Counter(), Counter()
    assert same_object.map_contact(record, *counters) == mixed.map_contact(record, *counters)
    assert same_object.map_contact(record, *counters) == {
        "email": "ann@b.co",
        "first_name": "Ann",
        "custom_fields": {"plan": "pro"},
    }
    assert same_object.map_contact({"user_properties": "x"}, *counters).reason == "missing_email"


def test_a_record_becomes_a_contact_with_trimmed_names_cut_to_fifty():
    truncated: Counter[str] = Counter()
    long_name = "W" * 60
    mapped = mapper().map(
        {"user_properties": {"email": " A@B.CO ", "first_name": "  Zoë "}, "last": long_name},
        truncated,
        Counter(),
    )
    assert mapped.contact == {"email": "a@b.co", "first_name": "Zoë", "last_name": "W" * 50}
    assert truncated == {"last_name": 1}


def test_empty_names_are_left_out_so_sendgrid_keeps_its_values():
    mapped = mapper().map(
        {"user_properties": {"email": "a@b.co", "first_name": "  "}}, Counter(), Counter()
    )
    assert mapped.contact == {"email": "a@b.co"}


def test_rejection_carries_reason_and_no_contact():
    mapped = mapper().map({"user_properties": {"email": "not-an-email"}}, Counter(), Counter())
    assert mapped.contact is None
    assert mapped.reason == "invalid_email"


def test_custom_fields_are_converted_by_type_and_unconvertible_values_counted():
    unconvertible: Counter[str] = Counter()
    m = mapper(
        plan=("p.plan", "Text"),
        ltv=("p.ltv", "Number"),
        since=("p.since", "Date"),
        bad=("p.bad", "Number"),
    )
    record = {
        "user_properties": {"email": "a@b.co"},
        "p": {
            "plan": " pro ",
            "ltv": "12.50",
            "since": dt.datetime(2025, 3, 4, 5, 6),
            "bad": "lots",
        },
    }
    mapped = m.map(record, Counter(), unconvertible)
    assert mapped.contact["custom_fields"] == {"plan": "pro", "ltv": 12.5, "since": "03/04/2025"}
    assert unconvertible == {"bad": 1}


@pytest.mark.parametrize(
    ("value", "field_type", "expected"),
    [
        (decimal.Decimal("42"), "Number", 42),
        (decimal.Decimal("4.25"), "Number", 4.25),
        (True, "Number", 1),
        ("nan", "Number", None),
        ("2024-02-29", "Date", "02/29/2024"),
        ("2024-02-29T23:00:00Z", "Date", "02/29/2024"),
        (dt.date(2024, 1, 2), "Date", "01/02/2024"),
        ("yesterday", "Date", None),
        ({"a": 1}, "Text", None),
        (["a"], "Text", None),
        (7, "Text", "7"),
        (True, "Text", "true"),
        (decimal.Decimal("2.5"), "Text", "2.5"),
        ("pro\x00\x1b[31m", "Text", "pro[31m"),
        ("   ", "Text", None),
        (None, "Text", None),
    ],
)
def test_convert_value(value, field_type, expected):
    assert convert_value(value, field_type) == expected


@pytest.mark.parametrize(
    ("prop", "expected"),
    [
        ({"type": ["integer", "null"]}, "Number"),
        ({"type": "number"}, "Number"),
        ({"type": ["string", "null"], "format": "date-time"}, "Date"),
        ({"anyOf": [{"type": "string", "format": "date"}, {"type": "null"}]}, "Date"),
        ({"type": ["string", "null"]}, "Text"),
        ({"type": "boolean"}, "Text"),
        ({}, "Text"),
    ],
)
def test_field_type_from_stream_schema(prop, expected):
    assert field_type_for(prop) == expected


def test_schema_at_follows_nested_properties():
    schema = {"properties": {"p": {"type": "object", "properties": {"n": {"type": "integer"}}}}}
    assert schema_at(schema, ("p", "n")) == {"type": "integer"}
    assert schema_at(schema, ("p", "zz")) == {}

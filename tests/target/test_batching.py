"""Request bodies: at most N contacts and at most M bytes, measured on the bytes sent."""

from __future__ import annotations

import itertools
import json

import pytest
from target_sendgrid_contacts.batching import upsert_bodies


def encoded(count: int, size: int = 50) -> list[bytes]:
    return [json.dumps({"email": f"u{i}@x.co", "pad": "p" * size}).encode() for i in range(count)]


def test_bodies_respect_the_contact_count_and_are_valid_json_in_order():
    bodies = list(upsert_bodies(["L1"], encoded(25), max_contacts=10))
    assert [b.count for b in bodies] == [10, 10, 5]
    assert [b.first for b in bodies] == [0, 10, 20]
    decoded = [json.loads(b.body) for b in bodies]
    assert all(d["list_ids"] == ["L1"] for d in decoded)
    emails = [c["email"] for d in decoded for c in d["contacts"]]
    assert emails == [f"u{i}@x.co" for i in range(25)]


def test_bodies_respect_the_byte_limit_exactly():
    contacts = encoded(100, size=200)
    limit = 3_000
    bodies = list(upsert_bodies(["L1"], contacts, max_bytes=limit))
    assert all(len(b.body) <= limit for b in bodies)
    assert sum(b.count for b in bodies) == 100
    # each body is as full as the next contact allows
    for body, nxt in itertools.pairwise(bodies):
        assert len(body.body) + len(contacts[nxt.first]) + 1 > limit


def test_a_contact_larger_than_the_limit_is_an_error():
    with pytest.raises(ValueError, match="larger"):
        list(upsert_bodies(["L1"], encoded(1, size=5000), max_bytes=1000))


def test_no_contacts_no_bodies():
    assert list(upsert_bodies(["L1"], [])) == []


def test_one_encoded_array_makes_the_same_body_and_none_when_it_would_be_too_large():
    import msgspec
    from target_sendgrid_contacts.batching import single_body

    contacts = [{"email": f"u{i}@x.co", "custom_fields": {"e1_T": "ä"}} for i in range(5)]
    whole = msgspec.json.encode(contacts)
    [expected] = upsert_bodies(["L1"], [msgspec.json.encode(c) for c in contacts])

    assert single_body(["L1"], whole) == expected.body
    assert single_body(["L1"], whole, max_bytes=len(expected.body) - 1) is None
    assert single_body(["L1"], b"[]") is None

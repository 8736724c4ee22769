"""Duplicate detection across batches, per list, naming the record kept."""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal

import pytest
from target_sendgrid_contacts.duplicates import SeenEmails
from target_sendgrid_contacts.items import Item


def item(email: str, number: int, keys: dict | None = None, stream: str = "members") -> Item:
    return Item(email, {"email": email}, stream, number, {"id": number} if keys is None else keys)


def test_repeats_name_the_first_record_within_and_across_batches(tmp_path):
    seen = SeenEmails(tmp_path / "seen.bin")
    first = seen.first_seen("L", [item("a@b.co", 1), item("c@d.co", 2), item("a@b.co", 3)])
    second = seen.first_seen("L", [item("c@d.co", 4), item("e@f.co", 5)])
    assert first == {2: "members record #1 (id=1)"}
    assert second == {0: "members record #2 (id=2)"}
    assert seen.origin_of("L", "e@f.co") == "members record #5 (id=5)"
    seen.close()
    assert not (tmp_path / "seen.bin").exists()


def test_the_same_email_on_two_lists_is_not_a_duplicate(tmp_path):
    seen = SeenEmails(tmp_path / "seen.bin")
    assert seen.first_seen("L1", [item("a@b.co", 1)]) == {}
    assert seen.first_seen("L2", [item("a@b.co", 2)]) == {}
    seen.close()


def test_no_email_is_written_to_disk(tmp_path):
    seen = SeenEmails(tmp_path / "seen.bin")
    seen.first_seen("L", [item("secret.person@example.com", 1, {}, "cohort_members")])
    seen._file.flush()
    assert b"secret.person" not in (tmp_path / "seen.bin").read_bytes()
    assert seen.origin_of("L", "secret.person@example.com") == "cohort_members record #1"
    assert seen.origin_of("L", "someone.else@example.com") is None
    seen.close()


def test_many_emails_grow_the_table_and_stay_exact(tmp_path):
    seen = SeenEmails(tmp_path / "seen.bin")
    first = [item(f"user{i}@example.com", i) for i in range(100_000)]
    assert seen.first_seen("L", first) == {}
    again = seen.first_seen("L", [item("user99999@example.com", 1), item("user7@example.com", 2)])
    assert again == {0: "members record #99999 (id=99999)", 1: "members record #7 (id=7)"}
    seen.close()


def test_many_batches_of_repeats_name_the_first_record_as_a_one_by_one_check_would(tmp_path):
    # Batches of every size, emails from a small pool: repeats within a batch, across batches,
    # and of keys stored in runs of every age (merged and not yet merged).
    rng = random.Random(7)
    seen = SeenEmails(tmp_path / "seen.bin")
    first_number: dict[str, int] = {}
    number = 0
    for size in [rng.choice([0, 1, 2, 7, 64, 300, 1000]) for _ in range(60)]:
        batch = []
        for _ in range(size):
            number += 1
            batch.append(item(f"user{rng.randrange(3000)}@example.com", number))
        expected = {}
        for position, entry in enumerate(batch):
            kept = first_number.setdefault(entry.email, entry.record_number)
            if kept != entry.record_number:
                expected[position] = f"members record #{kept} (id={kept})"

        assert seen.first_seen("L", batch) == expected
    for email, kept in rng.sample(sorted(first_number.items()), 50):
        assert seen.origin_of("L", email) == f"members record #{kept} (id={kept})"
    assert seen.origin_of("L", "user3000@example.com") is None
    seen.close()


@pytest.mark.parametrize(
    "keys",
    [
        {"cohort_id": "abc", "amplitude_id": 7, "flag": True, "none": None},
        {"at": dt.datetime(2026, 1, 2, 3, 4, tzinfo=dt.timezone(dt.timedelta(hours=2)))},
        {"day": dt.date(2026, 1, 2), "naive": dt.datetime(2026, 1, 2, 3, 4)},
        {"price": Decimal("1.50"), "ratio": 0.1},
        {"big": 2**70, "small": -(2**70)},
        {"list": [1, "a", {"b": Decimal("2.0")}], "object": {"x": dt.date(2026, 1, 2)}},
        {"a{}b": "{0}", "x}": "}{"},
    ],
)
def test_the_record_kept_is_named_as_written_whatever_its_key_values(tmp_path, keys):
    # Descriptions are stored as data and made into text only for a repeat: the text must
    # be the one the item itself gives (no value changed by the round trip through disk).
    seen = SeenEmails(tmp_path / "seen.bin")
    kept = Item("a@b.co", {}, "members", 12, keys)
    assert seen.first_seen("L", [item("z@b.co", 1), kept]) == {}
    assert seen.first_seen("L", [item("a@b.co", 13)]) == {0: kept.origin()}
    seen.close()


def test_an_item_names_its_record_with_every_key_as_written():
    def origin(keys: dict) -> str:
        return Item("a@b.co", {}, "members", 12, keys).origin()

    assert origin({"cohort_id": "abc", "amplitude_id": 7}) == (
        "members record #12 (cohort_id=abc, amplitude_id=7)"
    )
    assert origin({}) == "members record #12"
    assert (
        origin({"a{}b": None, "x}": Decimal("1.50")}) == "members record #12 (a{}b=None, x}=1.50)"
    )

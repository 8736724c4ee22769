"""Duplicate detection across batches, per list, naming the record kept."""

from __future__ import annotations

from target_sendgrid_contacts.duplicates import SeenEmails


def test_repeats_name_the_first_record_within_and_across_batches(tmp_path):
    seen = SeenEmails(tmp_path / "seen.bin")
    first = seen.first_seen("L", [("a@b.co", "rec 1"), ("c@d.co", "rec 2"), ("a@b.co", "rec 3")])
    second = seen.first_seen("L", [("c@d.co", "rec 4"), ("e@f.co", "rec 5")])
    assert first == {2: "rec 1"}
    assert second == {0: "rec 2"}
    assert seen.origin_of("L", "e@f.co") == "rec 5"
    seen.close()
    assert not (tmp_path / "seen.bin").exists()


def test_the_same_email_on_two_lists_is_not_a_duplicate(tmp_path):
    seen = SeenEmails(tmp_path / "seen.bin")
    assert seen.first_seen("L1", [("a@b.co", "r1")]) == {}
    assert seen.first_seen("L2", [("a@b.co", "r2")]) == {}
    seen.close()


def test_no_email_is_written_to_disk(tmp_path):
    seen = SeenEmails(tmp_path / "seen.bin")
    seen.first_seen("L", [("secret.person@example.com", "cohort_members record #1")])
    seen._file.flush()
    assert b"secret.person" not in (tmp_path / "seen.bin").read_bytes()
    assert seen.origin_of("L", "secret.person@example.com") == "cohort_members record #1"
    assert seen.origin_of("L", "someone.else@example.com") is None
    seen.close()


def test_many_emails_grow_the_table_and_stay_exact(tmp_path):
    seen = SeenEmails(tmp_path / "seen.bin")
    first = [(f"user{i}@example.com", f"r{i}") for i in range(100_000)]
    assert seen.first_seen("L", first) == {}
    again = seen.first_seen("L", [("user99999@example.com", "x"), ("user7@example.com", "y")])
    assert again == {0: "r99999", 1: "r7"}
    seen.close()


def test_an_item_names_its_record_with_every_key_as_written():
    from decimal import Decimal

    from target_sendgrid_contacts.items import Item

    def origin(keys: dict) -> str:
        return Item("a@b.co", {}, "members", 12, keys).origin()

    assert origin({"cohort_id": "abc", "amplitude_id": 7}) == (
        "members record #12 (cohort_id=abc, amplitude_id=7)"
    )
    assert origin({}) == "members record #12"
    assert (
        origin({"a{}b": None, "x}": Decimal("1.50")}) == "members record #12 (a{}b=None, x}=1.50)"
    )

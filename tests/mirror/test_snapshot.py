"""ListSnapshot: compare by lower-cased email, leavers only from a whole export, nothing kept."""

from __future__ import annotations

import datetime as dt
import stat

import pytest
from target_sendgrid_contacts.sendgrid.exports import ExportDownloadError, ExportFailedError
from target_sendgrid_contacts.snapshot import ListSnapshot
from target_sendgrid_contacts.snapshot_loading import load_snapshot

from .helpers import BASE, FILES, LIST_ID, export_csv, gz, member

FIELDS = {"e1_T": "plan", "w2": "Score"}  # custom field id -> name


def _load(client, tmp_path, fields=FIELDS) -> ListSnapshot:
    return load_snapshot(
        client, LIST_ID, custom_field_names=fields, workdir=tmp_path, poll_interval=0.001, timeout=5
    )


def _contact(n: int, **fields) -> dict:
    contact = {
        "email": f"person{n}@example.com",
        "first_name": f"First{n}",
        "last_name": f"Last{n}",
    }
    contact.update(fields)
    return contact


@pytest.fixture
def snapshot(client, mock_export, tmp_path):
    mock_export(gz(export_csv([member(n, plan="gold", Score="7") for n in range(1, 6)])))
    snap = _load(client, tmp_path)
    yield snap
    snap.close()


def test_new_changed_unchanged_and_leavers(snapshot):
    assert snapshot.size == 5
    assert snapshot.compare(_contact(1)) == "unchanged"
    assert snapshot.compare(_contact(2, first_name="Renamed")) == "changed"
    assert snapshot.compare(_contact(3, custom_fields={"e1_T": "silver"})) == "changed"
    assert snapshot.compare(_contact(99)) == "new"
    assert snapshot.count_leavers() == 2
    assert sorted(snapshot.leavers()) == ["c-4", "c-5"]


def test_absent_fields_are_not_compared(snapshot):
    # SendGrid keeps omitted fields, so a contact with only an email equals any member.
    assert snapshot.compare({"email": "person1@example.com"}) == "unchanged"
    assert (
        snapshot.compare({"email": "person2@example.com", "custom_fields": {"e1_T": "gold"}})
        == "unchanged"
    )


def test_custom_fields_compare_by_id_against_columns_named_by_name(snapshot):
    assert snapshot.compare(_contact(1, custom_fields={"e1_T": "gold", "w2": 7})) == "unchanged"
    assert snapshot.compare(_contact(2, custom_fields={"w2": 7.0})) == "unchanged"
    assert snapshot.compare(_contact(3, custom_fields={"w2": 8})) == "changed"
    assert snapshot.compare(_contact(4, custom_fields={"w2": "7"})) == "unchanged"


def test_contacts_sending_every_field_compare_like_the_field_by_field_check(snapshot):
    def full(n: int, plan: object, score: object, **names) -> dict:
        return _contact(n, custom_fields={"e1_T": plan, "w2": score}, **names)

    assert snapshot.compare_many(
        [
            full(1, "gold", 7),  # one digest decides
            full(2, "gold", "7"),  # same text, not the number form: checked field by field
            full(3, "gold", 7.0),
            full(4, "gold", 8),
            full(5, "gold", 7, last_name="Other"),
            full(6, "gold", 7),
        ]
    ) == ["unchanged", "unchanged", "unchanged", "changed", "changed", "new"]
    assert snapshot.count_leavers() == 0


def test_a_field_the_export_was_not_read_for_counts_as_changed(snapshot):
    assert snapshot.compare(_contact(1, custom_fields={"zz9": "x"})) == "changed"
    assert snapshot.compare(_contact(2, city="Paris")) == "changed"
    assert snapshot.count_leavers() == 3  # both were still seen


def test_text_compares_exactly(snapshot):
    assert snapshot.compare(_contact(1, first_name="first1")) == "changed"
    assert snapshot.compare(_contact(2, first_name="First2 ")) == "changed"
    assert snapshot.compare(_contact(3, custom_fields={"e1_T": "007"})) == "changed"


def test_mixed_case_emails_in_the_list_match_lower_cased_contacts(client, mock_export, tmp_path):
    mock_export(
        gz(
            export_csv(
                [member(1, EMAIL="Person1@Example.COM"), member(2, EMAIL=" person2@example.com ")]
            )
        )
    )
    snap = _load(client, tmp_path)
    assert snap.compare(_contact(1)) == "unchanged"
    assert snap.compare(_contact(2)) == "unchanged"
    assert list(snap.leavers()) == []
    snap.close()


def test_two_members_with_one_email_are_both_seen(client, mock_export, tmp_path):
    mock_export(
        gz(
            export_csv(
                [
                    member(1),
                    member(1, EMAIL="PERSON1@example.com", CONTACT_ID="c-dup", FIRST_NAME="Other"),
                ]
            )
        )
    )
    snap = _load(client, tmp_path)
    assert snap.size == 2
    assert snap.compare(_contact(1)) == "changed"  # one of the two differs
    assert list(snap.leavers()) == []
    snap.close()


def test_members_without_email_are_leavers(client, mock_export, tmp_path):
    mock_export(gz(export_csv([member(1), member(2, EMAIL="")])))
    snap = _load(client, tmp_path)
    snap.compare(_contact(1))
    assert list(snap.leavers()) == ["c-2"]
    snap.close()


def test_dates_compare_across_spellings(client, mock_export, tmp_path):
    header = ["EMAIL", "CONTACT_ID", "SIGNUP"]
    mock_export(
        gz(
            export_csv(
                [
                    {"EMAIL": "a@example.com", "CONTACT_ID": "c-a", "SIGNUP": "03/04/2026"},
                    {
                        "EMAIL": "b@example.com",
                        "CONTACT_ID": "c-b",
                        "SIGNUP": "2026-03-04T10:00:00Z",
                    },
                ],
                header=header,
            )
        )
    )
    snap = _load(client, tmp_path, {"d3": "signup"})
    assert (
        snap.compare({"email": "a@example.com", "custom_fields": {"d3": "2026-03-04"}})
        == "unchanged"
    )
    assert (
        snap.compare({"email": "a@example.com", "custom_fields": {"d3": dt.date(2026, 3, 4)}})
        == "unchanged"
    )
    assert (
        snap.compare({"email": "a@example.com", "custom_fields": {"d3": "2026-03-05"}}) == "changed"
    )
    moment = dt.datetime(2026, 3, 4, 11, 0, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    assert snap.compare({"email": "b@example.com", "custom_fields": {"d3": moment}}) == "unchanged"
    assert (
        snap.compare({"email": "b@example.com", "custom_fields": {"d3": "2026-03-04"}}) == "changed"
    )
    snap.close()


def test_marks_of_many_contacts_all_count(client, mock_export, tmp_path):
    mock_export(gz(export_csv([member(n) for n in range(100)])))
    snap = _load(client, tmp_path)
    for n in range(0, 100, 2):
        assert snap.compare(_contact(n)) == "unchanged"
    assert snap.count_leavers() == 50
    assert sorted(snap.leavers()) == sorted(f"c-{n}" for n in range(1, 100, 2))
    snap.close()


def test_the_store_holds_no_email_or_name_and_is_deleted_on_close(client, mock_export, tmp_path):
    mock_export(gz(export_csv([member(n) for n in range(50)])))
    snap = _load(client, tmp_path)
    snap.compare(_contact(3))
    snap.count_leavers()
    data = snap.path.read_bytes()
    assert b"c-3" in data  # contact ids are kept, for removal
    assert b"example.com" not in data
    assert b"First3" not in data
    snap.close()
    snap.close()
    assert list(tmp_path.iterdir()) == []


def test_a_failed_load_leaves_no_snapshot_behind(client, mock_export, tmp_path, requests_mock):
    whole = gz(export_csv([member(n) for n in range(300)]))
    mock_export(whole[:-40])
    with pytest.raises(ExportDownloadError):
        _load(client, tmp_path)
    assert list(tmp_path.iterdir()) == []
    downloads = [r for r in requests_mock.request_history if r.url.startswith(FILES)]
    assert len(downloads) == 2  # read once more, then given up


def test_a_download_cut_once_is_read_again_and_kept_whole(
    client, mock_export, tmp_path, requests_mock
):
    rows = [member(n) for n in range(300)]
    whole = gz(export_csv(rows))
    mock_export(whole)
    file_url = f"{FILES}/exports/file0.csv.gz?X-Amz-Signature=sig0"
    requests_mock.get(file_url, [{"content": whole[: len(whole) // 2]}, {"content": whole}])
    snap = _load(client, tmp_path)
    assert snap.size == 300  # no row of the broken reading counted twice
    for n in range(150):
        snap.compare(_contact(n))
    assert snap.count_leavers() == 150
    snap.close()


def test_an_export_failure_propagates(client, requests_mock, tmp_path):
    requests_mock.post(f"{BASE}/v3/marketing/contacts/exports", status_code=202, json={"id": "x"})
    requests_mock.get(f"{BASE}/v3/marketing/contacts/exports/x", json={"status": "failure"})
    with pytest.raises(ExportFailedError):
        _load(client, tmp_path)


def test_empty_snapshot_has_everyone_new_and_no_leavers(tmp_path):
    snap = ListSnapshot.empty(tmp_path)
    assert snap.size == 0
    assert snap.compare(_contact(1)) == "new"
    assert snap.count_leavers() == 0
    assert list(snap.leavers()) == []
    snap.close()
    assert list(tmp_path.iterdir()) == []


def test_two_snapshots_of_one_list_do_not_collide(client, mock_export, tmp_path):
    mock_export(gz(export_csv([member(1)])))
    first, second = _load(client, tmp_path), _load(client, tmp_path)
    assert first.path != second.path
    first.compare(_contact(1))
    assert second.count_leavers() == 1
    first.close()
    second.close()


def test_every_member_of_a_big_list_is_found_and_the_rest_are_leavers(
    client, mock_export, tmp_path
):
    # Enough members for many key buckets; a few share one email, as SendGrid allows.
    rows = [member(n) for n in range(6000)]
    rows += [member(n, CONTACT_ID=f"c-{n}-twin") for n in range(0, 6000, 1000)]
    mock_export(gz(export_csv(rows)))
    snap = _load(client, tmp_path)
    closer = snap._compare_closer
    # Equal contacts are decided by their row key alone, never field by field from disk.
    snap._compare_closer = lambda *args: pytest.fail("an equal contact's row key differed")
    every_field = {"custom_fields": {"e1_T": None, "w2": None}}  # None equals an empty cell
    verdicts = snap.compare_many([_contact(n, **every_field) for n in range(0, 6000, 2)])
    assert verdicts == ["unchanged"] * 3000
    snap._compare_closer = closer
    assert snap.compare_many([_contact(n) for n in (6000, 6001)]) == ["new", "new"]
    assert snap.compare(_contact(1, last_name="Renamed")) == "changed"
    odd = {f"c-{n}" for n in range(3, 6000, 2)}
    assert snap.count_leavers() == len(odd)
    assert set(snap.leavers()) == odd  # both twins of an even member were seen
    snap.close()


def test_a_contact_id_with_a_line_break_makes_the_export_unreadable(client, mock_export, tmp_path):
    # The ids are kept one a line: such an id would shift every leaver after it.
    mock_export(gz(export_csv([member(1), member(2, CONTACT_ID="c-2\nc-3")])))
    with pytest.raises(ExportDownloadError, match="line break"):
        _load(client, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_the_snapshot_files_are_private_and_hold_no_email(client, mock_export, tmp_path):
    mock_export(gz(export_csv([member(n, plan="gold") for n in range(50)])))
    snap = _load(client, tmp_path)
    files = list(tmp_path.iterdir())
    assert snap.path in files
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        data = path.read_bytes()
        assert b"example.com" not in data
        assert b"gold" not in data
    snap.close()
    assert list(tmp_path.iterdir()) == []


def test_a_batch_of_mixed_fields_compares_as_its_contacts_one_by_one(snapshot):
    contacts = [
        _contact(1, custom_fields={"e1_T": "gold", "w2": 7}),
        _contact(2, custom_fields={"e1_T": "silver", "w2": "7"}),
        _contact(3, custom_fields={"w2": 7.0, "e1_T": "gold"}),
        {"email": "person4@example.com", "first_name": "First4"},
        _contact(5, last_name="Other", custom_fields={"e1_T": "gold", "w2": 7}),
        _contact(9, custom_fields={"e1_T": "gold", "w2": 7}),
        {"email": "", "first_name": "First1"},
    ]
    one_by_one = [snapshot.compare(contact) for contact in contacts]
    assert one_by_one == ["unchanged", "changed", "unchanged", "unchanged", "changed", "new", "new"]
    assert snapshot.compare_many(contacts) == one_by_one
    # One layout throughout: hashed column by column, with the same verdicts.
    same_layout = [contacts[n] for n in (0, 1, 4, 5)]
    assert snapshot.compare_many(same_layout) == [snapshot.compare(c) for c in same_layout]
    # As many fields, not the same ones: contact by contact (a phone number is not compared).
    phone = {**_contact(2), "phone_number_id": "+1555"}
    assert snapshot.compare_many([contacts[0], phone]) == ["unchanged", "changed"]
    # ... and to the very keys of the contact by contact path (else every contact would be
    # compared field by field: right, but slow).
    hashes = snapshot.hashes
    assert hashes.prehash_many(same_layout) == hashes._prehash_each(same_layout)

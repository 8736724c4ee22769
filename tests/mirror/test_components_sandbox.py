"""Snapshot, export and removal against the sandbox over real HTTP (no target involved)."""

from __future__ import annotations

import pytest
import requests
from target_sendgrid_contacts.sendgrid.client import SendGridClient
from target_sendgrid_contacts.sendgrid.errors import SendGridError
from target_sendgrid_contacts.sendgrid.exports import (
    ExportDownloadError,
    ExportFailedError,
    ExportTimeoutError,
)
from target_sendgrid_contacts.sendgrid.removals import remove_from_list
from target_sendgrid_contacts.snapshot import ListSnapshot
from target_sendgrid_contacts.snapshot_loading import load_snapshot

pytestmark = pytest.mark.integration


def _client(sb) -> SendGridClient:
    return SendGridClient(
        requests.Session(),
        sb.sendgrid_url,
        sb.sendgrid_api_key,
        max_attempts=2,
        backoff_seconds=0.01,
    )


def _plan(sb) -> str:
    fields = {f["name"]: f["id"] for f in sb.sendgrid.field_definitions()}
    return fields.get("plan") or sb.sendgrid.create_field("plan", "Text")["id"]


def _list_with_members(sb, count: int) -> str:
    """A list of Member{n}@Example.com (stored lower-cased); odd members have plan=gold."""
    list_id = sb.sendgrid.create_list("mirror")["id"]
    for n in range(count):
        sb.sendgrid.add_contact(
            f"Member{n}@Example.com",
            first_name=f"First{n}",
            last_name=f"Last{n}",
            list_ids=[list_id],
            custom_fields={_plan(sb): "gold"} if n % 2 else None,
        )
    return list_id


def _emails(sb, list_id) -> set[str]:
    return {m["email"] for m in sb.sendgrid.members(list_id)}


def _load(sb, list_id, tmp_path, timeout=5.0) -> ListSnapshot:
    return load_snapshot(
        _client(sb),
        list_id,
        custom_field_names={_plan(sb): "plan"},
        workdir=tmp_path,
        poll_interval=0.02,
        timeout=timeout,
    )


def test_snapshot_compare_and_removal_on_the_real_export(sandbox, tmp_path):
    list_id = _list_with_members(sandbox, 6)
    other = sandbox.sendgrid.create_list("other")["id"]
    sandbox.sendgrid.add_contact("member0@example.com", list_ids=[other])
    plan = _plan(sandbox)
    snap = _load(sandbox, list_id, tmp_path)
    assert snap.size == 6
    assert (
        snap.compare(
            {
                "email": "member1@example.com",
                "first_name": "First1",
                "last_name": "Last1",
                "custom_fields": {plan: "gold"},
            }
        )
        == "unchanged"
    )
    assert snap.compare({"email": "member2@example.com", "last_name": "Other"}) == "changed"
    assert (
        snap.compare({"email": "member3@example.com", "custom_fields": {plan: "silver"}})
        == "changed"
    )
    assert (
        snap.compare({"email": "member4@example.com", "custom_fields": {plan: "gold"}}) == "changed"
    )  # member 4 has no plan yet
    assert snap.compare({"email": "new@example.com"}) == "new"
    leavers = list(snap.leavers())
    snap.close()
    assert len(leavers) == 2  # member0 and member5
    removed = remove_from_list(_client(sandbox), list_id, leavers, poll_interval=0.02, timeout=5)
    assert removed == 2
    assert _emails(sandbox, list_id) == {f"member{n}@example.com" for n in (1, 2, 3, 4)}
    # Taken off this list only: the contact still exists and keeps its other list.
    assert sandbox.sendgrid.contact("member0@example.com") is not None
    assert _emails(sandbox, other) == {"member0@example.com"}
    assert list(tmp_path.iterdir()) == []
    jobs = [r for r in sandbox.requests if r["path"].startswith("/v3/marketing/contacts/imports/")]
    assert jobs  # the removal job was followed


def test_truncated_export_download_is_refused(sandbox, tmp_path):
    list_id = _list_with_members(sandbox, 300)
    sandbox.faults.add("storage", "GET", "/files/", times=None, truncate_after=500)
    with pytest.raises(ExportDownloadError):
        _load(sandbox, list_id, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_dropped_export_download_is_refused(sandbox, tmp_path):
    list_id = _list_with_members(sandbox, 20)
    sandbox.faults.add("storage", "GET", "/files/", times=None, drop=True)
    with pytest.raises(SendGridError):  # retried by the client, then given up
        _load(sandbox, list_id, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_failed_export_is_refused(sandbox, tmp_path):
    list_id = _list_with_members(sandbox, 3)
    sandbox.faults.add(
        "sendgrid",
        "GET",
        r"/v3/marketing/contacts/exports/[^/]+$",
        times=None,
        status=200,
        body={"id": "x", "status": "failure", "message": "export could not be generated"},
    )
    with pytest.raises(ExportFailedError, match="could not be generated"):
        _load(sandbox, list_id, tmp_path)


def test_slow_export_waits_within_the_bound_and_fails_past_it(sandbox_factory, tmp_path):
    slow = sandbox_factory(export_delay_seconds=0.6)
    list_id = _list_with_members(slow, 3)
    with pytest.raises(ExportTimeoutError):
        _load(slow, list_id, tmp_path, timeout=0.2)
    snap = _load(slow, list_id, tmp_path, timeout=10)
    assert snap.size == 3
    snap.close()


def test_removal_confirmed_by_count_when_jobs_cannot_be_polled(sandbox, tmp_path):
    list_id = _list_with_members(sandbox, 450)
    ids = [m["id"] for m in sandbox.sendgrid.members(list_id)][:420]
    sandbox.faults.add(
        "sendgrid",
        "GET",
        r"/v3/marketing/contacts/imports/",
        times=None,
        status=404,
        body={"errors": [{"field": None, "message": "not found"}]},
    )
    removed = remove_from_list(_client(sandbox), list_id, ids, poll_interval=0.02, timeout=5)
    assert removed == 420
    assert len(_emails(sandbox, list_id)) == 30
    paths = [(r["method"], r["path"]) for r in sandbox.requests]
    assert sum(1 for m, p in paths if m == "DELETE") == 3
    assert sum(1 for m, p in paths if p.endswith("/contacts/count")) >= 2

"""Uploader: contacts SendGrid refuses by name are set aside, the rest still go (requests-mock)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests
from target_sendgrid_contacts.items import Item
from target_sendgrid_contacts.outcomes import ListOutcome
from target_sendgrid_contacts.rejects import RejectsWriter
from target_sendgrid_contacts.sendgrid.client import SendGridClient
from target_sendgrid_contacts.sendgrid.errors import SendGridAPIError
from target_sendgrid_contacts.upserts import Uploader

BASE = "https://sg.test"
PUT = f"{BASE}/v3/marketing/contacts"


def _items(count: int) -> list[tuple[Item, dict]]:
    return [
        (
            Item(f"p{n}@example.com", {"email": f"p{n}@example.com"}, "s", n + 1, {"id": n}),
            {"email": f"p{n}@example.com"},
        )
        for n in range(count)
    ]


def _refuse(*positions: int) -> dict:
    return {
        "status_code": 400,
        "json": {
            "errors": [
                {"field": f"contacts[{p}].email", "message": "email address is invalid"}
                for p in positions
            ]
        },
    }


@pytest.fixture
def uploader(tmp_path) -> Uploader:
    client = SendGridClient(requests.Session(), BASE, "SG.k", max_attempts=1)
    return Uploader(
        client,
        RejectsWriter(tmp_path / "rejects.jsonl"),
        request_limit=100,
        poll_interval=0.001,
        timeout=5,
        new_fields=lambda: False,
    )


def _sent_emails(requests_mock) -> list[list[str]]:
    return [
        [c["email"] for c in json.loads(r.body)["contacts"]]
        for r in requests_mock.request_history
        if r.method == "PUT"
    ]


def test_named_contacts_are_rejected_and_the_rest_resent(uploader, requests_mock):
    requests_mock.put(PUT, [_refuse(1, 3), {"status_code": 202, "json": {"job_id": "j1"}}])
    requests_mock.get(
        f"{BASE}/v3/marketing/contacts/imports/j1",
        json={"status": "completed", "results": {"created_count": 2}},
    )
    outcome = ListOutcome("L", received=4)

    uploader.upsert(outcome, "list-1", _items(4))

    assert _sent_emails(requests_mock)[1] == ["p0@example.com", "p2@example.com"]
    assert (outcome.upserted, outcome.rejected["sendgrid_rejected"]) == (2, 2)
    assert outcome.adds_up()


def test_a_request_whose_every_contact_is_named_is_rejected_whole_not_raised(
    uploader, requests_mock
):
    requests_mock.put(PUT, [_refuse(0)])
    outcome = ListOutcome("L", received=1)

    uploader.upsert(outcome, "list-1", _items(1))

    assert requests_mock.call_count == 1
    assert (outcome.upserted, outcome.rejected["sendgrid_rejected"]) == (0, 1)
    assert outcome.adds_up()


def test_a_400_naming_no_contact_of_the_request_stops_at_once(uploader, requests_mock):
    requests_mock.put(PUT, [_refuse(7)])  # a position the request does not have
    with pytest.raises(SendGridAPIError, match="400"):
        uploader.upsert(ListOutcome("L", received=2), "list-1", _items(2))
    assert requests_mock.call_count == 1


def _accept(requests_mock, job: dict) -> None:
    requests_mock.put(PUT, json={"job_id": "j9"}, status_code=202)
    requests_mock.get(f"{BASE}/v3/marketing/contacts/imports/j9", json=job)


def test_a_job_ending_in_an_undocumented_status_is_not_counted_as_upserted(uploader, requests_mock):
    _accept(requests_mock, {"status": "cancelled", "results": {"requested_count": 3}})
    outcome = ListOutcome("L", received=3)

    with pytest.raises(Exception, match="'cancelled'"):
        uploader.upsert(outcome, "list-1", _items(3))
    assert outcome.upserted == 0


def test_an_errored_job_without_a_count_rejects_the_contacts_its_errors_file_names(
    uploader, requests_mock
):
    errors_url = "https://files.test/errors.csv"
    _accept(
        requests_mock,
        {"status": "errored", "results": {"requested_count": 3, "errors_url": errors_url}},
    )
    requests_mock.get(errors_url, content=b"email,error\np1@example.com,refused\n")
    outcome = ListOutcome("L", received=3)

    uploader.upsert(outcome, "list-1", _items(3))

    assert (outcome.upserted, outcome.rejected["sendgrid_rejected"]) == (2, 1)
    assert outcome.adds_up()


def _spilling_uploader(
    tmp_path: Path, monkeypatch, max_in_flight: int = 1
) -> tuple[Uploader, RejectsWriter, Path]:
    """An uploader that writes every pending part to disk; its rejects file and work folder."""
    from target_sendgrid_contacts import inflight

    monkeypatch.setattr(inflight, "IN_MEMORY_CONTACTS", 0)  # every part goes to disk
    workdir = tmp_path / "work"
    workdir.mkdir()
    rejects = RejectsWriter(tmp_path / "rejects.jsonl")
    client = SendGridClient(requests.Session(), BASE, "SG.k", max_attempts=1)
    uploader = Uploader(
        client,
        rejects,
        request_limit=100,
        poll_interval=0.001,
        timeout=5,
        new_fields=lambda: False,
        max_in_flight=max_in_flight,
        workdir=workdir,
    )
    return uploader, rejects, workdir


def test_contacts_of_a_pending_job_spilled_to_disk_still_name_the_refused_record(
    tmp_path, requests_mock, monkeypatch
):
    uploader, rejects, workdir = _spilling_uploader(tmp_path, monkeypatch, max_in_flight=4)
    errors_url = "https://files.test/errors.csv"
    _accept(
        requests_mock,
        {
            "status": "errored",
            "results": {"requested_count": 3, "errored_count": 1, "errors_url": errors_url},
        },
    )
    on_disk = []

    def errors_file(request, context) -> bytes:
        on_disk.extend(workdir.iterdir())  # while the job is accounted for
        return b"email,error\np1@example.com,refused\n"

    requests_mock.get(errors_url, content=errors_file)
    outcome = ListOutcome("L", received=3)

    uploader.upsert(outcome, "list-1", _items(3))
    rejects.close()

    assert len(on_disk) == 1, "the pending job's contacts waited on disk"

    assert (outcome.upserted, outcome.rejected["sendgrid_rejected"]) == (2, 1)
    written = [json.loads(line) for line in (tmp_path / "rejects.jsonl").read_text().splitlines()]
    assert [(r["record_number"], r["keys"], r["values"]) for r in written] == [
        (2, {"id": 1}, {"email": "p1@example.com"})
    ]
    assert list(workdir.iterdir()) == []  # personal data gone once the job is accounted


def test_a_spilled_part_refused_by_name_rejects_that_record_and_resends_the_rest_exactly(
    tmp_path, requests_mock, monkeypatch
):
    uploader, rejects, workdir = _spilling_uploader(tmp_path, monkeypatch)
    # As sent: custom fields keyed by id (the item's own contact has them by name).
    to_send = [
        (
            Item(f"p{n}@example.com", {"email": f"p{n}@example.com", "custom_fields": {"plan": n}},
                 "cohort_members", n + 1, {"cohort_id": "c1", "amplitude_id": 100 + n}),
            {"email": f"p{n}@example.com", "first_name": "Zoë", "custom_fields": {"e1_N": n + 0.5}},
        )
        for n in range(3)
    ]  # fmt: skip
    requests_mock.put(PUT, [_refuse(1), {"status_code": 202, "json": {"job_id": "j1"}}])
    requests_mock.get(
        f"{BASE}/v3/marketing/contacts/imports/j1",
        json={"status": "completed", "results": {"created_count": 2}},
    )
    outcome = ListOutcome("L", received=3)

    uploader.upsert(outcome, "list-1", to_send)
    rejects.close()

    resent = json.loads(requests_mock.request_history[1].body)["contacts"]
    assert resent == [to_send[0][1], to_send[2][1]]
    written = [json.loads(line) for line in (tmp_path / "rejects.jsonl").read_text().splitlines()]
    assert [(r["stream"], r["record_number"], r["keys"], r["values"]) for r in written] == [
        ("cohort_members", 2, {"cohort_id": "c1", "amplitude_id": 101}, to_send[1][1])
    ]
    assert (outcome.upserted, outcome.rejected["sendgrid_rejected"]) == (2, 1)
    assert list(workdir.iterdir()) == []

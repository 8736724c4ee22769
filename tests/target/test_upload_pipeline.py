"""Upserts never block reading: bodies go out while earlier jobs are pending (sandbox, real HTTP).

Order is read from the sandbox's request log (arrival timestamps), never from wall time: a job
is pending for ``import_delay_seconds`` after its PUT arrived, so "PUT 5 arrived before PUT 1's
job could end" is a fact about order, whatever the machine's speed.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from target_sendgrid_contacts import upserts as upserts_module
from target_sendgrid_contacts.target import TargetSendGridContacts

from sandbox.singer_input import (
    MEMBERS_SCHEMA,
    SYNCS_SCHEMA,
    TARGET_SHAPE,
    as_file,
    member_record,
    record,
    schema,
)

pytestmark = pytest.mark.integration

COHORT = "pwrusr1"
PER_BODY = 8
BODIES = 5
OUTSIDER = "left.the.cohort@example.com"


class Stdout:
    """Stands in for stdout: for each STATE line, what SendGrid held when it was written."""

    def __init__(self, sandbox, list_name: str) -> None:
        self._sandbox = sandbox
        self._list_name = list_name
        self.states: list[dict] = []

    def write(self, text: str) -> int:
        for line in text.splitlines():
            if not line.strip():
                continue
            found = self._sandbox.sendgrid.list_by_name(self._list_name)
            self.states.append(
                {
                    "value": json.loads(line),  # a target writes the bare state value
                    "members": set(self._sandbox.sendgrid.member_emails(found["id"]))
                    if found
                    else set(),
                    "job_statuses": [
                        job["status"]
                        for job in self._sandbox.sendgrid.jobs()
                        if job["job_type"] == "upsert_contacts"
                    ],
                }
            )
        return len(text)

    def flush(self) -> None:
        """Nothing is buffered."""


def _list_name(sandbox) -> str:
    return f"[Amplitude] {sandbox.generator.spec(COHORT).name}: {COHORT}"


def _members(sandbox, count: int = PER_BODY * BODIES) -> list[dict]:
    return [m for m in sandbox.generator.members(COHORT) if m["category"] == "valid"][:count]


def _lines(sandbox, members: list[dict]) -> list[str]:
    """A complete cohort of exactly these members, then a STATE."""
    name = sandbox.generator.spec(COHORT).name
    lines = [schema("cohort_members", MEMBERS_SCHEMA, ["cohort_id", "amplitude_id"])]
    lines += [record("cohort_members", member_record(COHORT, name, m)) for m in members]
    lines.append(schema("cohort_syncs", SYNCS_SCHEMA, ["cohort_id"]))
    lines.append(
        record("cohort_syncs", TARGET_SHAPE.sync_record(COHORT, name, len(members), "complete"))
    )
    lines.append(json.dumps({"type": "STATE", "value": {"bookmarks": {"done": True}}}))
    return lines


def _run(sandbox, lines: list[str], tmp_path: Path, monkeypatch, **settings: object) -> dict:
    report_path = tmp_path / "report.json"
    rejects_path = tmp_path / "rejects.jsonl"
    config = {
        "api_key": sandbox.sendgrid_api_key,
        "api_url": sandbox.sendgrid_url,
        "email_field": "user_properties.email",
        "job_poll_interval_seconds": 0.02,
        "batch_size_rows": PER_BODY,
        "report_path": str(report_path),
        "rejects_path": str(rejects_path),
        **settings,
    }
    stdout = Stdout(sandbox, _list_name(sandbox))
    error = None
    with monkeypatch.context() as patch:
        patch.setattr(sys, "stdout", stdout)
        try:
            TargetSendGridContacts(config=config).listen(as_file(lines))
        except Exception as exc:  # noqa: BLE001 - some tests check that a run fails
            error = exc
    return {
        "error": error,
        "states": stdout.states,
        "report": json.loads(report_path.read_text()) if report_path.exists() else {},
        "rejects": [json.loads(line) for line in rejects_path.read_text().splitlines()]
        if rejects_path.exists()
        else [],
    }


def _log(sandbox, method: str, path: str = "") -> list[dict]:
    return [
        r
        for r in list(sandbox.requests)
        if r["service"] == "sendgrid" and r["method"] == method and path in r["path"]
    ]


def _accepted_puts(sandbox) -> list[dict]:
    return [r for r in _log(sandbox, "PUT", "/v3/marketing/contacts") if r["status"] == 202]


def _with_outsider(sandbox) -> str:
    """The cohort's list, holding one contact who is not in the cohort (a leaver)."""
    created = sandbox.sendgrid.create_list(_list_name(sandbox))
    sandbox.sendgrid.add_contact(OUTSIDER, list_ids=[created["id"]])
    return created["id"]


def test_every_body_is_sent_before_the_first_job_finishes(sandbox_factory, tmp_path, monkeypatch):
    delay = 2.0
    sandbox = sandbox_factory(import_delay_seconds=delay)
    members = _members(sandbox)

    result = _run(sandbox, _lines(sandbox, members), tmp_path, monkeypatch)

    assert result["error"] is None
    puts = _accepted_puts(sandbox)
    assert len(puts) == BODIES
    assert puts[-1]["ts"] < puts[0]["ts"] + delay, "a body waited for an earlier job"
    assert result["report"]["totals"]["upserted"] == len(members)


def test_state_waits_until_every_job_finished(sandbox_factory, tmp_path, monkeypatch):
    sandbox = sandbox_factory(import_delay_seconds=1.0)
    members = _members(sandbox)

    result = _run(sandbox, _lines(sandbox, members), tmp_path, monkeypatch)

    assert result["error"] is None
    assert [s["value"] for s in result["states"]] == [{"bookmarks": {"done": True}}]
    state = result["states"][0]
    assert state["job_statuses"] == ["completed"] * BODIES
    assert {m["expected_email"] for m in members} <= state["members"]


def test_a_mid_run_state_waits_for_the_jobs_sent_before_it(sandbox_factory, tmp_path, monkeypatch):
    # Records older than the SDK's age limit make it drain and write STATE mid-stream.
    monkeypatch.setattr(TargetSendGridContacts, "_MAX_RECORD_AGE_IN_MINUTES", 0.0)
    sandbox = sandbox_factory(import_delay_seconds=0.5)
    members = _members(sandbox, 3 * PER_BODY)
    lines = _lines(sandbox, members)
    lines.insert(1 + 2 * PER_BODY, json.dumps({"type": "STATE", "value": {"part": 1}}))

    result = _run(sandbox, lines, tmp_path, monkeypatch)

    assert result["error"] is None
    part_one = next(s for s in result["states"] if s["value"] == {"part": 1})
    assert {m["expected_email"] for m in members[: 2 * PER_BODY]} <= part_one["members"]
    assert all(status != "pending" for s in result["states"] for status in s["job_statuses"])


def test_an_errored_job_mid_pipeline_is_accounted_and_removal_waits_for_every_job(
    sandbox_factory, tmp_path, monkeypatch
):
    delay = 1.0
    sandbox = sandbox_factory(import_delay_seconds=delay)
    list_id = _with_outsider(sandbox)
    members = _members(sandbox)
    refused = members[2 * PER_BODY : 2 * PER_BODY + 3]  # in the third of five bodies
    for member in refused:
        member["email"] = "reject+" + member["email"].strip()  # the sandbox refuses these

    result = _run(
        sandbox, _lines(sandbox, members), tmp_path, monkeypatch, max_sendgrid_rejections=3
    )

    assert result["error"] is None
    totals = result["report"]["totals"]
    assert (totals["upserted"], totals["rejected"]) == (len(members) - 3, 3)
    assert totals["received"] == totals["upserted"] + totals["unchanged"] + totals["rejected"]
    assert sorted(r["record_number"] for r in result["rejects"]) == [17, 18, 19]
    assert all(r["reason"] == "sendgrid_rejected" for r in result["rejects"])
    assert OUTSIDER not in sandbox.sendgrid.member_emails(list_id)  # removal ran...
    removal = _log(sandbox, "DELETE", f"/lists/{list_id}/contacts")
    assert removal, "the leaver was removed through the API"
    last_put = max(r["ts"] for r in _accepted_puts(sandbox))
    assert removal[0]["ts"] > last_put + delay  # ...only once the last job had ended
    assert len(result["states"]) == 1
    assert result["states"][0]["job_statuses"] == [
        "completed",
        "completed",
        "errored",
        "completed",
        "completed",
    ]


def test_a_failed_job_mid_pipeline_blocks_state_and_removal(sandbox_factory, tmp_path, monkeypatch):
    # One contact (the outsider) is already there: bodies 1 and 2 fit, body 3 passes the limit.
    sandbox = sandbox_factory(import_delay_seconds=1.0, contact_limit=1 + 2 * PER_BODY)
    list_id = _with_outsider(sandbox)

    result = _run(sandbox, _lines(sandbox, _members(sandbox)), tmp_path, monkeypatch)

    assert result["error"] is not None
    assert "contact limit" in str(result["error"])
    assert "contact limit" in result["report"]["error"]
    assert result["states"] == []
    assert OUTSIDER in sandbox.sendgrid.member_emails(list_id)
    assert _log(sandbox, "DELETE") == []
    # The jobs that did finish are counted; the failed ones are not claimed as upserted.
    assert result["report"]["totals"]["upserted"] == 2 * PER_BODY


def test_the_in_flight_bound_holds(sandbox_factory, tmp_path, monkeypatch):
    delay, bound = 1.0, 2
    sandbox = sandbox_factory(import_delay_seconds=delay)

    result = _run(
        sandbox, _lines(sandbox, _members(sandbox)), tmp_path, monkeypatch, max_jobs_in_flight=bound
    )

    assert result["error"] is None
    puts = _accepted_puts(sandbox)
    assert len(puts) == BODIES
    assert puts[bound - 1]["ts"] < puts[0]["ts"] + delay  # up to the bound, nobody waits
    for later, earlier in zip(puts[bound:], puts, strict=False):
        # A job ends `delay` after its PUT arrived: the next PUT waited for it.
        assert later["ts"] >= earlier["ts"] + delay


def test_a_429_on_a_put_holds_back_the_job_polls_in_flight(sandbox_factory, tmp_path, monkeypatch):
    sandbox = sandbox_factory(import_delay_seconds=3.0)
    started = upserts_module.start_upsert
    calls = []

    def start_upsert(client, body):
        calls.append(body)
        if len(calls) == 3:  # two jobs are pending now: rate-limit the third PUT
            sandbox.faults.add(
                "sendgrid", "PUT", "/v3/marketing/contacts$", times=1, rate_limited=True, reset_in=3
            )
        return started(client, body)

    monkeypatch.setattr(upserts_module, "start_upsert", start_upsert)
    members = _members(sandbox)

    result = _run(sandbox, _lines(sandbox, members), tmp_path, monkeypatch)

    assert result["error"] is None
    limited = next(r for r in _log(sandbox, "PUT") if r["status"] == 429)
    # X-RateLimit-Reset is a whole second at least 2 s away: nobody may call before then,
    # once the 429 is back (a poll already on its way when it came is allowed 0.3 s).
    during = [
        r
        for r in list(sandbox.requests)
        if r["service"] == "sendgrid" and limited["ts"] + 0.3 < r["ts"] < limited["ts"] + 2.0
    ]
    assert during == []
    assert _log(sandbox, "GET", "/imports/"), "jobs were polled meanwhile otherwise"
    assert result["report"]["totals"]["upserted"] == len(members)


def test_a_stop_signal_in_the_middle_of_an_upload_lets_no_state_out(
    sandbox_factory, tmp_path, monkeypatch
):
    # The SDK's SIGTERM/SIGINT handler drains every sink and writes STATE, from whatever
    # line the main thread was on: here, just after SendGrid answered a body whose job is
    # not followed yet.
    sandbox = sandbox_factory(import_delay_seconds=0.5)
    targets, written_by_the_stop = [], []
    listen, track = TargetSendGridContacts.listen, upserts_module.Uploader._track

    def remember(self, *args, **kwargs):
        targets.append(self)
        return listen(self, *args, **kwargs)

    def interrupted_track(self, *args):
        if not written_by_the_stop:
            before = len(sys.stdout.states)
            targets[0].drain_all()  # what the termination handler does first
            written_by_the_stop.append(sys.stdout.states[before:])
        return track(self, *args)

    monkeypatch.setattr(TargetSendGridContacts, "listen", remember)
    monkeypatch.setattr(upserts_module.Uploader, "_track", interrupted_track)
    members = _members(sandbox)
    lines = _lines(sandbox, members)
    lines.insert(1 + PER_BODY, json.dumps({"type": "STATE", "value": {"part": 1}}))

    result = _run(sandbox, lines, tmp_path, monkeypatch)

    assert written_by_the_stop == [[]]
    assert result["error"] is None
    assert result["states"][-1]["job_statuses"] == ["completed"] * BODIES

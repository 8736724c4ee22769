"""Removals never wait on one SendGrid job at a time (sandbox, real HTTP).

Order is read from the sandbox's request log (arrival timestamps), never from wall time: a
removal job is pending for ``removal_delay_seconds`` after its DELETE arrived, so "the last
DELETE arrived before the first one's job could end" is a fact about order.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from target_sendgrid_contacts.sendgrid import removals
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
MEMBERS = 4
LEAVERS = 10
CHUNK = 2  # 10 leavers in 5 chunks: more than the 4 jobs the target once kept in flight


class Stdout:
    """Stands in for stdout: keeps the STATE values the target writes."""

    def __init__(self) -> None:
        self.states: list[dict] = []

    def write(self, text: str) -> int:
        self.states += [json.loads(line) for line in text.splitlines() if line.strip()]
        return len(text)

    def flush(self) -> None:
        """Nothing is buffered."""


def _list_name(sandbox) -> str:
    return f"[Amplitude] {sandbox.generator.spec(COHORT).name}: {COHORT}"


def _lines(sandbox) -> list[str]:
    """A complete cohort of a few valid members, then a STATE."""
    name = sandbox.generator.spec(COHORT).name
    members = [m for m in sandbox.generator.members(COHORT) if m["category"] == "valid"]
    lines = [schema("cohort_members", MEMBERS_SCHEMA, ["cohort_id", "amplitude_id"])]
    lines += [record("cohort_members", member_record(COHORT, name, m)) for m in members[:MEMBERS]]
    lines.append(schema("cohort_syncs", SYNCS_SCHEMA, ["cohort_id"]))
    lines.append(
        record("cohort_syncs", TARGET_SHAPE.sync_record(COHORT, name, MEMBERS, "complete"))
    )
    lines.append(json.dumps({"type": "STATE", "value": {"bookmarks": {"done": True}}}))
    return lines


def _with_leavers(sandbox) -> tuple[str, set[str]]:
    """The cohort's list, holding contacts who are not in the cohort."""
    created = sandbox.sendgrid.create_list(_list_name(sandbox))
    leavers = {f"left.{n}@example.com" for n in range(LEAVERS)}
    for email in sorted(leavers):
        sandbox.sendgrid.add_contact(email, list_ids=[created["id"]])
    return created["id"], leavers


def _run(sandbox, tmp_path: Path, monkeypatch) -> dict:
    report_path = tmp_path / "report.json"
    config = {
        "api_key": sandbox.sendgrid_api_key,
        "api_url": sandbox.sendgrid_url,
        "email_field": "user_properties.email",
        "job_poll_interval_seconds": 0.02,
        "report_path": str(report_path),
        "rejects_path": str(tmp_path / "rejects.jsonl"),
    }
    stdout = Stdout()
    error = None
    with monkeypatch.context() as patch:
        patch.setattr(sys, "stdout", stdout)
        patch.setattr(removals, "DEFAULT_REMOVAL_CHUNK", CHUNK)
        try:
            TargetSendGridContacts(config=config).listen(as_file(_lines(sandbox)))
        except Exception as exc:  # noqa: BLE001 - one test checks that a run fails
            error = exc
    return {
        "error": error,
        "states": stdout.states,
        "report": json.loads(report_path.read_text()) if report_path.exists() else {},
    }


def _deletes(sandbox, list_id: str) -> list[dict]:
    return [
        r
        for r in list(sandbox.requests)
        if r["method"] == "DELETE" and r["path"] == f"/v3/marketing/lists/{list_id}/contacts"
    ]


def test_every_removal_is_sent_before_the_first_removal_job_ends(
    sandbox_factory, tmp_path, monkeypatch
):
    delay = 2.0
    sandbox = sandbox_factory(removal_delay_seconds=delay)
    list_id, leavers = _with_leavers(sandbox)

    result = _run(sandbox, tmp_path, monkeypatch)

    assert result["error"] is None
    deletes = _deletes(sandbox, list_id)
    assert len(deletes) == LEAVERS // CHUNK
    assert all(r["status"] == 202 for r in deletes)
    assert deletes[-1]["ts"] < deletes[0]["ts"] + delay, "a removal waited for an earlier job"
    # ...and yet every job was followed to its end before the STATE and the report.
    assert not leavers & sandbox.sendgrid.member_emails(list_id)
    assert result["report"]["totals"]["removed"] == LEAVERS
    assert result["states"] == [{"bookmarks": {"done": True}}]
    assert all(
        job["status"] == "completed"
        for job in sandbox.sendgrid.jobs()
        if job["job_type"] == "delete_list_contacts"
    )


def test_a_failed_removal_job_mid_way_fails_the_run_and_a_rerun_converges(
    sandbox_factory, tmp_path, monkeypatch
):
    sandbox = sandbox_factory(removal_delay_seconds=0.5)
    list_id, leavers = _with_leavers(sandbox)
    state = sandbox.sendgrid
    apply_removal = state._apply_removal
    applied = []

    def third_fails(job) -> None:
        applied.append(job.id)
        if len(applied) == 3:  # the others are sent and in flight, or already done
            job.status, job.results = "failed", {"requested_count": job.requested}
            return
        apply_removal(job)

    monkeypatch.setattr(state, "_apply_removal", third_fails)
    failed = _run(sandbox, tmp_path, monkeypatch)

    assert failed["error"] is not None
    assert "failed" in str(failed["error"])
    assert "failed" in failed["report"]["error"]
    assert failed["states"] == []  # nothing claims the list mirrors the cohort
    left_behind = leavers & state.member_emails(list_id)
    assert len(left_behind) >= CHUNK, "the failed job's leavers are still there"

    monkeypatch.setattr(state, "_apply_removal", apply_removal)
    rerun = _run(sandbox, tmp_path, monkeypatch)

    assert rerun["error"] is None
    assert not leavers & state.member_emails(list_id)
    assert rerun["states"] == [{"bookmarks": {"done": True}}]
    totals = rerun["report"]["totals"]
    assert totals["removed"] == len(left_behind)
    assert totals["received"] == totals["upserted"] + totals["unchanged"] + totals["rejected"]

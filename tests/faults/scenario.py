"""Play one matrix case: first sync, churn, the faulty run, the healthy rerun; check each one."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field

from sandbox import Sandbox

from .cases import COHORT, ENDPOINTS, Case
from .pipeline import Pipeline, PipelineRun, list_emails, list_name, removed_emails

REFUSED_PREFIX = "reject+"  # the sandbox errors such addresses inside its import jobs


@dataclass
class Refusals:
    """Rewrites a few valid members' emails to addresses the sandbox refuses in its jobs.

    The same members are rewritten in every run (a cohort stays the same people).
    """

    sb: Sandbox
    count: int
    originals: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        valid = [m for m in self.sb.generator.members(COHORT) if m["category"] == "valid"]
        self.originals = {m["email"].strip().lower() for m in valid[: self.count]}

    def edit(self, messages: list[dict]) -> list[dict]:
        for message in messages:
            if message.get("type") != "RECORD" or message.get("stream") != "cohort_members":
                continue
            props = message["record"].get("user_properties") or {}
            email = (props.get("email") or "").strip().lower()
            if email in self.originals:
                props["email"] = REFUSED_PREFIX + email
        return messages


def expected(sb: Sandbox, refusals: Refusals | None) -> set[str]:
    """What the cohort's list must hold: the cohort's valid emails less those SendGrid refuses."""
    emails = sb.generator.expected_emails(COHORT)
    return emails - refusals.originals if refusals else emails


@contextlib.contextmanager
def knobs_set(sb: Sandbox, knobs: dict) -> Iterator[None]:
    """Change sandbox settings (``config.x``, ``storage.x``) for a while, then restore them."""
    saved = []
    for dotted, value in knobs.items():
        owner_name, attr = dotted.split(".", 1)
        owner = sb.config if owner_name == "config" else sb.storage
        saved.append((owner, attr, getattr(owner, attr)))
        setattr(owner, attr, value)
    try:
        yield
    finally:
        for owner, attr, value in reversed(saved):
            setattr(owner, attr, value)


def check_accounting(run: PipelineRun) -> None:
    """Every record the target received ended upserted, unchanged or rejected with a reason."""
    if not run.report:
        return
    totals = run.report["totals"]
    for counts in [totals, *run.report["lists"]]:
        ended = counts["upserted"] + counts["unchanged"] + counts["rejected"]
        adds_up = counts["received"] == ended
        # A run stopped part-way says so: its report carries the error and admits the gap.
        assert counts["adds_up"] is adds_up
        assert adds_up or (run.target_exit != 0 and run.report.get("error"))
        assert sum(counts["rejected_by_reason"].values()) == counts["rejected"]
    if run.target_exit == 0:
        delivered = run.delivered(COHORT)
        assert totals["received"] == delivered, "a record the tap sent is not accounted for"
        assert len(run.rejects) == totals["rejected"]
        assert all(r.get("reason") for r in run.rejects)


def check_no_member_email_logged(sb: Sandbox, runs: list[PipelineRun]) -> None:
    """No member's address appears in any line at INFO or above (tracebacks included), and no
    secret in the log, the report or the STATE."""
    addresses = {
        m["email"].strip().lower()
        for m in sb.generator.members(COHORT)
        if m.get("email") and "@" in m["email"]
    }
    secrets = (sb.sendgrid_api_key, sb.amplitude_secret_key, sb.amplitude_api_key)
    for run in runs:
        written = run.log + json.dumps(run.report) + json.dumps(run.state_out)
        assert not [s for s in secrets if s in written], "a secret was written"
        text = run.log.lower()
        leaked = sorted(a for a in addresses if a in text)
        assert not leaked, (
            f"{len(leaked)} member addresses in the log, e.g. domain {leaked[0].rpartition('@')[2]}"
        )


def outcome_of(sb: Sandbox, run: PipelineRun, want: set[str]) -> str:
    """``ridden``, ``failed`` or ``held`` (see cases.py), as observed."""
    if run.failed:
        return "failed"
    entry = next(
        (e for e in run.report.get("lists", []) if e["list_name"] == list_name(sb, COHORT)), None
    )
    if entry is not None and entry.get("removal") == "skipped":
        return "held"
    return "ridden" if list_emails(sb, COHORT) == want else "diverged silently"


def play(sb: Sandbox, pipeline: Pipeline, case: Case) -> tuple[PipelineRun, PipelineRun]:
    """Run the case on a fresh sandbox; return (faulty run, healthy rerun) after checking both."""
    if not case.custom_fields:
        pipeline.target_config.update(custom_fields={}, create_missing_custom_fields=False)
    refusals = Refusals(sb, case.refused) if case.refused else None
    if refusals is not None:
        pipeline.edit = refusals.edit
        pipeline.target_config["max_sendgrid_rejections"] = case.refused
    runs: list[PipelineRun] = []
    if not case.first_sync:
        first = pipeline.run()
        runs.append(first)
        assert not first.failed, first.log[-2000:]
        assert list_emails(sb, COHORT) == expected(sb, refusals)
        before = list_emails(sb, COHORT)
        sb.amplitude.churn(COHORT, remove=20, add=5, rename=3)
        assert before - expected(sb, refusals), "the churn must make someone leave"
    rules = []
    if case.endpoint in ENDPOINTS:
        _, service, method, path = ENDPOINTS[case.endpoint]
        rules = [sb.faults.add(service, method, path, **rule) for rule in case.rules]
    with knobs_set(sb, case.knobs):
        faulty = pipeline.run(tap=case.tap, target=case.target)
    sb.faults.clear()
    runs.append(faulty)
    assert all(rule.hits for rule in rules), "the fault never fired: the case tests nothing"
    want = expected(sb, refusals)

    outcome = outcome_of(sb, faulty, want)
    assert outcome == case.expect, f"faulty run: {outcome}\n{faulty.log[-3000:]}"
    if case.log_has:
        assert case.log_has in faulty.log
    if outcome == "held":
        assert list_emails(sb, COHORT) >= want, "a held run still adds the joiners"

    rerun = pipeline.run()
    runs.append(rerun)
    for run in runs:
        check_accounting(run)
    # Leavers may go; nobody still in the cohort was ever asked off the list.
    everyone = [r for run in runs for r in run.requests]
    assert not removed_emails(sb, everyone) & want
    check_no_member_email_logged(sb, runs)

    assert not rerun.failed, rerun.log[-3000:]
    assert list_emails(sb, COHORT) == want, "the healthy rerun did not converge"
    if outcome == "ridden":
        assert rerun.downloads() == 0, "a converged cohort was downloaded again"
    return faulty, rerun

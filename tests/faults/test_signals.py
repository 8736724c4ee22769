"""SIGTERM and SIGKILL of `tap | target` during the download, the upserts and the removals.

Real processes with a state file between runs, as Meltano runs them; the rerun starts from the
last STATE the target printed before it was stopped.
"""

from __future__ import annotations

import signal
from collections.abc import Callable

import pytest

from sandbox import Sandbox

from .cases import COHORT
from .pipeline import BIN, PipelineRun, SubprocessPipeline, list_emails, removed_emails
from .scenario import check_accounting, check_no_member_email_logged

pytestmark = [
    pytest.mark.integration,
    pytest.mark.faults,
    pytest.mark.skipif(
        not (BIN / "tap-amplitude-cohort").exists(),
        reason="run scripts/setup.sh first (no .venv/bin/tap-amplitude-cohort)",
    ),
]


def _logged(sb: Sandbox, method: str, pattern: str) -> Callable[[], bool]:
    """True once the phase has begun and both plugins are up (each has called its API).

    Only requests from now on count; the target's first SendGrid call says it has started
    (a signal before that would kill a half-imported process, which proves nothing).
    """
    since = len(sb.requests)

    def seen() -> bool:
        recent = list(sb.requests[since:])
        return any(r["service"] == "sendgrid" for r in recent) and any(
            r["method"] == method and pattern in r["path"] for r in recent
        )

    return seen


# phase -> (sandbox knob making it last, request that says it has begun)
PHASES = {
    "download": ({}, ("GET", f"{COHORT}_"), {"delay": 30.0}),
    "upserts": ({"import_delay_seconds": 30.0}, ("PUT", "/v3/marketing/contacts"), None),
    "removals": ({"removal_delay_seconds": 30.0}, ("DELETE", "/contacts"), None),
}


def _interrupted(
    sb: Sandbox, tmp_path, phase: str, sig: int
) -> tuple[SubprocessPipeline, PipelineRun, set[str]]:
    """First sync, churn, then a subprocess run stopped by ``sig`` during ``phase``.

    Returns:
        The pipeline (its STATE is what the stopped run left), the stopped run, and the
        emails the list must end with.
    """
    pipeline = SubprocessPipeline(sb, tmp_path, [COHORT])
    first = pipeline.run()
    assert not first.failed
    sb.amplitude.churn(COHORT, remove=20, add=5, rename=3)
    want = sb.generator.expected_emails(COHORT)
    knobs, (method, pattern), delay = PHASES[phase]
    for name, value in knobs.items():
        setattr(sb.config, name, value)
    if delay is not None:
        sb.faults.add("storage", "GET", rf"^/files/.*{COHORT}_", times=1, **delay)
    # Bound any job wait (the jobs take 30 s): a stop must not depend on it.
    stopped = pipeline.run_sub(
        interrupt=_logged(sb, method, pattern), sig=sig, target={"job_timeout_seconds": 3}
    )
    sb.faults.clear()
    for name in knobs:
        setattr(sb.config, name, getattr(type(sb.config)(), name))
    return pipeline, stopped, want


STOPS = [
    pytest.param(sig, phase, id=f"{name}-{phase}")
    for name, sig in (("SIGTERM", signal.SIGTERM), ("SIGKILL", signal.SIGKILL))
    for phase in PHASES
]


@pytest.mark.parametrize(("sig", "phase"), STOPS)
def test_stopped_pipeline_removes_no_member_and_the_rerun_converges(
    sandbox_factory, tmp_path, sig, phase
):
    sb = sandbox_factory()
    pipeline, stopped, want = _interrupted(sb, tmp_path, phase, sig)
    rerun = pipeline.run()
    everyone = [r for run in pipeline.runs for r in run.requests]
    assert not removed_emails(sb, everyone) & want
    check_accounting(rerun)
    check_no_member_email_logged(sb, [stopped, rerun])
    assert not rerun.failed, rerun.log[-3000:]
    assert list_emails(sb, COHORT) == want


@pytest.mark.parametrize("phase", list(PHASES))
def test_sigterm_makes_the_pipeline_exit_non_zero(sandbox_factory, tmp_path, phase):
    sb = sandbox_factory()
    _, stopped, _ = _interrupted(sb, tmp_path, phase, signal.SIGTERM)
    # A scheduler must not record success: no plugin the signal reached may exit 0 (after the
    # download the tap has usually finished, and exited 0 rightly, before the signal).
    assert "target" in stopped.signalled
    exits = {"tap": stopped.tap_exit, "target": stopped.target_exit}
    assert all(exits[name] != 0 for name in stopped.signalled), exits

"""Bookmarks follow the list, not the download (issue 8, gap 1).

The real tap feeds the real target; state is kept between runs as Meltano keeps it. A list that a
run could not bring to its cohort leaves the cohort ``pending`` in the STATE the target writes,
so the next healthy run downloads it again although Amplitude did not recompute the cohort.
"""

from __future__ import annotations

import json
import logging
import math
import subprocess
import time
from pathlib import Path

import pytest

from .pipeline import Pipeline, partitions
from .sync import list_emails, list_name

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
BIN = ROOT / ".venv" / "bin"
COHORT, OTHER = "pwrusr1", "trlrsk2"
EXPORT_STATUS = r"/v3/marketing/contacts/exports/[^/]+$"
EXPORT_FAILS = {
    "status": 200,
    "body": {"id": "x", "status": "failure", "message": "export could not be generated"},
}


def _synced_then_churned(sandbox, pipe: Pipeline, cohort: str, remove: int) -> tuple[set, set]:
    """Sync whole, then let Amplitude recompute the cohort with leavers; return before, after."""
    first = pipe.run()
    assert first.error is None
    assert first.tap.exit_code == 0
    before = list_emails(sandbox, cohort)
    assert before == sandbox.amplitude.expected_emails(cohort)
    sandbox.amplitude.churn(cohort, remove=remove)
    after = sandbox.amplitude.expected_emails(cohort)
    assert len(before - after) > remove // 2
    return before, after


def _warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def test_after_an_unreadable_export_the_healthy_rerun_removes_the_leavers(
    sandbox, tmp_path, caplog
):
    pipe = Pipeline(sandbox, tmp_path, [COHORT])
    before, after = _synced_then_churned(sandbox, pipe, COHORT, remove=300)
    sandbox.faults.add("sendgrid", "GET", EXPORT_STATUS, times=None, **EXPORT_FAILS)
    with caplog.at_level(logging.INFO):
        broken = pipe.run()
    broken_warnings = _warnings(caplog)
    assert broken.error is None
    assert broken.downloads == 1
    assert list_emails(sandbox, COHORT) == before | after  # joiners in, nobody removed
    marker = partitions(pipe.state)[COHORT].get("pending") or {}

    sandbox.faults.clear()
    caplog.clear()
    with caplog.at_level(logging.INFO):
        healed = pipe.run()  # Amplitude has not recomputed the cohort

    assert healed.error is None
    assert healed.downloads == 1, "the pending cohort is downloaded again"
    assert list_emails(sandbox, COHORT) == after
    assert healed.list_entry(list_name(sandbox, COHORT))["removed"] == len(before - after)
    # What the broken run said, and what the healthy one says.
    assert "export could not be generated" in marker["reason"]
    assert marker["since"]
    (pending,) = broken.report["pending"]
    assert pending["cohort_id"] == COHORT
    assert pending["reason"] == marker["reason"]
    assert broken.list_entry(list_name(sandbox, COHORT))["pending"]
    assert any(f"Cohort {COHORT} pending since" in w for w in broken_warnings)
    assert not any("@" in w for w in broken_warnings)
    assert any(
        f"Cohort {COHORT} pending since {marker['since']}" in w for w in _warnings(caplog)
    ), "the tap says why it downloads again"
    assert healed.report["pending"] == []
    assert "pending" not in partitions(pipe.state)[COHORT]

    quiet = pipe.run()
    assert quiet.downloads == 0  # converged: no download is spent on it again
    assert quiet.report["pending"] == []
    assert list_emails(sandbox, COHORT) == after


def test_a_list_fed_by_two_cohorts_converges_both_after_one_cut_download(sandbox, tmp_path):
    pipe = Pipeline(sandbox, tmp_path, [COHORT, OTHER], list_name="Everyone")
    assert pipe.run().error is None
    everyone = sandbox.sendgrid.list_by_name("Everyone")["id"]
    before = set(sandbox.sendgrid.member_emails(everyone))
    sandbox.amplitude.churn(COHORT, remove=50)
    sandbox.amplitude.churn(OTHER, remove=40)
    expected = sandbox.amplitude.expected_emails(COHORT) | sandbox.amplitude.expected_emails(OTHER)
    assert before - expected
    sandbox.faults.add("storage", "GET", rf"/files/.*{COHORT}", times=None, truncate_after=3000)

    cut = pipe.run()

    assert cut.tap.syncs()[COHORT]["status"] == "failed"
    assert cut.tap.syncs()[OTHER]["status"] == "complete"
    assert set(sandbox.sendgrid.member_emails(everyone)) >= before  # nobody removed

    sandbox.faults.clear()
    healed = pipe.run()

    assert healed.downloads == 2, "both cohorts of the list are downloaded again"
    assert set(sandbox.sendgrid.member_emails(everyone)) == expected
    assert sorted(cut.pending_ids()) == [COHORT, OTHER]
    assert healed.report["pending"] == []
    assert pipe.run().downloads == 0


def test_a_list_whose_other_cohort_was_not_recomputed_converges_on_the_next_run(sandbox, tmp_path):
    # Only OTHER is recomputed: COHORT is skipped as unchanged, and without its members the
    # list's leavers cannot be told apart, so both stay pending until one run has both whole.
    pipe = Pipeline(sandbox, tmp_path, [COHORT, OTHER], list_name="Everyone")
    assert pipe.run().error is None
    everyone = sandbox.sendgrid.list_by_name("Everyone")["id"]
    sandbox.amplitude.churn(OTHER, remove=40)
    expected = sandbox.amplitude.expected_emails(COHORT) | sandbox.amplitude.expected_emails(OTHER)

    one = pipe.run()
    assert one.downloads == 1
    assert one.tap.syncs()[COHORT]["status"] == "unchanged"
    assert set(sandbox.sendgrid.member_emails(everyone)) > expected  # held back, rightly
    both = pipe.run()

    assert both.downloads == 2
    assert set(sandbox.sendgrid.member_emails(everyone)) == expected
    assert sorted(one.pending_ids()) == [COHORT, OTHER]
    assert both.report["pending"] == []
    assert pipe.run().downloads == 0


def test_in_upsert_mode_only_the_cohort_not_delivered_whole_is_pending(sandbox, tmp_path):
    pipe = Pipeline(sandbox, tmp_path, [COHORT, OTHER], sync_mode="upsert")
    assert pipe.run().error is None
    sandbox.amplitude.churn(COHORT, add=5)
    sandbox.amplitude.churn(OTHER, add=5)
    sandbox.faults.add("storage", "GET", rf"/files/.*{COHORT}", times=None, truncate_after=3000)
    cut = pipe.run()
    assert cut.pending_ids() == [COHORT]  # OTHER's upserts are done: nothing to remove
    assert "pending" not in partitions(pipe.state)[OTHER]
    sandbox.faults.clear()
    healed = pipe.run()
    assert healed.downloads == 1
    assert list_emails(sandbox, COHORT) == sandbox.amplitude.expected_emails(COHORT)
    assert healed.report["pending"] == []


def test_nothing_pending_means_the_rerun_downloads_nothing(sandbox, tmp_path):
    pipe = Pipeline(sandbox, tmp_path, [COHORT, OTHER], list_name="Everyone")
    first = pipe.run()
    assert first.error is None
    assert first.report["pending"] == []
    assert first.downloads == 2
    assert all("pending" not in p for p in partitions(pipe.state).values())

    rerun = pipe.run()

    assert rerun.downloads == 0
    assert rerun.report.get("pending", []) == []
    assert all("pending" not in p for p in partitions(pipe.state).values())


def test_a_removal_held_by_the_guard_is_not_downloaded_again_and_says_how_to_apply(
    sandbox, tmp_path, caplog
):
    pipe = Pipeline(sandbox, tmp_path, [COHORT], max_removal_ratio=0.2)
    before, after = _synced_then_churned(sandbox, pipe, COHORT, remove=300)
    share = len(before - after) / len(before)
    needed = f"{math.ceil(share * 1000) / 1000:g}"
    with caplog.at_level(logging.INFO):
        guarded = pipe.run()
    guarded_warnings = _warnings(caplog)
    assert guarded.error is None
    assert list_emails(sandbox, COHORT) == before | after
    guarded_partition = partitions(pipe.state)[COHORT]

    waiting = pipe.run()  # nobody has decided yet: no download every hour while it waits
    assert waiting.downloads == 0
    assert list_emails(sandbox, COHORT) == before | after

    applied = pipe.run(
        tap={"redownload_cohort_ids": [COHORT]}, target={"max_removal_ratio": float(needed)}
    )
    assert applied.downloads == 1
    assert list_emails(sandbox, COHORT) == after
    assert applied.report["held"] == []
    assert "held" not in partitions(pipe.state)[COHORT]
    assert pipe.run().downloads == 0
    # What the guarded run said: held (not pending), the exact way to apply it.
    assert guarded.report["pending"] == []
    (held,) = guarded.report["held"]
    assert held["cohort_id"] == COHORT
    assert "max_removal_ratio" in held["reason"]
    assert f"max_removal_ratio to {needed}" in held["apply"]
    assert f'redownload_cohort_ids: ["{COHORT}"]' in held["apply"]
    assert guarded.list_entry(list_name(sandbox, COHORT))["held"]
    assert guarded_partition["last_computed"] == guarded.tap.bookmarks()[COHORT]  # it moves
    assert "pending" not in guarded_partition
    assert guarded_partition["held"]["apply"] == held["apply"]
    assert any("removal held" in w and held["apply"] in w for w in guarded_warnings)
    assert [h["cohort_id"] for h in waiting.report["held"]] == [COHORT]  # still reminded


def _write_json(path: Path, value: object) -> Path:
    path.write_text(json.dumps(value))
    return path


def test_a_pipeline_killed_between_upserts_and_removal_converges_on_the_rerun(sandbox, tmp_path):
    if not (BIN / "target-sendgrid-contacts").exists():
        pytest.skip("run scripts/setup.sh first (no .venv/bin/target-sendgrid-contacts)")
    pipe = Pipeline(sandbox, tmp_path, [COHORT])
    before, after = _synced_then_churned(sandbox, pipe, COHORT, remove=300)
    sandbox.faults.add("sendgrid", "GET", EXPORT_STATUS, times=None, **EXPORT_FAILS)
    assert pipe.run().error is None
    sandbox.faults.clear()

    # The rerun that downloads the pending cohort is killed (SIGKILL) while its removal runs.
    sandbox.sendgrid.config.removal_delay_seconds = 3600
    tap_cmd = [
        str(BIN / "tap-amplitude-cohort"),
        "--config",
        str(_write_json(tmp_path / "tap.json", pipe.tap_config())),
        "--state",
        str(_write_json(tmp_path / "state.json", pipe.state)),
    ]
    target_cmd = [
        str(BIN / "target-sendgrid-contacts"),
        "--config",
        str(_write_json(tmp_path / "target.json", pipe.target_config)),
    ]
    out_path = tmp_path / "target-stdout.jsonl"
    seen = len(sandbox.requests)
    with out_path.open("w") as out:
        tap = subprocess.Popen(tap_cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        target = subprocess.Popen(
            target_cmd, stdin=tap.stdout, stdout=out, stderr=subprocess.DEVNULL
        )
        tap.stdout.close()
        deadline = time.monotonic() + 120
        removing = False
        while not removing and target.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
            removing = any(r["method"] == "DELETE" for r in sandbox.requests[seen:])
        target.kill()
        tap.kill()
        target.wait()
        tap.wait()
    assert removing, "the rerun never reached the removal (was the pending cohort skipped?)"
    assert list_emails(sandbox, COHORT) == before | after  # killed before anyone was removed
    written = [json.loads(line) for line in out_path.read_text().splitlines() if line]
    if written:
        pipe.state = written[-1]  # Meltano keeps the last STATE the target wrote
    assert "pending" in partitions(pipe.state)[COHORT]

    sandbox.sendgrid.config.removal_delay_seconds = 0.05
    rerun = pipe.run()

    assert rerun.error is None
    assert rerun.downloads == 1
    assert list_emails(sandbox, COHORT) == after
    assert rerun.report["pending"] == []

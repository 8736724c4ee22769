"""A partition the target marked ``pending`` is downloaded again; a complete download clears it."""

from __future__ import annotations

import copy
import logging

import pytest

from .harness import export_requests, run_tap, tap_config

pytestmark = pytest.mark.integration

MARKER = {
    "reason": "list '[Amplitude] Trial risk: trlrsk2': list export unreadable",
    "since": "2026-11-30T09:00:00+00:00",
}


def _mark(state: dict, cohort_id: str, kind: str, marker: dict) -> dict:
    state = copy.deepcopy(state)
    for partition in state["bookmarks"]["cohort_members"]["partitions"]:
        if partition["context"]["cohort_id"] == cohort_id:
            partition[kind] = marker
    return state


def _partition(run, cohort_id: str) -> dict:
    partitions = run.final_state["bookmarks"]["cohort_members"]["partitions"]
    return next(p for p in partitions if p["context"]["cohort_id"] == cohort_id)


def _downloaded(sandbox, since: int) -> list[str]:
    return [r["path"].rsplit("/", 1)[1] for r in export_requests(sandbox)[since:]]


def test_a_pending_cohort_is_downloaded_again_and_its_marker_goes(sandbox, caplog):
    first = run_tap(tap_config(sandbox))
    done = len(export_requests(sandbox))
    with caplog.at_level(logging.INFO):
        second = run_tap(
            tap_config(sandbox), state=_mark(first.final_state, "trlrsk2", "pending", MARKER)
        )
    assert _downloaded(sandbox, done) == ["trlrsk2"]  # the others stay skipped
    assert second.syncs()["trlrsk2"]["status"] == "complete"
    assert second.syncs()["pwrusr1"]["status"] == "unchanged"
    assert "pending" not in _partition(second, "trlrsk2")
    assert any(
        f"Cohort trlrsk2 pending since {MARKER['since']}: {MARKER['reason']}" in r.getMessage()
        and r.levelno == logging.WARNING
        for r in caplog.records
    )


def test_a_pending_cohort_whose_download_fails_stays_pending(sandbox):
    first = run_tap(tap_config(sandbox))
    sandbox.faults.add("storage", "GET", r"/files/.*pwrusr1", times=None, truncate_after=3000)
    second = run_tap(
        tap_config(sandbox), state=_mark(first.final_state, "pwrusr1", "pending", MARKER)
    )
    assert second.syncs()["pwrusr1"]["status"] == "failed"
    assert _partition(second, "pwrusr1")["pending"] == MARKER


def test_held_is_left_for_the_target_and_redownload_cohort_ids_forces_one(sandbox, caplog):
    first = run_tap(tap_config(sandbox))
    held = _mark(first.final_state, "trlrsk2", "held", {"reason": "guard", "since": "x"})
    done = len(export_requests(sandbox))
    waiting = run_tap(tap_config(sandbox), state=held)
    assert _downloaded(sandbox, done) == []  # a held removal waits for a person
    assert _partition(waiting, "trlrsk2")["held"] == {"reason": "guard", "since": "x"}
    with caplog.at_level(logging.WARNING):
        run_tap(tap_config(sandbox, redownload_cohort_ids=["trlrsk2"]), state=held)
    assert _downloaded(sandbox, done) == ["trlrsk2"]
    assert any("redownload_cohort_ids" in r.getMessage() for r in caplog.records)


def test_redownload_cohort_ids_outside_cohort_ids_are_named_not_ignored(sandbox, caplog):
    first = run_tap(tap_config(sandbox))
    done = len(export_requests(sandbox))
    with caplog.at_level(logging.WARNING):
        run_tap(
            tap_config(sandbox, redownload_cohort_ids=["trlrsk2", "nosuch9", "pwrusr1x"]),
            state=first.final_state,
        )
    assert _downloaded(sandbox, done) == ["trlrsk2"]
    warned = [r.getMessage() for r in caplog.records if "not in cohort_ids" in r.getMessage()]
    assert len(warned) == 1
    assert "nosuch9, pwrusr1x" in warned[0]
    assert "trlrsk2" not in warned[0]

"""All groups together stay within Amplitude's 60 cohort requests per 10 minutes."""

from __future__ import annotations

import pytest

from orchestrator.amplitude_budget import AmplitudeBudget, BudgetTooSmall


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def _budget(tmp_path, clock: Clock) -> AmplitudeBudget:
    return AmplitudeBudget(tmp_path / "budget.json", clock=clock, sleep=clock.sleep)


def test_groups_share_one_window_and_a_run_waits_for_room(tmp_path):
    clock = Clock()
    first, second = _budget(tmp_path, clock), _budget(tmp_path, clock)  # two processes
    assert first.reserve(40, "cohorts-hourly/run-1").waited_seconds == 0
    clock.now += 120
    assert second.reserve(20, "cohorts-daily/run-1").waited_seconds == 0
    waits: list[float] = []
    got = first.reserve(10, "cohorts-hourly/run-2", on_wait=waits.append)
    # The 40 reserved first leave the window 600 s after they were taken: 480 s from now.
    assert waits == [480.0]
    assert got.waited_seconds == 480.0
    assert clock.slept == [480.0]


def test_a_group_larger_than_one_window_is_refused_with_a_sentence(tmp_path):
    with pytest.raises(BudgetTooSmall, match="61 cohorts in one run exceed Amplitude's 60"):
        _budget(tmp_path, Clock()).reserve(61, "big")


def test_nothing_to_download_reserves_nothing(tmp_path):
    clock = Clock()
    budget = _budget(tmp_path, clock)
    assert budget.reserve(60, "a").waited_seconds == 0
    assert budget.reserve(0, "b").waited_seconds == 0
    assert clock.slept == []

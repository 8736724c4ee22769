"""When SendGrid's jobs are seen finished: the poll schedule around a learned latency."""

from __future__ import annotations

from target_sendgrid_contacts.jobs import LEARNED_STEP, next_wait

FLOOR = 0.2  # the sandbox environment's job_poll_interval_seconds


def seen_finished(latency: float, learned: float) -> tuple[float, int, float]:
    """Poll one job as JobFollower does; return (age seen finished, polls, last pending age)."""
    age, wait, polls, last_pending = FLOOR, FLOOR * 1.5, 0, 0.0
    while True:
        polls += 1
        if age >= latency:
            return age, polls, last_pending
        last_pending = age
        age += next_wait(age, wait, floor=FLOOR, learned=learned)
        wait = min(wait * 1.5, 30.0)


def test_nothing_learned_keeps_the_growing_interval() -> None:
    assert next_wait(5.0, 7.5, floor=FLOOR, learned=0.0) == 7.5
    assert next_wait(40.0, 30.0, floor=FLOOR, learned=0.0) == 30.0


def test_jobs_after_the_first_are_seen_soon_after_they_end() -> None:
    latency = 30.0
    first_seen, first_polls, learned = seen_finished(latency, learned=0.0)
    assert first_seen - latency > 4  # the growing interval alone: seen over 4 s late
    later_seen, later_polls, _ = seen_finished(latency, learned=learned)
    assert later_seen - latency <= LEARNED_STEP * latency  # within 3 s of its end
    assert later_polls <= first_polls + 3  # a few polls more at most, never a flood


def test_a_job_slower_than_twice_the_learned_latency_goes_back_to_growing_waits() -> None:
    learned = 10.0
    assert next_wait(12.0, 9.0, floor=FLOOR, learned=learned) == LEARNED_STEP * learned
    assert next_wait(25.0, 20.0, floor=FLOOR, learned=learned) == 20.0
    # Far before the learned latency, the growing interval stands.
    assert next_wait(1.0, 1.5, floor=FLOOR, learned=learned) == 1.5
    # Never faster than the configured first interval.
    assert next_wait(0.3, 0.45, floor=FLOOR, learned=0.5) == FLOOR

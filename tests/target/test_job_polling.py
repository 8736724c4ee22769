"""When SendGrid's jobs are seen finished: the poll schedule around a learned latency."""

from __future__ import annotations

import threading

from target_sendgrid_contacts.jobs import LEARNED_STEP, JobFollower, next_wait

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


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class _Jobs:
    """Answers job polls: a job is pending until its due time on the clock."""

    def __init__(self, clock: _Clock, due: dict[str, float]) -> None:
        self.clock = clock
        self.due = due

    def request(self, method: str, path: str) -> _Jobs._Answer:
        job_id = path.rsplit("/", 1)[-1]
        done = self.clock.now >= self.due[job_id]
        return self._Answer({"status": "completed" if done else "pending"})

    class _Answer:
        def __init__(self, body: dict) -> None:
            self.body = body

        def json(self) -> dict:
            return self.body


def _follow(due: dict[str, float], sent: dict[str, float]) -> dict[str, float]:
    """Drive a JobFollower's polls on a fake clock; return when each job was seen finished."""
    clock = _Clock()
    follower = JobFollower(
        _Jobs(clock, due),  # type: ignore[arg-type]
        poll_interval=FLOOR,
        timeout=600,
        monotonic=clock,
    )
    follower._thread = threading.current_thread()  # poll here, on the fake clock: no thread
    to_send = sorted(sent.items(), key=lambda kv: kv[1])
    seen: dict[str, float] = {}
    while to_send or follower._pending:
        soonest = min(follower._pending.values(), key=lambda p: p.next_poll, default=None)
        if to_send and (soonest is None or to_send[0][1] <= soonest.next_poll):
            job_id, clock.now = to_send.pop(0)
            follower.add(job_id, None)
            continue
        assert soonest is not None
        clock.now = max(clock.now, soonest.next_poll)
        follower._poll(soonest)
        seen.update({done.job_id: clock.now for done in follower.take_finished()})
    return seen


def test_a_job_already_scheduled_far_ahead_is_polled_again_once_another_finished() -> None:
    # Ten bodies sent half a second apart, each job pending 30 s (a real SendGrid's worst).
    sent = {f"job{n}": n * 0.5 for n in range(10)}
    due = {job_id: at + 30.0 for job_id, at in sent.items()}
    seen = _follow(due, sent)
    late = {job_id: seen[job_id] - due[job_id] for job_id in sent}
    assert late["job0"] > 4  # nothing learned yet: the growing interval overshoots
    # The last job of a settle is the one the run waits for: it is seen soon after its end.
    assert late["job9"] <= LEARNED_STEP * 30 + FLOOR

"""JobFollower: one thread polls every outstanding import job while the upload reads on."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

from target_sendgrid_contacts.sendgrid.client import IMPORT_JOB_PATH, SendGridClient
from target_sendgrid_contacts.sendgrid.errors import JobTimeoutError

_POLL_CAP_SECONDS = 30.0  # a one-contact job can stay pending for half a minute
# Near the latency learned from finished jobs, polls come this share of it apart (not half the
# age, as the growing interval would): the last job of a settle is seen soon after it ends.
LEARNED_STEP = 0.1


def next_wait(age: float, wait: float, *, floor: float, learned: float) -> float:
    """Seconds until the next poll of a job still pending ``age`` seconds after hand-over.

    Jobs sent one after another take about as long as each other, so once one has finished,
    its latency (``learned``: the age at which it was last seen pending) tells when the others
    will: from there up to twice it, polls come ``LEARNED_STEP`` of it apart instead of the
    growing interval. Before it, and for a job that outlives twice it, the interval grows.

    Args:
        age: Seconds since the job was handed over.
        wait: The growing interval's next wait.
        floor: The first poll interval (never poll faster).
        learned: Age at which a finished job was last seen pending (0: nothing learned).

    Returns:
        The wait.
    """
    if learned > 0 and age < 2 * learned and age + wait > learned:
        return max(floor, min(wait, learned * LEARNED_STEP))
    return wait


class FinishedJob(NamedTuple):
    """A job that left ``pending``, or whose following failed.

    Attributes:
        job_id: The import job id.
        token: What the caller attached when it handed the job over.
        job: The job JSON (None when ``error`` is set).
        error: Why the job could not be followed to its end (timeout, SendGrid unavailable).
    """

    job_id: str
    token: Any
    job: dict | None
    error: BaseException | None


@dataclass
class _Pending:
    job_id: str
    token: Any
    next_poll: float
    wait: float
    deadline: float
    handed_over: float
    last_pending_age: float = 0.0


class JobFollower:
    """Follows import jobs on a thread of its own, each polled with a growing interval.

    Once a job has finished, polls of the others come closer together around its latency
    (:func:`next_wait`), so a wait for the last job ends soon after SendGrid finished it.

    Only polling happens on that thread; what a finished job means (counts, rejects) is
    worked out by the caller's thread from :meth:`take_finished` / :meth:`wait_finished`.
    """

    def __init__(
        self,
        client: SendGridClient,
        *,
        poll_interval: float,
        timeout: float,
        kind: str = "import",
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """Create a follower (its thread starts with the first job).

        Args:
            client: A client no other thread uses (see ``SendGridClient.with_session``).
            poll_interval: First wait between polls of a job; it grows by half each poll.
            timeout: Bound on the wait for one job, from its hand-over.
            kind: What the jobs do, for messages (``import``, ``removal``).
            monotonic: Clock for poll times and deadlines.
        """
        self._client = client
        self._poll_interval = max(poll_interval, 0.01)
        self._timeout = timeout
        self._kind = kind
        self._monotonic = monotonic
        self._cond = threading.Condition()
        self._pending: dict[str, _Pending] = {}
        self._finished: deque[FinishedJob] = deque()
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._learned = 0.0  # age at which a finished job was last seen pending (the largest)

    @property
    def outstanding(self) -> int:
        """Jobs handed over and not yet taken back (pending, or finished and not taken)."""
        with self._cond:
            return len(self._pending) + len(self._finished)

    def add(self, job_id: str, token: Any) -> None:
        """Hand over a job just started; its first poll is one poll interval away.

        Args:
            job_id: The import job id.
            token: Anything; given back with the finished job.
        """
        now = self._monotonic()
        with self._cond:
            self._pending[job_id] = _Pending(
                job_id,
                token,
                now + self._poll_interval,
                self._poll_interval * 1.5,
                now + self._timeout,
                now,
            )
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="sendgrid-job-follower", daemon=True
                )
                self._thread.start()
            self._cond.notify_all()

    def take_finished(self) -> list[FinishedJob]:
        """Take the jobs that finished so far, without waiting.

        Returns:
            Finished jobs, in the order they were seen finished.
        """
        with self._cond:
            return self._take()

    def wait_finished(self, *, every: bool) -> list[FinishedJob]:
        """Wait for one finished job (or for every outstanding one), then take them.

        Args:
            every: Wait until no job is pending, instead of until one has finished.

        Returns:
            Finished jobs (empty only when nothing was outstanding).
        """
        with self._cond:
            while self._pending and not self._stopping and (every or not self._finished):
                self._cond.wait()
            return self._take()

    def stop(self) -> None:
        """Stop polling (jobs still pending are left to SendGrid; a rerun converges)."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5.0)

    def _take(self) -> list[FinishedJob]:
        taken = list(self._finished)
        self._finished.clear()
        return taken

    def _run(self) -> None:
        try:
            self._loop()
        finally:
            # Whatever ended the loop, no waiter may wait for jobs nobody polls any more.
            with self._cond:
                self._stopping = True
                for pending in list(self._pending.values()):
                    self._finished.append(
                        FinishedJob(
                            pending.job_id,
                            pending.token,
                            None,
                            JobTimeoutError(
                                f"SendGrid {self._kind} job {pending.job_id} was not "
                                "followed to its end (the run stopped)."
                            ),
                        )
                    )
                self._pending.clear()
                self._cond.notify_all()

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._stopping and not self._pending:
                    self._cond.wait()
                if self._stopping:
                    return
                now = self._monotonic()
                due = [p for p in self._pending.values() if p.next_poll <= now]
                if not due:
                    soonest = min(p.next_poll for p in self._pending.values())
                    self._cond.wait(timeout=soonest - now)
                    continue
            for pending in due:
                self._poll(pending)

    def _poll(self, pending: _Pending) -> None:
        try:
            job = self._client.request("GET", IMPORT_JOB_PATH.format(job_id=pending.job_id)).json()
        except Exception as exc:  # noqa: BLE001 - handed to the caller's thread, raised there
            self._finish(pending, None, exc)
            return
        if job.get("status") != "pending":
            self._learn(pending.last_pending_age)
            self._finish(pending, job, None)
            return
        now = self._monotonic()
        remaining = pending.deadline - now
        if remaining <= 0:
            self._finish(
                pending,
                None,
                JobTimeoutError(
                    f"SendGrid {self._kind} job {pending.job_id} was still pending after "
                    f"{self._timeout:g} s (job_timeout_seconds)."
                ),
            )
            return
        with self._cond:
            age = now - pending.handed_over
            pending.last_pending_age = age
            wait = next_wait(age, pending.wait, floor=self._poll_interval, learned=self._learned)
            pending.next_poll = now + min(wait, remaining)
            pending.wait = min(pending.wait * 1.5, _POLL_CAP_SECONDS)

    def _learn(self, latency: float) -> None:
        """Note a finished job's latency; bring forward polls the growing interval set too far."""
        with self._cond:
            if latency <= self._learned:
                return
            self._learned = latency
            step = max(self._poll_interval, latency * LEARNED_STEP)
            for other in self._pending.values():
                polled = other.handed_over + other.last_pending_age
                beyond = other.next_poll - other.handed_over > latency
                if beyond and 0 < other.last_pending_age < 2 * latency:
                    other.next_poll = min(other.next_poll, polled + step)

    def _finish(self, pending: _Pending, job: dict | None, error: BaseException | None) -> None:
        with self._cond:
            self._pending.pop(pending.job_id, None)
            self._finished.append(FinishedJob(pending.job_id, pending.token, job, error))
            self._cond.notify_all()

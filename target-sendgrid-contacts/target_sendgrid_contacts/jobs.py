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


class JobFollower:
    """Follows import jobs on a thread of its own, each polled with a growing interval.

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
            pending.next_poll = now + min(pending.wait, remaining)
            pending.wait = min(pending.wait * 1.5, _POLL_CAP_SECONDS)

    def _finish(self, pending: _Pending, job: dict | None, error: BaseException | None) -> None:
        with self._cond:
            self._pending.pop(pending.job_id, None)
            self._finished.append(FinishedJob(pending.job_id, pending.token, job, error))
            self._cond.notify_all()

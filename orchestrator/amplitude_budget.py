"""A cross-process budget of Amplitude cohort requests: 60 per 10 minutes for all groups together.

Amplitude allows 60 single-cohort requests per 10 minutes per app, whichever process makes them.
Before a group's run starts, it reserves one request per cohort it may download (a skipped,
unchanged cohort costs nothing, so this can only over-count) in a small JSON ledger shared by
every run on the machine, under an exclusive file lock. When the last 10 minutes leave too little,
the run waits, and says so, until enough of the window has passed.
"""

from __future__ import annotations

import fcntl
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

WINDOW_SECONDS = 600.0
WINDOW_REQUESTS = 60


class BudgetTooSmall(ValueError):
    """A group wants more requests than one window ever allows."""


@dataclass(frozen=True)
class Reservation:
    """What :meth:`AmplitudeBudget.reserve` did."""

    requests: int
    waited_seconds: float


class AmplitudeBudget:
    """The ledger file and its limits.

    Args:
        path: The ledger (JSON list of ``[timestamp, requests, who]``), created when missing.
        limit: Requests allowed per window.
        window_seconds: Length of the sliding window.
        clock: Wall clock (shared across processes, so not monotonic).
        sleep: Sleep function (injected by tests).
    """

    def __init__(
        self,
        path: Path,
        *,
        limit: int = WINDOW_REQUESTS,
        window_seconds: float = WINDOW_SECONDS,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.path = path
        self.limit = limit
        self.window = window_seconds
        self._clock = clock
        self._sleep = sleep

    def _try(self, requests: int, who: str) -> float | None:
        """Reserve under the lock; return None when done, else the seconds to wait."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a+", encoding="utf-8") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            handle.seek(0)
            text = handle.read()
            try:
                entries = [tuple(e) for e in json.loads(text)] if text.strip() else []
            except ValueError:
                entries = []  # a torn file: forget it rather than block every run
            now = self._clock()
            entries = [e for e in entries if e[0] > now - self.window]
            used = sum(int(e[1]) for e in entries)
            wait: float | None = None
            if used + requests <= self.limit:
                entries.append((now, requests, who))
            else:
                # Wait until enough of the oldest reservations leave the window.
                freed = used + requests - self.limit
                for stamp, count, _ in sorted(entries):
                    freed -= int(count)
                    if freed <= 0:
                        wait = max(stamp + self.window - now, 0.01)
                        break
            handle.seek(0)
            handle.truncate()
            handle.write(json.dumps(entries))
            return wait

    def reserve(
        self, requests: int, who: str, on_wait: Callable[[float], None] | None = None
    ) -> Reservation:
        """Reserve ``requests`` cohort requests, waiting while the window is full.

        Args:
            requests: Cohorts the run may download.
            who: Names the run in the ledger (job and run id; no personal data).
            on_wait: Called with the seconds it is about to wait.

        Returns:
            How many were reserved and how long it waited.

        Raises:
            BudgetTooSmall: When ``requests`` exceeds what one window allows.
        """
        if requests > self.limit:
            msg = (
                f"{requests} cohorts in one run exceed Amplitude's {self.limit} cohort requests "
                f"per {self.window / 60:.0f} minutes: split the group"
            )
            raise BudgetTooSmall(msg)
        waited = 0.0
        if requests <= 0:
            return Reservation(0, 0.0)
        while (wait := self._try(requests, who)) is not None:
            if on_wait is not None:
                on_wait(wait)
            self._sleep(wait)
            waited += wait
        return Reservation(requests, waited)

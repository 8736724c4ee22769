"""What the tap is doing now, and the one line (and exit code) a SIGTERM or SIGINT leaves.

The SDK's handler logs "Gracefully shutting down...", writes STATE and exits 0, so a scheduler
records a successful sync that delivered nothing; the tap overrides it with these.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager

IDLE = "starting or between cohorts"


def exit_code(signum: int) -> int:
    """The conventional exit code of a process stopped by a signal.

    Args:
        signum: Signal number.

    Returns:
        128 + the signal number (143 for SIGTERM, 130 for SIGINT).
    """
    return 128 + signum


def signal_name(signum: int) -> str:
    """``SIGTERM`` for 15, and so on.

    Args:
        signum: Signal number.

    Returns:
        The signal's name, or ``signal N`` when it has none.
    """
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


class Activity:
    """What the tap is doing now, in words (``downloading cohort X``).

    Attributes:
        now: The current activity.
        cohort_id: The cohort in flight, None between cohorts.
    """

    def __init__(self) -> None:
        """Start idle."""
        self.now = IDLE
        self.cohort_id: str | None = None

    @contextmanager
    def doing(self, what: str, cohort_id: str | None = None) -> Iterator[None]:
        """Say what the tap is doing for the time of a block.

        Args:
            what: The activity (``waiting for the export of cohort X``).
            cohort_id: The cohort it concerns.

        Yields:
            Nothing.
        """
        previous = self.now, self.cohort_id
        self.now, self.cohort_id = what, cohort_id if cohort_id is not None else self.cohort_id
        try:
            yield
        finally:
            self.now, self.cohort_id = previous


def restore_default_handlers() -> None:
    """Let a second signal stop the process at once (cleanup must not hang it)."""
    for name in ("SIGINT", "SIGTERM"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), signal.SIG_DFL)

"""What the target is doing now, and the one line (and exit code) a SIGTERM or SIGINT leaves.

The SDK's handler drains every sink, writes STATE and exits 0, so a scheduler records a
successful sync, and STATE could claim contacts SendGrid never got; the target overrides it.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager

IDLE = "reading input"


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
    """What the target is doing now, in words (``waiting for the import job of list X``).

    Attributes:
        now: The current activity.
    """

    def __init__(self) -> None:
        """Start reading input."""
        self.now = IDLE

    @contextmanager
    def doing(self, what: str) -> Iterator[None]:
        """Say what the target is doing for the time of a block.

        Args:
            what: The activity.

        Yields:
            Nothing.
        """
        previous, self.now = self.now, what
        try:
            yield
        finally:
            self.now = previous


def restore_default_handlers() -> None:
    """Let a second signal stop the process at once (cleanup must not hang it)."""
    for name in ("SIGINT", "SIGTERM"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), signal.SIG_DFL)

"""A fake clock for HTTP clients that take ``sleep`` and ``clock`` callables."""

from __future__ import annotations


class FakeTime:
    """A clock that only moves when the client sleeps; it records every sleep."""

    def __init__(self, now: float) -> None:
        self.now = now
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now

"""Shared fixtures: a fresh sandbox of both APIs on ephemeral 127.0.0.1 ports per test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace

import pytest

from sandbox import Sandbox, SandboxConfig

# Short delays so flows that poll finish in a fraction of a second.
FAST = SandboxConfig(
    export_polls_before_ready=1,
    import_delay_seconds=0.05,
    removal_delay_seconds=0.05,
    export_delay_seconds=0.05,
    field_activation_seconds=0.2,
)


@pytest.fixture
def sandbox_factory() -> Iterator[Callable[..., Sandbox]]:
    """Return ``make(**overrides)``: a started Sandbox with FAST settings plus the overrides.

    Every sandbox made is stopped at the end of the test.
    """
    started: list[Sandbox] = []

    def make(**overrides: object) -> Sandbox:
        sb = Sandbox(replace(FAST, **overrides)).start()  # type: ignore[arg-type]
        started.append(sb)
        return sb

    yield make
    for sb in started:
        sb.stop()


@pytest.fixture
def sandbox(sandbox_factory: Callable[..., Sandbox]) -> Sandbox:
    """A fresh, started sandbox with fast delays (stopped after the test)."""
    return sandbox_factory()

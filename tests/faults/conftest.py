"""Fixtures of the fault matrix: fast retries, and short HTTP timeouts where a case needs them."""

from __future__ import annotations

import pytest
from tap_amplitude_cohort.amplitude.client import AmplitudeClient
from target_sendgrid_contacts.sendgrid.client import SendGridClient


@pytest.fixture(autouse=True)
def quick_backoff(monkeypatch):
    """Retries back off for milliseconds, not seconds (how many retries is what matters)."""
    monkeypatch.setitem(AmplitudeClient.__init__.__kwdefaults__, "backoff_seconds", 0.01)
    monkeypatch.setitem(SendGridClient.__init__.__kwdefaults__, "backoff_seconds", 0.01)


@pytest.fixture
def short_timeouts(monkeypatch):
    """Both clients give up on an answer after one second (the delay faults wait 1.6 s)."""
    monkeypatch.setitem(AmplitudeClient.__init__.__kwdefaults__, "timeout", (1.0, 1.0))
    monkeypatch.setitem(SendGridClient.__init__.__kwdefaults__, "timeout", 1.0)

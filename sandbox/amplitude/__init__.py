"""Fake Amplitude Behavioral Cohorts API: cohort list, asynchronous export, gzip CSV download.

``state`` holds what the service remembers, ``app`` answers HTTP, ``responses`` its bodies.
"""

from __future__ import annotations

from sandbox.amplitude.app import AmplitudeApp, limit_concurrency
from sandbox.amplitude.state import AmplitudeState, CohortTimes, ExportJob

__all__ = ["AmplitudeApp", "AmplitudeState", "CohortTimes", "ExportJob", "limit_concurrency"]

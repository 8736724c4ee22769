"""The project's cohort list, fetched once per run and shared by the streams."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tap_amplitude_cohort.amplitude.client import AmplitudeClient


class CohortDirectory:
    """Lazily lists the cohorts (one cheap call, no download quota) and looks them up by id.

    Args:
        client: Returns the Amplitude client (built on first use, so discovery needs no network).
    """

    def __init__(self, client: Callable[[], AmplitudeClient]) -> None:
        self._client = client
        self._cohorts: list[dict[str, Any]] | None = None
        self._by_id: dict[str, dict[str, Any]] = {}

    @property
    def cohorts(self) -> list[dict[str, Any]]:
        """Every cohort of the project, as Amplitude lists them."""
        if self._cohorts is None:
            self._cohorts = self._client().list_cohorts()
            self._by_id = {str(c.get("id")): c for c in self._cohorts}
        return self._cohorts

    def get(self, cohort_id: str) -> dict[str, Any] | None:
        """Return the cohort with this id, or None."""
        _ = self.cohorts
        return self._by_id.get(cohort_id)

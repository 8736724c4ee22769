"""Errors raised by the Amplitude client.

Every message names the cohort it concerns (when there is one) and never carries credentials
or member data, so it can be logged and written to ``cohort_syncs.message`` as it is.
"""

from __future__ import annotations


class AmplitudeError(Exception):
    """Base class of every error the Amplitude client raises."""


class AmplitudeAPIError(AmplitudeError):
    """Amplitude answered with a status that retrying cannot fix (4xx other than 429).

    Attributes:
        status: The HTTP status code.
    """

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.status = status


class RetriesExhausted(AmplitudeError):
    """A call kept failing with 429, 5xx or connection errors until the retry bound.

    Attributes:
        status: The last HTTP status code, or None when the last attempt got no answer.
    """

    def __init__(self, message: str, *, status: int | None) -> None:
        super().__init__(message)
        self.status = status


class RateLimited(RetriesExhausted):
    """Amplitude kept answering 429 (too many concurrent or recent requests)."""


class ExportFailed(AmplitudeError):
    """A cohort export did not produce a whole, readable file."""


class ExportTimedOut(ExportFailed):
    """The export did not complete within ``max_export_wait_seconds``."""


class ExportCorrupt(ExportFailed):
    """The export file is truncated or is not valid gzip / CSV."""


class ExportConnectionLost(ExportFailed):
    """The connection dropped while the export file was being read."""

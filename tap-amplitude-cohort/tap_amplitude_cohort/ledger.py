"""What happened to each cohort this run: the source of the ``cohort_syncs`` records.

``CohortMembersStream`` fills the ledger as it goes; ``CohortSyncsStream`` reads it after every
member record was written, and the tap turns its failures into a non-zero exit.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Literal

from tap_amplitude_cohort.members import format_datetime

CohortStatus = Literal["complete", "unchanged", "failed"]
COMPLETE: CohortStatus = "complete"
UNCHANGED: CohortStatus = "unchanged"
FAILED: CohortStatus = "failed"


@dataclass(frozen=True)
class CohortOutcome:
    """The end state of one cohort in this run.

    Attributes:
        cohort_id: The cohort.
        cohort_name: Its name (None when the cohort is unknown).
        cohort_last_computed: Its lastComputed as listed at the start of the run.
        status: ``complete``, ``unchanged`` or ``failed``.
        member_count: Members delivered in this run (some, for a failure part-way).
        message: Why, for ``unchanged`` and ``failed``; None for ``complete``.
        synced_at: When the outcome was decided.
    """

    cohort_id: str
    cohort_name: str | None
    cohort_last_computed: datetime.datetime | None
    status: CohortStatus
    member_count: int
    message: str | None
    synced_at: datetime.datetime

    def as_record(self) -> dict:
        """Return the ``cohort_syncs`` record."""
        return {
            "cohort_id": self.cohort_id,
            "cohort_name": self.cohort_name,
            "cohort_last_computed": format_datetime(self.cohort_last_computed),
            "status": self.status,
            "member_count": self.member_count,
            "message": self.message,
            "synced_at": format_datetime(self.synced_at),
        }


class SyncLedger:
    """Outcomes of this run, one per cohort, in the order they were decided."""

    def __init__(self) -> None:
        self._outcomes: dict[str, CohortOutcome] = {}
        self.downloads = 0  # export requests (request/{id} calls) accepted by Amplitude

    def record(self, outcome: CohortOutcome) -> None:
        """Record (or replace) a cohort's outcome."""
        self._outcomes[outcome.cohort_id] = outcome

    def interrupt(self, cohort_id: str, message: str) -> None:
        """Fail a cohort a signal stopped (keeping what is known of it).

        Args:
            cohort_id: The cohort in flight.
            message: Why (``interrupted by SIGTERM``).
        """
        known = self._outcomes.get(cohort_id)
        self._outcomes[cohort_id] = CohortOutcome(
            cohort_id,
            known.cohort_name if known else None,
            known.cohort_last_computed if known else None,
            FAILED,
            known.member_count if known else 0,
            message,
            datetime.datetime.now(datetime.timezone.utc),
        )

    @property
    def outcomes(self) -> list[CohortOutcome]:
        """Every outcome, in the order the cohorts were processed."""
        return list(self._outcomes.values())

    @property
    def failed(self) -> list[CohortOutcome]:
        """The failed cohorts."""
        return [o for o in self._outcomes.values() if o.status == FAILED]

    def counts(self) -> dict[CohortStatus, int]:
        """How many cohorts ended in each status."""
        counts: dict[CohortStatus, int] = {COMPLETE: 0, UNCHANGED: 0, FAILED: 0}
        for outcome in self._outcomes.values():
            counts[outcome.status] += 1
        return counts

    def summary(self) -> str:
        """One line: counts per status and downloads used."""
        counts = self.counts()
        return (
            f"{counts[COMPLETE]} complete, {counts[UNCHANGED]} unchanged, {counts[FAILED]} failed; "
            f"{self.downloads} cohort download(s) used (request/{{id}} calls count against "
            "Amplitude's monthly quota)"
        )

    def failure_summary(self) -> str | None:
        """One line naming the failed cohorts and why, or None when none failed."""
        failed = self.failed
        if not failed:
            return None
        parts = [f"{o.cohort_id} ({o.cohort_name or '?'}): {o.message}" for o in failed]
        return f"{len(failed)} cohort(s) failed: " + "; ".join(parts)

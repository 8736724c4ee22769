"""Cohort tracking: member records per cohort, the completeness signal, and the STATE markers.

Everything the pending/held judgement and the removal decision need to know about cohorts is
gathered here while the input flows; the judging itself is pure (``bookmarks.py``,
``completeness.py``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Literal, TypedDict, cast

from target_sendgrid_contacts.bookmarks import IN_PROGRESS, Judgement, judge, mark_state, markers_in
from target_sendgrid_contacts.completeness import cohort_completeness
from target_sendgrid_contacts.list_names import ListNamer
from target_sendgrid_contacts.outcomes import Ledger, ListOutcome
from target_sendgrid_contacts.removal import CohortState

CohortSyncStatus = Literal["complete", "unchanged", "failed"]


class CohortSync(TypedDict, total=False):
    """A ``cohort_syncs`` record: the tap's word on one cohort in this run."""

    cohort_id: str
    cohort_name: str
    status: CohortSyncStatus
    member_count: int
    message: str


class CohortTracker:
    """What arrived per cohort in this run, and the markers of the STATEs received.

    Attributes:
        records: ``cohort_members``-like records received per cohort id.
        syncs: The last ``cohort_syncs`` record per cohort id.
        lists: The first list each cohort fed.
        markers_seen: ``pending``/``held`` markers of the STATEs received, per cohort.
        judgement: The final verdicts, once the run finished (or failed).
    """

    def __init__(self, namer: ListNamer, *, mirror: bool, started_at: str) -> None:
        """Start empty.

        Args:
            namer: Names the list of a cohort the tap reported but delivered nobody for.
            mirror: ``sync_mode`` is mirror (else a list converges once its upserts are done).
            started_at: ISO time of the run's start (``since`` of a new marker).
        """
        self.mirror = mirror
        self.records: Counter[str] = Counter()
        self.syncs: dict[str, CohortSync] = {}
        self.lists: dict[str, str] = {}
        self.markers_seen: dict[str, dict[str, dict]] = {}
        self.judgement: Judgement | None = None
        self.started_at = started_at
        self._namer = namer

    def fed(self, cohort_id: str, list_name: str) -> None:
        """Note that a cohort feeds a list.

        Args:
            cohort_id: The cohort.
            list_name: Its list.
        """
        self.lists.setdefault(cohort_id, list_name)

    def synced(self, record: Mapping) -> None:
        """Note a ``cohort_syncs`` record (the completeness signal).

        Args:
            record: The record.
        """
        cohort_id = record.get("cohort_id")
        if cohort_id is not None:
            self.syncs[str(cohort_id)] = cast("CohortSync", dict(record))

    def completeness(self, cohort_ids: Iterable[str]) -> tuple[CohortState, ...]:
        """Whether each cohort arrived whole in this run (sorted by id).

        Args:
            cohort_ids: The cohorts of a list.

        Returns:
            One state per cohort.
        """
        return tuple(
            CohortState(*cohort_completeness(c, self.syncs.get(c), self.records[c]))
            for c in sorted(cohort_ids)
        )

    def register_synced(self, ledger: Ledger) -> None:
        """Give each reported cohort its list's outcome, even when it delivered nobody.

        A complete cohort that delivered nobody still has (and, mirrored, empties) its list,
        and a cohort the tap skipped or lost blocks removal on a list it shares with others.

        Args:
            ledger: The run's counts.
        """
        for cohort_id, sync in self.syncs.items():
            list_name = self.lists.get(cohort_id) or self._namer.name_for(
                cohort_id, sync.get("cohort_name")
            )
            if list_name not in ledger.outcomes and sync.get("status") != "complete":
                continue  # nothing arrived for it, and nothing may be removed
            ledger.for_list(list_name).cohort_ids.add(cohort_id)

    def note_state(self, state: Mapping) -> None:
        """Remember the markers of a STATE received (to keep their ``since``).

        Args:
            state: The STATE value.
        """
        for cohort_id, markers in markers_in(state).items():
            seen = self.markers_seen.setdefault(cohort_id, {})
            for kind, marker in markers.items():
                seen.setdefault(kind, marker)

    def conclude(self, outcomes: Iterable[ListOutcome], *, stopped: str | None) -> None:
        """Judge every list and cohort once the run ended (see ``bookmarks.judge``).

        Args:
            outcomes: The run's lists.
            stopped: None when the run finished, else why no list is final.
        """
        self.judgement = judge(
            outcomes, self.syncs, self.records, mirror=self.mirror, stopped=stopped
        )

    def current(self, outcomes: Iterable[ListOutcome]) -> Judgement:
        """The final judgement, or, before the end, every list still in progress.

        Args:
            outcomes: The run's lists.

        Returns:
            The judgement.
        """
        return self.judgement or judge(
            outcomes, self.syncs, self.records, mirror=self.mirror, stopped=IN_PROGRESS
        )

    def state_to_emit(self, state: dict, outcomes: Iterable[ListOutcome]) -> dict:
        """Return the STATE to write, each judged cohort's partition marked by its verdict.

        Before the end of the input no list is final, so every cohort that arrived so far is
        pending in an intermediate STATE (a stop before its removal must not lose it).

        Args:
            state: The latest STATE value received.
            outcomes: The run's lists.

        Returns:
            The STATE value to write.
        """
        verdicts = self.current(outcomes).cohorts
        return mark_state(state, verdicts, seen=self.markers_seen, now=self.started_at)

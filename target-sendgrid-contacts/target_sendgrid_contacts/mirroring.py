"""The mirror step: per list, gather the facts, let `plan_removal` decide, carry the plan out."""

from __future__ import annotations

import logging

from target_sendgrid_contacts.cohort_tracker import CohortTracker
from target_sendgrid_contacts.outcomes import Ledger, ListOutcome
from target_sendgrid_contacts.removal import RemovalFacts, plan_removal
from target_sendgrid_contacts.snapshots import ListSnapshots
from target_sendgrid_contacts.writers import Writer

LOGGER = logging.getLogger("target_sendgrid_contacts")


class ListMirror:
    """Brings each list to its cohort(s) once every upsert finished; owns the run's snapshots."""

    def __init__(
        self,
        *,
        ledger: Ledger,
        tracker: CohortTracker,
        snapshots: ListSnapshots,
        writer: Writer,
        mirror: bool,
        max_removal_ratio: float | None,
    ) -> None:
        """Keep what the decision and the removal need.

        Args:
            ledger: The run's counts.
            tracker: The run's cohort tracking.
            snapshots: The run's list snapshots (the sender compares with them too).
            writer: Removes the leavers (or, in a dry run, records who would go).
            mirror: ``sync_mode`` is mirror.
            max_removal_ratio: Largest share of a list one run may remove, or None.
        """
        self._ledger = ledger
        self._tracker = tracker
        self._snapshots = snapshots
        self._writer = writer
        self._mirror = mirror
        self._ratio = max_removal_ratio

    def bring(self, outcome: ListOutcome) -> None:
        """Decide about the list's leavers and carry the plan out; the outcome says what happened.

        Args:
            outcome: The list's counts.
        """
        name = outcome.name
        fed_without_cohort = name in self._ledger.non_cohort_lists
        cohorts = self._tracker.completeness(outcome.cohort_ids)
        exists = False
        if self._mirror and not fed_without_cohort and self._snapshots.unreadable(name) is None:
            exists = name in self._snapshots or self._writer.directory.find(name) is not None
            if exists and cohorts and all(c.complete for c in cohorts):
                self._snapshots.of(outcome)  # read now if no upsert needed it
        plan = plan_removal(
            RemovalFacts(
                mirror=self._mirror,
                fed_without_cohort=fed_without_cohort,
                unreadable=self._snapshots.unreadable(name),
                cohorts=cohorts,
                list_exists=exists,
                members=self._snapshots.members(name) if self._mirror else None,
                max_removal_ratio=self._ratio,
            )
        )
        outcome.held_share = plan.held_share
        if plan.log is not None:
            getattr(LOGGER, plan.log)("List %r: no removal: %s", name, plan.reason)
        if plan.remove:  # the writer says what happened once it happened
            self._writer.remove(outcome, plan, self._snapshots.of(outcome).leavers())
        else:
            outcome.removal, outcome.removal_reason = plan.status, plan.reason

    def close(self) -> None:
        """Close and delete every snapshot (safe to call twice)."""
        self._snapshots.close()

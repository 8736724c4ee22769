"""What happened to every contact record, per list: counts that must add up."""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field

from target_sendgrid_contacts.removal import RemovalStatus

LOGGER = logging.getLogger("target_sendgrid_contacts")


@dataclass
class ListOutcome:
    """Counts for one destination list.

    Attributes:
        name: List name.
        list_id: SendGrid list id (None when the list does not exist, e.g. in a dry run).
        cohort_ids: Cohorts that fed the list in this run.
        streams: Streams that fed the list.
        received: Contact records received for the list.
        upserted: Contacts sent and accepted by SendGrid (in a dry run: that would be sent).
        created: Contacts SendGrid reports as created.
        updated: Contacts SendGrid reports as updated.
        unchanged: Contacts already on the list with equal values (mirror mode), not sent.
        rejected: Rejections by reason code.
        truncated: Values cut to SendGrid's limits, by field.
        unconvertible: Values left out by field (name or custom field) because they did not
            fit: a list or object as text, a word as a number; the contact is still synced.
        removed: Members taken off the list (in a dry run: that would be).
        removal: What happened to the list's leavers, with ``removal_reason``.
        removal_reason: Why removal ran or not.
        held_share: Set when only ``max_removal_ratio`` stopped the removal: the share of the
            list it would have removed (a person's decision, not a fault).
    """

    name: str
    list_id: str | None = None
    cohort_ids: set[str] = field(default_factory=set)
    streams: set[str] = field(default_factory=set)
    received: int = 0
    upserted: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    truncated: Counter[str] = field(default_factory=Counter)
    unconvertible: Counter[str] = field(default_factory=Counter)
    removed: int = 0
    removal: RemovalStatus = RemovalStatus.NOT_APPLICABLE
    removal_reason: str = ""
    held_share: float | None = None

    @property
    def rejected_total(self) -> int:
        """All rejections of the list."""
        return sum(self.rejected.values())

    def adds_up(self) -> bool:
        """Whether received = upserted + unchanged + rejected.

        Returns:
            True when every record is accounted for.
        """
        return self.received == self.upserted + self.unchanged + self.rejected_total

    def as_dict(self) -> dict:
        """The list's entry in the JSON report.

        Returns:
            A JSON-ready dict.
        """
        return {
            "list_name": self.name,
            "list_id": self.list_id,
            "cohort_id": ",".join(sorted(self.cohort_ids)) or None,
            "streams": sorted(self.streams),
            "received": self.received,
            "upserted": self.upserted,
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "rejected": self.rejected_total,
            "rejected_by_reason": dict(sorted(self.rejected.items())),
            "truncated": dict(sorted(self.truncated.items())),
            "unconvertible": dict(sorted(self.unconvertible.items())),
            "removed": self.removed,
            "removal": self.removal.value,
            "removal_reason": self.removal_reason,
            "adds_up": self.adds_up(),
        }


class Ledger:
    """Every list's counts in this run, and which lists no cohort feeds.

    Attributes:
        outcomes: Counts per list name.
        non_cohort_lists: Lists fed by a stream without cohort fields (never mirrored).
        records_read: Contact records read, all streams.
    """

    def __init__(self, *, mirror: bool) -> None:
        """Start empty.

        Args:
            mirror: ``sync_mode`` is mirror (a list no cohort feeds is then worth a line).
        """
        self.outcomes: dict[str, ListOutcome] = {}
        self.non_cohort_lists: set[str] = set()
        self.records_read = 0
        self._mirror = mirror

    def for_list(self, list_name: str) -> ListOutcome:
        """Return a list's counts, created on first use.

        Args:
            list_name: List name.

        Returns:
            The list's outcome.
        """
        outcome = self.outcomes.get(list_name)
        if outcome is None:
            outcome = self.outcomes[list_name] = ListOutcome(list_name)
        return outcome

    def fed_by(self, list_name: str, stream: str, cohort_id: str | None) -> ListOutcome:
        """Return a list's counts, noting the stream and cohort that feed it.

        Args:
            list_name: List name.
            stream: Stream name.
            cohort_id: Cohort id of the record, None for a stream without cohort fields.

        Returns:
            The list's outcome.
        """
        outcome = self.for_list(list_name)
        outcome.streams.add(stream)
        if cohort_id is not None:
            outcome.cohort_ids.add(cohort_id)
        elif list_name not in self.non_cohort_lists:
            self.non_cohort_lists.add(list_name)
            if self._mirror:
                LOGGER.info(
                    "List %r is fed by stream %r, which has no cohort fields: it is only "
                    "upserted, never mirrored (no completeness signal)",
                    list_name,
                    stream,
                )
        return outcome

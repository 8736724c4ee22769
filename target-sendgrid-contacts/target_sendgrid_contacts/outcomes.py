"""What happened to every contact record, per list: counts that must add up."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


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
        removal: ``ran``, ``skipped`` or ``not applicable``, with ``removal_reason``.
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
    removal: str = "not applicable"
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
            "removal": self.removal,
            "removal_reason": self.removal_reason,
            "adds_up": self.adds_up(),
        }

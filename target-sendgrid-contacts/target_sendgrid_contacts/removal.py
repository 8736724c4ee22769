"""Pure: may members be removed from a list in this run? Facts in, a typed plan out.

Members are removed only from a whole snapshot of a list whose every cohort was delivered whole
in this run, and never past ``max_removal_ratio``. The run gathers the facts and carries out the
plan; nothing here reads SendGrid.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Literal


class RemovalStatus(str, enum.Enum):
    """What happened to a list's leavers (the report's ``removal``)."""

    RAN = "ran"
    SKIPPED = "skipped"
    NOT_APPLICABLE = "not applicable"
    DRY_RUN = "dry run"

    def __str__(self) -> str:
        """The report's word."""
        return self.value


@dataclass(frozen=True)
class CohortState:
    """Whether one cohort of a list arrived whole in this run.

    Attributes:
        complete: Delivered whole.
        reason: A sentence for the report.
    """

    complete: bool
    reason: str


@dataclass(frozen=True)
class Members:
    """A list's snapshot, reduced to what the decision needs.

    Attributes:
        size: Members at export time.
        leavers: Members not in this run's cohort(s).
    """

    size: int
    leavers: int


@dataclass(frozen=True)
class RemovalFacts:
    """Everything the decision for one list depends on.

    Attributes:
        mirror: ``sync_mode`` is mirror.
        fed_without_cohort: A stream without cohort fields feeds the list.
        unreadable: Why the list's export could not be read, if it could not.
        cohorts: Completeness of each cohort feeding the list (sorted by id).
        list_exists: SendGrid has the list (or the run created it).
        members: The snapshot's figures, when the snapshot was read.
        max_removal_ratio: Largest share of a list one run may remove, or None.
    """

    mirror: bool
    fed_without_cohort: bool = False
    unreadable: str | None = None
    cohorts: tuple[CohortState, ...] = ()
    list_exists: bool = False
    members: Members | None = None
    max_removal_ratio: float | None = None

    @property
    def complete(self) -> bool:
        """Every cohort of the list arrived whole (and there is at least one)."""
        return bool(self.cohorts) and all(c.complete for c in self.cohorts)


@dataclass(frozen=True)
class RemovalPlan:
    """What the run does about a list's leavers.

    Attributes:
        status: The report's ``removal``.
        reason: The report's ``removal_reason``.
        remove: Members to take off the list (0: nothing to do).
        decision: The guard's sentence alone (a dry run reports it with what it would remove).
        held_share: Set when only ``max_removal_ratio`` refused: the share it would remove.
        log: The level at which the run logs "no removal" (None: not logged).
    """

    status: RemovalStatus
    reason: str
    remove: int = 0
    decision: str = ""
    held_share: float | None = None
    log: Literal["info", "warning"] | None = None


@dataclass(frozen=True)
class RemovalDecision:
    """Whether leavers may be taken off a list in this run, and why.

    Attributes:
        allowed: True when removal may go ahead.
        reason: A sentence for the report and the log.
    """

    allowed: bool
    reason: str


def removal_decision(
    *, list_size: int, leavers: int, cohort_complete: bool, max_removal_ratio: float | None
) -> RemovalDecision:
    """Decide whether a mirror run may remove a list's leavers.

    Args:
        list_size: Members of the list at export time.
        leavers: Members not in the cohort.
        cohort_complete: The tap delivered the whole cohort in this run.
        max_removal_ratio: Largest share of the list one run may remove (0-1), or None.

    Returns:
        The decision with a reason naming the numbers.
    """
    if not cohort_complete:
        return RemovalDecision(
            False,
            f"cohort not delivered whole in this run: nobody removed ({leavers} of {list_size} "
            "members would have left)",
        )
    if leavers == 0:
        return RemovalDecision(True, "nobody left the cohort")
    if max_removal_ratio is not None and list_size > 0:
        share = leavers / list_size
        if share > max_removal_ratio:
            return RemovalDecision(
                False,
                f"would remove {leavers} of {list_size} members ({share:.1%}), more than "
                f"max_removal_ratio {max_removal_ratio:g} ({max_removal_ratio:.1%}): "
                "nobody removed",
            )
    return RemovalDecision(True, f"{leavers} of {list_size} members left the cohort")


def plan_removal(facts: RemovalFacts) -> RemovalPlan:
    """Decide what happens to one list's leavers.

    Args:
        facts: The list's facts.

    Returns:
        The plan; ``remove`` is non-zero only when removal may go ahead.
    """
    skipped = RemovalStatus.SKIPPED
    if not facts.mirror:
        return RemovalPlan(RemovalStatus.NOT_APPLICABLE, "sync_mode upsert")
    if facts.fed_without_cohort:
        return RemovalPlan(
            skipped, "fed by a stream without cohort fields (no completeness signal)"
        )
    if facts.unreadable is not None:
        # Its snapshot is empty, so it has no leavers; say so instead of "ran".
        return RemovalPlan(skipped, f"list export unreadable: {facts.unreadable}", log="warning")
    members = facts.members
    if not facts.complete:
        reason = "; ".join(c.reason for c in facts.cohorts if not c.complete)
        if members is not None:
            decision = removal_decision(
                list_size=members.size,
                leavers=members.leavers,
                cohort_complete=False,
                max_removal_ratio=facts.max_removal_ratio,
            )
            reason += f" ({decision.reason})"
        return RemovalPlan(skipped, reason, log="info")
    if not facts.list_exists or members is None:
        return RemovalPlan(RemovalStatus.NOT_APPLICABLE, "the list does not exist")
    decision = removal_decision(
        list_size=members.size,
        leavers=members.leavers,
        cohort_complete=True,
        max_removal_ratio=facts.max_removal_ratio,
    )
    if not decision.allowed:
        # Only the guard refuses a complete cohort: a person's decision, not a fault.
        share = members.leavers / members.size if members.size else 1.0
        return RemovalPlan(
            skipped, decision.reason, decision=decision.reason, held_share=share, log="warning"
        )
    reasons = "; ".join(c.reason for c in facts.cohorts)
    return RemovalPlan(
        RemovalStatus.RAN,
        f"{reasons}; {decision.reason}",
        remove=members.leavers,
        decision=decision.reason,
    )

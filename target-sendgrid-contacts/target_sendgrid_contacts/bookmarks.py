"""Pure: bookmarks follow the list, not the download (which cohorts are pending, and STATE).

The tap keeps one ``cohort_members`` state partition per cohort (``context.cohort_id``,
``last_computed``, ``export_options``). A partition whose list this run could not converge
gets a ``pending`` marker (``{"reason", "since"}``): the tap downloads that cohort on the next
run even though ``lastComputed`` did not move, and drops the marker once it has delivered it
whole. A removal stopped by ``max_removal_ratio`` is a person's decision, not a fault: the
partition gets a ``held`` note instead, and nothing is downloaded again until a person acts.
"""

from __future__ import annotations

import copy
import json
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final, Literal

from target_sendgrid_contacts.completeness import cohort_completeness
from target_sendgrid_contacts.outcomes import ListOutcome
from target_sendgrid_contacts.removal import RemovalStatus

VerdictStatus = Literal["converged", "pending", "held"]
CONVERGED: Final = "converged"
PENDING: Final = "pending"
HELD: Final = "held"
MARKERS: tuple[VerdictStatus, ...] = (PENDING, HELD)
COHORT_STREAM = "cohort_members"  # the tap's stream: where a missing partition is added
CONVERGED_REMOVALS = frozenset(
    {RemovalStatus.RAN, RemovalStatus.DRY_RUN, RemovalStatus.NOT_APPLICABLE}
)
IN_PROGRESS = "the run had not finished when this STATE was written"


@dataclass(frozen=True)
class Verdict:
    """Where a list (or one cohort's share of it) stands at the end of the run.

    Attributes:
        status: ``converged``, ``pending`` or ``held``.
        reason: Why, for ``pending`` and ``held`` (no personal data).
    """

    status: VerdictStatus
    reason: str = ""


@dataclass(frozen=True)
class CohortVerdict:
    """A cohort's verdict over every list it fed in this run.

    Attributes:
        cohort_id: The cohort.
        status: ``converged``, ``pending`` (a list of it is not converged) or ``held`` (only
            ``max_removal_ratio`` stands between a list of it and the cohort).
        reason: Why, naming the list(s).
        lists: The lists concerned.
        apply: For ``held``: how a person applies the held removal.
    """

    cohort_id: str
    status: VerdictStatus
    reason: str = ""
    lists: tuple[str, ...] = ()
    apply: str | None = None


@dataclass(frozen=True)
class Judgement:
    """Verdicts per list and per cohort."""

    lists: dict[str, Verdict]
    cohorts: dict[str, CohortVerdict]


def how_to_apply(cohort_ids: Iterable[str], share: float) -> str:
    """The sentence that tells a person how to apply a removal held by ``max_removal_ratio``.

    Args:
        cohort_ids: Cohorts feeding the list.
        share: The share of the list the removal would take (0-1).

    Returns:
        The sentence.
    """
    needed = math.ceil(share * 1000) / 1000
    ids = json.dumps(sorted(cohort_ids))
    return (
        f"raise max_removal_ratio to {needed:g} or more (or unset it) and run once with the "
        f"tap setting redownload_cohort_ids: {ids}"
    )


def judge(
    outcomes: Iterable[ListOutcome],
    syncs: Mapping[str, Mapping],
    records: Mapping[str, int],
    *,
    mirror: bool,
    stopped: str | None = None,
) -> Judgement:
    """Decide, per list and per cohort, whether the list is brought to its cohort(s).

    Args:
        outcomes: The run's lists (those without cohorts are not judged).
        syncs: The last ``cohort_syncs`` record per cohort.
        records: ``cohort_members`` records received per cohort.
        mirror: ``sync_mode`` is mirror (else upsert: converged once its upserts are done).
        stopped: None when the run finished; else why no list is final yet (still in
            progress, or a failure), lists whose removal already ran excepted.

    Returns:
        The judgement.
    """
    lists: dict[str, Verdict] = {}
    shares: dict[str, list[tuple[str, Verdict, str | None]]] = defaultdict(list)
    for outcome in outcomes:
        if not outcome.cohort_ids:
            continue
        per_cohort = _judge_list(outcome, syncs, records, mirror=mirror, stopped=stopped)
        pending = [v for v in per_cohort.values() if v.status == PENDING]
        held = [v for v in per_cohort.values() if v.status == HELD]
        verdict = (pending or held or [Verdict(CONVERGED)])[0]
        lists[outcome.name] = verdict
        apply = None
        if verdict.status == HELD and outcome.held_share is not None:
            apply = how_to_apply(outcome.cohort_ids, outcome.held_share)
        for cohort_id, cohort_verdict in per_cohort.items():
            shares[cohort_id].append((outcome.name, cohort_verdict, apply))
    for cohort_id, sync in syncs.items():
        if cohort_id in shares or sync.get("status") == "unchanged":
            continue  # an unchanged cohort that fed no list: its partition stays as it is
        if stopped is not None:
            verdict = Verdict(PENDING, stopped)
        else:
            ok, why = cohort_completeness(cohort_id, sync, records.get(cohort_id, 0))
            verdict = Verdict(CONVERGED) if ok else Verdict(PENDING, why)
        shares[cohort_id].append(("", verdict, None))
    return Judgement(lists, {c: _combine(c, entries) for c, entries in shares.items()})


def _judge_list(
    outcome: ListOutcome,
    syncs: Mapping[str, Mapping],
    records: Mapping[str, int],
    *,
    mirror: bool,
    stopped: str | None,
) -> dict[str, Verdict]:
    if (
        mirror
        and outcome.removal in CONVERGED_REMOVALS
        and (stopped is None or outcome.removal == RemovalStatus.RAN)
    ):
        return dict.fromkeys(outcome.cohort_ids, Verdict(CONVERGED))
    if stopped is not None:
        return dict.fromkeys(outcome.cohort_ids, Verdict(PENDING, stopped))
    if mirror:
        # Every cohort of a list it did not converge: the list needs them all whole in one run.
        if outcome.held_share is not None:
            return dict.fromkeys(outcome.cohort_ids, Verdict(HELD, outcome.removal_reason))
        reason = outcome.removal_reason or "its list was not brought to the cohort"
        return dict.fromkeys(outcome.cohort_ids, Verdict(PENDING, reason))
    verdicts = {}
    for cohort_id in outcome.cohort_ids:
        sync = syncs.get(cohort_id)
        ok, why = cohort_completeness(cohort_id, sync, records.get(cohort_id, 0))
        unchanged = sync is not None and sync.get("status") == "unchanged"
        verdicts[cohort_id] = Verdict(CONVERGED) if ok or unchanged else Verdict(PENDING, why)
    return verdicts


def _combine(cohort_id: str, entries: list[tuple[str, Verdict, str | None]]) -> CohortVerdict:
    for status in (PENDING, HELD):
        chosen = [(name, v, apply) for name, v, apply in entries if v.status == status]
        if chosen:
            reasons = dict.fromkeys(
                f"list {name!r}: {v.reason}" if name else v.reason for name, v, _ in chosen
            )
            applies = [apply for _, _, apply in chosen if apply]
            return CohortVerdict(
                cohort_id,
                status,
                "; ".join(reasons),
                tuple(sorted({name for name, _, _ in chosen if name})),
                applies[0] if applies else None,
            )
    return CohortVerdict(cohort_id, CONVERGED)


def markers_in(state: Mapping) -> dict[str, dict[str, dict]]:
    """Return the ``pending`` and ``held`` markers of every cohort partition in a STATE value.

    Args:
        state: A STATE message's value.

    Returns:
        cohort id -> {marker kind -> marker}.
    """
    found: dict[str, dict[str, dict]] = {}
    for partition in _cohort_partitions(state):
        cohort_id = str(partition["context"]["cohort_id"])
        for kind in MARKERS:
            marker = partition.get(kind)
            if isinstance(marker, dict):
                found.setdefault(cohort_id, {})[kind] = marker
    return found


def mark_state(
    state: Mapping,
    verdicts: Mapping[str, CohortVerdict],
    *,
    seen: Mapping[str, Mapping[str, Mapping]],
    now: str,
) -> dict:
    """Return the STATE value to emit: each judged cohort's partition marked by its verdict.

    Only partitions of judged cohorts change (``pending``/``held`` set or dropped); everything
    else, ``last_computed`` included, passes through. A pending or held cohort without a
    partition gets one under ``cohort_members`` when the state has that stream's partitions.

    Args:
        state: The STATE value received (not modified).
        verdicts: Verdicts of the cohorts this run judged.
        seen: Markers seen in this run's earlier STATEs (their ``since`` is kept).
        now: ISO timestamp for a marker set for the first time.

    Returns:
        A new STATE value.
    """
    out = copy.deepcopy(dict(state))
    marked: set[str] = set()
    for partition in _cohort_partitions(out):
        cohort_id = str(partition["context"]["cohort_id"])
        verdict = verdicts.get(cohort_id)
        if verdict is not None:
            _mark(partition, verdict, seen.get(cohort_id, {}), now)
            marked.add(cohort_id)
    bookmarks = out.get("bookmarks")
    stream = bookmarks.get(COHORT_STREAM) if isinstance(bookmarks, dict) else None
    partitions = stream.get("partitions") if isinstance(stream, dict) else None
    if isinstance(partitions, list):
        for cohort_id, verdict in verdicts.items():
            if cohort_id not in marked and verdict.status != CONVERGED:
                added: dict = {"context": {"cohort_id": cohort_id}}
                _mark(added, verdict, seen.get(cohort_id, {}), now)
                partitions.append(added)
    return out


def _mark(partition: dict, verdict: CohortVerdict, seen: Mapping[str, Mapping], now: str) -> None:
    for kind in MARKERS:
        if kind != verdict.status:
            partition.pop(kind, None)
    if verdict.status == CONVERGED:
        return
    earlier = partition.get(verdict.status) or seen.get(verdict.status) or {}
    marker: dict = {"reason": verdict.reason, "since": earlier.get("since") or now}
    if verdict.status == HELD:
        marker["lists"] = list(verdict.lists)
        if verdict.apply:
            marker["apply"] = verdict.apply
    partition[verdict.status] = marker


def _cohort_partitions(state: Mapping) -> Iterable[dict]:
    bookmarks = state.get("bookmarks")
    if not isinstance(bookmarks, dict):
        return
    for stream_state in bookmarks.values():
        partitions = stream_state.get("partitions") if isinstance(stream_state, dict) else None
        for partition in partitions if isinstance(partitions, list) else ():
            context = partition.get("context") if isinstance(partition, dict) else None
            if isinstance(context, dict) and context.get("cohort_id") is not None:
                yield partition

"""judge and mark_state: which cohorts are pending or held, and what the STATE written says."""

from __future__ import annotations

import copy

from target_sendgrid_contacts.bookmarks import (
    CONVERGED,
    HELD,
    IN_PROGRESS,
    PENDING,
    CohortVerdict,
    judge,
    mark_state,
    markers_in,
)
from target_sendgrid_contacts.outcomes import ListOutcome
from target_sendgrid_contacts.removal import RemovalStatus

NOW = "2026-12-01T09:00:00+00:00"
EARLIER = "2026-11-30T09:00:00+00:00"


def _sync(status: str, count: int) -> dict:
    return {"status": status, "member_count": count, "message": None}


def _outcome(
    name: str,
    *cohorts: str,
    removal: str = "ran",
    reason: str = "",
    held_share: float | None = None,
) -> ListOutcome:
    return ListOutcome(
        name,
        cohort_ids=set(cohorts),
        removal=RemovalStatus(removal),
        removal_reason=reason,
        held_share=held_share,
    )


def _state(*partitions: dict, **other_streams: dict) -> dict:
    return {
        "bookmarks": {
            "cohorts": {},
            "cohort_members": {"partitions": list(partitions)},
            **other_streams,
        }
    }


def _partition(cohort_id: str, **extra: object) -> dict:
    return {
        "context": {"cohort_id": cohort_id},
        "last_computed": "2026-11-30T10:00:00+00:00",
        "export_options": "props=1",
        **extra,
    }


def test_mirror_a_list_not_brought_to_its_cohorts_leaves_every_feeder_pending():
    lists = [
        _outcome("Everyone", "a", "b", removal="skipped", reason="cohort b is failed"),
        _outcome("Solo", "c"),
    ]
    judgement = judge(
        lists,
        {"a": _sync("complete", 5), "b": _sync("failed", 2), "c": _sync("complete", 3)},
        {"a": 5, "b": 2, "c": 3},
        mirror=True,
    )
    assert judgement.lists["Everyone"].status == PENDING
    assert judgement.lists["Solo"].status == CONVERGED
    assert judgement.cohorts["a"].status == PENDING  # complete, but its list is not converged
    assert judgement.cohorts["a"].reason == "list 'Everyone': cohort b is failed"
    assert judgement.cohorts["b"].lists == ("Everyone",)
    assert judgement.cohorts["c"].status == CONVERGED


def test_mirror_the_guard_holds_and_says_how_to_apply():
    lists = [_outcome("L", "a", removal="skipped", reason="would remove 30 of 100", held_share=0.3)]
    verdict = judge(lists, {"a": _sync("complete", 70)}, {"a": 70}, mirror=True).cohorts["a"]
    assert verdict.status == HELD
    assert verdict.apply == (
        "raise max_removal_ratio to 0.3 or more (or unset it) and run once "
        'with the tap setting redownload_cohort_ids: ["a"]'
    )


def test_upsert_a_cohort_is_converged_once_delivered_whole_or_unchanged():
    lists = [_outcome("L", "a", "b", "c", removal="not applicable", reason="sync_mode upsert")]
    syncs = {"a": _sync("complete", 4), "b": _sync("unchanged", 0), "c": _sync("failed", 1)}
    cohorts = judge(lists, syncs, {"a": 4, "c": 1}, mirror=False).cohorts
    assert (cohorts["a"].status, cohorts["b"].status) == (CONVERGED, CONVERGED)
    assert cohorts["c"].status == PENDING


def test_a_failed_cohort_that_fed_no_list_is_pending_and_an_unchanged_one_is_not_judged():
    syncs = {"a": _sync("failed", 0), "b": _sync("unchanged", 0)}
    cohorts = judge([], syncs, {}, mirror=True).cohorts
    assert cohorts["a"].status == PENDING
    assert "b" not in cohorts


def test_in_progress_only_lists_whose_removal_ran_are_converged():
    lists = [_outcome("Done", "a", removal="ran"), _outcome("Next", "b", removal="not applicable")]
    cohorts = judge(lists, {}, {"a": 1, "b": 1}, mirror=True, stopped=IN_PROGRESS).cohorts
    assert cohorts["a"].status == CONVERGED
    assert (cohorts["b"].status, cohorts["b"].reason) == (PENDING, f"list 'Next': {IN_PROGRESS}")


def test_mark_state_sets_pending_keeping_the_bookmark_and_an_earlier_since():
    state = _state(_partition("a"), _partition("b", pending={"reason": "old", "since": EARLIER}))
    received = copy.deepcopy(state)
    verdicts = {
        "a": CohortVerdict("a", PENDING, "list 'L': export unreadable", ("L",)),
        "b": CohortVerdict("b", CONVERGED),
    }
    out = mark_state(state, verdicts, seen={"a": {PENDING: {"since": EARLIER}}}, now=NOW)
    a, b = out["bookmarks"]["cohort_members"]["partitions"]
    assert a["pending"] == {"reason": "list 'L': export unreadable", "since": EARLIER}
    assert a["last_computed"] == "2026-11-30T10:00:00+00:00"
    assert "pending" not in b
    assert state == received  # the SDK's copy is left alone


def test_mark_state_held_replaces_pending_and_a_missing_partition_is_added():
    state = _state(_partition("a", pending={"reason": "old", "since": EARLIER}))
    verdicts = {
        "a": CohortVerdict("a", HELD, "guard", ("L",), "raise it"),
        "z": CohortVerdict("z", PENDING, "cohort z is failed"),
    }
    out = mark_state(state, verdicts, seen={}, now=NOW)
    a, z = out["bookmarks"]["cohort_members"]["partitions"]
    assert "pending" not in a
    assert a["held"] == {"reason": "guard", "since": NOW, "lists": ["L"], "apply": "raise it"}
    assert z == {
        "context": {"cohort_id": "z"},
        "pending": {"reason": "cohort z is failed", "since": NOW},
    }


def test_state_of_other_taps_and_unjudged_cohorts_passes_through_unchanged():
    other_tap = {"bookmarks": {"newsletter_signups": {"replication_key_value": "2026-11-01"}}}
    verdicts = {"a": CohortVerdict("a", PENDING, "x")}
    assert mark_state(other_tap, verdicts, seen={}, now=NOW) == other_tap
    held_before = _state(_partition("q", held={"reason": "guard", "since": EARLIER}))
    assert mark_state(held_before, verdicts, seen={}, now=NOW) == {
        "bookmarks": {
            "cohorts": {},
            "cohort_members": {
                "partitions": [
                    held_before["bookmarks"]["cohort_members"]["partitions"][0],
                    {"context": {"cohort_id": "a"}, "pending": {"reason": "x", "since": NOW}},
                ]
            },
        }
    }
    assert markers_in(held_before) == {"q": {HELD: {"reason": "guard", "since": EARLIER}}}

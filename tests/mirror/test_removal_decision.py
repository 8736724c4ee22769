"""removal_decision: nobody is removed on partial data or past the configured share."""

from __future__ import annotations

import pytest
from target_sendgrid_contacts.removal import (
    CohortState,
    Members,
    RemovalFacts,
    RemovalStatus,
    plan_removal,
    removal_decision,
)


def test_incomplete_cohort_never_removes():
    decision = removal_decision(
        list_size=100, leavers=3, cohort_complete=False, max_removal_ratio=None
    )
    assert not decision.allowed
    assert decision.reason.startswith("cohort not delivered whole in this run")


def test_complete_cohort_removes_its_leavers():
    decision = removal_decision(
        list_size=100, leavers=3, cohort_complete=True, max_removal_ratio=None
    )
    assert decision.allowed
    assert "3 of 100" in decision.reason


def test_empty_cohort_delivered_whole_empties_its_list():
    assert removal_decision(
        list_size=40, leavers=40, cohort_complete=True, max_removal_ratio=None
    ).allowed


@pytest.mark.parametrize(("leavers", "allowed"), [(20, True), (21, False)])
def test_ratio_guard_stops_above_the_share_and_says_why(leavers, allowed):
    decision = removal_decision(
        list_size=100, leavers=leavers, cohort_complete=True, max_removal_ratio=0.2
    )
    assert decision.allowed is allowed
    if not allowed:
        assert "21 of 100" in decision.reason
        assert "max_removal_ratio 0.2" in decision.reason


def test_ratio_guard_also_holds_for_an_empty_cohort():
    decision = removal_decision(
        list_size=40, leavers=40, cohort_complete=True, max_removal_ratio=0.5
    )
    assert not decision.allowed


def test_zero_ratio_allows_no_removal_but_nothing_to_remove_is_fine():
    assert not removal_decision(
        list_size=10, leavers=1, cohort_complete=True, max_removal_ratio=0.0
    ).allowed
    assert removal_decision(
        list_size=10, leavers=0, cohort_complete=True, max_removal_ratio=0.0
    ).allowed
    assert removal_decision(
        list_size=0, leavers=0, cohort_complete=True, max_removal_ratio=0.0
    ).allowed


# plan_removal: the one decision, from the facts the run gathered.

WHOLE = (CohortState(True, "cohort a complete (90 members)"),)
LOST = (CohortState(False, "cohort a is failed: export expired"),)


def _facts(**kw) -> RemovalFacts:
    base = {
        "mirror": True,
        "cohorts": WHOLE,
        "list_exists": True,
        "members": Members(size=100, leavers=10),
        "max_removal_ratio": None,
    }
    return RemovalFacts(**{**base, **kw})


def test_plan_removes_the_leavers_of_a_list_whose_cohorts_arrived_whole():
    plan = plan_removal(_facts())
    assert (plan.status, plan.remove) == (RemovalStatus.RAN, 10)
    assert plan.reason == "cohort a complete (90 members); 10 of 100 members left the cohort"


@pytest.mark.parametrize(
    ("facts", "reason"),
    [
        ({"cohorts": LOST}, "cohort a is failed: export expired (cohort not delivered whole"),
        ({"cohorts": ()}, ""),
        ({"unreadable": "file 1 cut off"}, "list export unreadable: file 1 cut off"),
        ({"fed_without_cohort": True}, "fed by a stream without cohort fields"),
        ({"max_removal_ratio": 0.05}, "would remove 10 of 100 members (10.0%)"),
    ],
)
def test_plan_never_removes_on_partial_data_or_past_the_guard(facts, reason):
    plan = plan_removal(_facts(**facts))
    assert plan.status is RemovalStatus.SKIPPED
    assert plan.remove == 0
    assert plan.reason.startswith(reason)


def test_plan_of_a_guarded_list_carries_the_share_a_person_must_allow():
    plan = plan_removal(_facts(max_removal_ratio=0.05))
    assert plan.held_share == pytest.approx(0.1)
    assert plan.log == "warning"


def test_plan_without_a_list_or_in_upsert_mode_removes_nobody():
    missing = plan_removal(_facts(list_exists=False, members=None))
    upsert = plan_removal(_facts(mirror=False))
    assert missing.status is RemovalStatus.NOT_APPLICABLE
    assert missing.reason == "the list does not exist"
    assert (upsert.status, upsert.reason) == (RemovalStatus.NOT_APPLICABLE, "sync_mode upsert")
    assert missing.remove == upsert.remove == 0

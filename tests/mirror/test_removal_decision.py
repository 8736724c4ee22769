"""removal_decision: nobody is removed on partial data or past the configured share."""

from __future__ import annotations

import pytest
from target_sendgrid_contacts.removal import removal_decision


def test_incomplete_cohort_never_removes():
    decision = removal_decision(list_size=100, leavers=3, cohort_complete=False,
                                max_removal_ratio=None)
    assert not decision.allowed
    assert decision.reason.startswith("cohort not delivered whole in this run")


def test_complete_cohort_removes_its_leavers():
    decision = removal_decision(list_size=100, leavers=3, cohort_complete=True,
                                max_removal_ratio=None)
    assert decision.allowed
    assert "3 of 100" in decision.reason


def test_empty_cohort_delivered_whole_empties_its_list():
    assert removal_decision(list_size=40, leavers=40, cohort_complete=True,
                            max_removal_ratio=None).allowed


@pytest.mark.parametrize(("leavers", "allowed"), [(20, True), (21, False)])
def test_ratio_guard_stops_above_the_share_and_says_why(leavers, allowed):
    decision = removal_decision(list_size=100, leavers=leavers, cohort_complete=True,
                                max_removal_ratio=0.2)
    assert decision.allowed is allowed
    if not allowed:
        assert "21 of 100" in decision.reason
        assert "max_removal_ratio 0.2" in decision.reason


def test_ratio_guard_also_holds_for_an_empty_cohort():
    decision = removal_decision(list_size=40, leavers=40, cohort_complete=True,
                                max_removal_ratio=0.5)
    assert not decision.allowed


def test_zero_ratio_allows_no_removal_but_nothing_to_remove_is_fine():
    assert not removal_decision(list_size=10, leavers=1, cohort_complete=True,
                                max_removal_ratio=0.0).allowed
    assert removal_decision(list_size=10, leavers=0, cohort_complete=True,
                            max_removal_ratio=0.0).allowed
    assert removal_decision(list_size=0, leavers=0, cohort_complete=True,
                            max_removal_ratio=0.0).allowed

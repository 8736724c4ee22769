"""The fault matrix (issue 8): every endpoint x fault, each followed by a healthy rerun.

See cases.py for the cases and scenario.py for what each one asserts.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
import requests

from .cases import ALL, COHORT, Case
from .pipeline import Pipeline, list_emails, list_name, removed_emails
from .scenario import check_no_member_email_logged, outcome_of, play

pytestmark = [pytest.mark.integration, pytest.mark.faults]


def _param(case: Case):
    return pytest.param(case, id=case.id)


@pytest.mark.parametrize("case", [_param(c) for c in ALL])
def test_fault_then_healthy_rerun_converges(case: Case, sandbox_factory, tmp_path, request):
    if case.short_timeouts:
        request.getfixturevalue("short_timeouts")
    # New fields usable at once: no run waits for them (a case below pins that wait).
    sb = sandbox_factory(field_activation_seconds=0.0)
    play(sb, Pipeline(sb, tmp_path, [COHORT]), case)


def test_field_created_by_a_failed_run_is_waited_for_by_the_rerun(sandbox_factory, tmp_path):
    sb = sandbox_factory(field_activation_seconds=3.0)
    pipeline = Pipeline(sb, tmp_path, [COHORT])
    sb.faults.add("sendgrid", "POST", r"^/v3/marketing/lists$", times=None, status=503)
    failed = pipeline.run()  # creates the field, then cannot create the list
    assert failed.failed
    assert [f["name"] for f in sb.sendgrid.field_definitions()] == ["plan"]
    sb.faults.clear()
    rerun = pipeline.run()  # seconds later, as a scheduler retrying at once would
    assert not rerun.failed, rerun.log[-2000:]
    assert list_emails(sb, COHORT) == sb.generator.expected_emails(COHORT)


def test_the_checks_can_fail(sandbox_factory, tmp_path):
    """The matrix's checks see what they look for: a logged address, a member asked off the
    list, a list that no longer equals its cohort."""
    sb = sandbox_factory(field_activation_seconds=0.0)
    run = Pipeline(sb, tmp_path, [COHORT]).run()
    assert "SendGrid sync summary" in run.log  # the plugins' own lines are captured
    check_no_member_email_logged(sb, [run])
    member = next(m for m in sb.generator.members(COHORT) if m["category"] == "valid")
    email = member["email"].strip().lower()
    with pytest.raises(AssertionError, match="member addresses in the log"):
        check_no_member_email_logged(sb, [replace(run, log=f"{run.log}\nINFO x {email}")])

    list_id = sb.sendgrid.list_by_name(list_name(sb, COHORT))["id"]
    answer = requests.delete(
        f"{sb.sendgrid_url}/v3/marketing/lists/{list_id}/contacts",
        params={"contact_ids": sb.sendgrid.contact(email)["id"]},
        headers={"Authorization": f"Bearer {sb.sendgrid_api_key}"},
        timeout=10,
    )
    assert answer.status_code == 202
    assert email in removed_emails(sb, sb.requests)
    sb.sendgrid.settle(force=True)
    assert outcome_of(sb, run, sb.generator.expected_emails(COHORT)) == "diverged silently"


def test_list_fed_by_two_cohorts_with_one_download_cut_converges_on_the_rerun(
    sandbox_factory, tmp_path
):
    sb = sandbox_factory(
        field_activation_seconds=0.0,
        extra_cohorts=[{"id": "small04", "name": "Small", "size": 120}],
    )
    cohorts = [COHORT, "small04"]
    pipeline = Pipeline(sb, tmp_path, cohorts, target_config={"list_name": "Everyone"})
    assert not pipeline.run().failed

    def everyone() -> set[str]:
        return set(sb.sendgrid.member_emails(sb.sendgrid.list_by_name("Everyone")["id"]))

    def want() -> set[str]:
        return sb.generator.expected_emails(COHORT) | sb.generator.expected_emails("small04")

    assert everyone() == want()
    before = everyone()
    for cohort_id in cohorts:
        sb.amplitude.churn(cohort_id, remove=10, add=3)
    # small04's file is cut: its cohort fails, so the list's leavers (both cohorts') stay.
    sb.faults.add("storage", "GET", r"^/files/.*small04_", times=None, truncate_after=1500)
    cut = pipeline.run()
    sb.faults.clear()
    assert cut.syncs()["small04"]["status"] == "failed"
    assert cut.syncs()[COHORT]["status"] == "complete"
    assert not removed_emails(sb, cut.requests)
    assert everyone() >= before | sb.generator.expected_emails(COHORT)  # COHORT's joiners came

    rerun = pipeline.run()
    assert not rerun.failed
    assert not removed_emails(sb, [r for run in pipeline.runs for r in run.requests]) & want()
    assert everyone() == want()  # on main: COHORT's bookmark moved, its leavers stay

"""Mirror safety end to end: nobody is removed on partial data, and reruns converge (issue 5)."""

from __future__ import annotations

import pytest

from .sync import RunResult, TargetRunner, list_emails, list_name, singer_input

pytestmark = pytest.mark.integration

COHORT = "trlrsk2"
REMOVALS = "/v3/marketing/lists/"


def _synced_then_churned(sandbox, runner: TargetRunner) -> tuple[set[str], set[str]]:
    """Sync COHORT whole, then churn it; return the expected lists before and after."""
    first = runner.run(singer_input(sandbox, [COHORT]))
    assert first.error is None
    before = sandbox.generator.expected_emails(COHORT)
    assert list_emails(sandbox, COHORT) == before
    sandbox.generator.churn(COHORT, remove=20, add=5)
    after = sandbox.generator.expected_emails(COHORT)
    assert before - after
    return before, after


def _nobody_removed(sandbox, result: RunResult, before: set[str]) -> None:
    assert result.count("DELETE", REMOVALS) == 0
    assert list_emails(sandbox, COHORT) >= before


def _refused(result: RunResult) -> None:
    """The run failed, or reported the list's removal as skipped."""
    if result.error is None:
        entry = result.list_entry(list_name(result.sandbox, COHORT))
        assert entry["removal"] == "skipped"
        assert "export" in entry["removal_reason"].lower()


def _converges(sandbox, runner: TargetRunner, after: set[str]) -> None:
    result = runner.run(singer_input(sandbox, [COHORT]))
    assert result.error is None
    assert list_emails(sandbox, COHORT) == after


@pytest.mark.parametrize(
    "partial",
    [
        pytest.param({"status": {COHORT: "unchanged"}}, id="skipped-as-unchanged"),
        pytest.param({"status": {COHORT: "failed"}, "deliver": {COHORT: 100}}, id="failed"),
        pytest.param(
            {"deliver": {COHORT: 100}, "member_count": {COHORT: 230}}, id="cut-short-count-mismatch"
        ),
        pytest.param({"with_syncs": False}, id="stopped-before-the-completeness-signal"),
        pytest.param({"deliver": {COHORT: 0}, "with_syncs": False}, id="stopped-before-members"),
    ],
)
def test_a_cohort_not_delivered_whole_removes_nobody(sandbox, tmp_path, partial):
    runner = TargetRunner(sandbox, tmp_path)
    before, after = _synced_then_churned(sandbox, runner)
    result = runner.run(singer_input(sandbox, [COHORT], **partial))
    _nobody_removed(sandbox, result, before)
    entry = result.list_entry_or_none(list_name(sandbox, COHORT))
    if entry is not None:  # absent when nothing at all arrived for the list
        assert entry["removed"] == 0
        assert entry["removal"] != "ran"
    _converges(sandbox, runner, after)


def test_a_list_fed_by_two_cohorts_needs_both_whole(sandbox, tmp_path):
    runner = TargetRunner(sandbox, tmp_path, list_name="Everyone")
    assert runner.run(singer_input(sandbox, ["pwrusr1", COHORT])).error is None
    everyone = sandbox.sendgrid.list_by_name("Everyone")["id"]
    before = set(sandbox.sendgrid.member_emails(everyone))
    sandbox.generator.churn("pwrusr1", remove=10)
    partial = runner.run(
        singer_input(sandbox, ["pwrusr1", COHORT], status={COHORT: "failed"}, deliver={COHORT: 50})
    )
    assert partial.count("DELETE", REMOVALS) == 0
    assert set(sandbox.sendgrid.member_emails(everyone)) >= before
    whole = runner.run(singer_input(sandbox, ["pwrusr1", COHORT]))
    assert whole.error is None
    assert set(sandbox.sendgrid.member_emails(everyone)) == (
        sandbox.generator.expected_emails("pwrusr1") | sandbox.generator.expected_emails(COHORT)
    )


def test_truncated_export_download_removes_nobody_and_a_rerun_converges(sandbox, tmp_path):
    runner = TargetRunner(sandbox, tmp_path)
    before, after = _synced_then_churned(sandbox, runner)
    # Cut mid-file: a snapshot of the rows before the cut would hold some of the leavers.
    sandbox.faults.add("storage", "GET", "/files/", times=None, truncate_after=4000)
    result = runner.run(singer_input(sandbox, [COHORT]))
    _nobody_removed(sandbox, result, before)
    _refused(result)
    sandbox.faults.clear()
    _converges(sandbox, runner, after)


def test_download_cut_once_is_read_again_in_the_same_run(sandbox, tmp_path):
    runner = TargetRunner(sandbox, tmp_path)
    before, after = _synced_then_churned(sandbox, runner)
    rule = sandbox.faults.add("storage", "GET", "/files/", times=1, truncate_after=4000)
    result = runner.run(singer_input(sandbox, [COHORT]))
    assert rule.hits == 1
    assert result.error is None
    assert list_emails(sandbox, COHORT) == after
    assert result.list_entry(list_name(sandbox, COHORT))["removed"] == len(before - after)


def test_failed_export_removes_nobody_and_a_rerun_converges(sandbox, tmp_path):
    runner = TargetRunner(sandbox, tmp_path)
    before, after = _synced_then_churned(sandbox, runner)
    sandbox.faults.add(
        "sendgrid",
        "GET",
        r"/v3/marketing/contacts/exports/[^/]+$",
        times=None,
        status=200,
        body={"id": "x", "status": "failure", "message": "export could not be generated"},
    )
    result = runner.run(singer_input(sandbox, [COHORT]))
    _nobody_removed(sandbox, result, before)
    _refused(result)
    sandbox.faults.clear()
    _converges(sandbox, runner, after)


def test_slow_export_is_waited_for_within_the_bound(sandbox_factory, tmp_path):
    slow = sandbox_factory(export_delay_seconds=1.5)
    runner = TargetRunner(slow, tmp_path)
    before, after = _synced_then_churned(slow, runner)
    result = runner.run(singer_input(slow, [COHORT]))
    assert result.error is None
    assert list_emails(slow, COHORT) == after
    assert result.list_entry(list_name(slow, COHORT))["removed"] == len(before - after)


def test_export_slower_than_the_bound_removes_nobody(sandbox_factory, tmp_path):
    slow = sandbox_factory(export_delay_seconds=2.5)
    runner = TargetRunner(slow, tmp_path)
    before, _ = _synced_then_churned(slow, runner)
    result = runner.run(singer_input(slow, [COHORT]), job_timeout_seconds=1)
    _nobody_removed(slow, result, before)
    _refused(result)


def test_failure_while_removing_is_repaired_by_a_rerun(sandbox, tmp_path):
    runner = TargetRunner(sandbox, tmp_path)
    _, after = _synced_then_churned(sandbox, runner)
    sandbox.faults.add(
        "sendgrid",
        "DELETE",
        r"/v3/marketing/lists/.*/contacts",
        times=None,
        status=400,
        body={"errors": [{"field": None, "message": "boom"}]},
    )
    failed = runner.run(singer_input(sandbox, [COHORT]))
    assert failed.error is not None
    sandbox.faults.clear()
    _converges(sandbox, runner, after)


def test_removal_guard_stops_before_removing_and_says_why(sandbox, tmp_path):
    runner = TargetRunner(sandbox, tmp_path)
    before, after = _synced_then_churned(sandbox, runner)
    share = len(before - after) / len(before)
    guarded = runner.run(singer_input(sandbox, [COHORT]), max_removal_ratio=share / 2)
    _nobody_removed(sandbox, guarded, before)
    entry = guarded.list_entry(list_name(sandbox, COHORT))
    assert entry["removal"] == "skipped"
    assert "max_removal_ratio" in entry["removal_reason"]
    assert f"{len(before - after)} of {len(before)}" in entry["removal_reason"]
    assert after - before <= list_emails(sandbox, COHORT)  # joiners were still added

    allowed = runner.run(singer_input(sandbox, [COHORT]), max_removal_ratio=min(share * 2, 1))
    assert allowed.error is None
    assert list_emails(sandbox, COHORT) == after


def test_dry_run_plans_from_the_real_export_and_writes_nothing(sandbox, tmp_path):
    runner = TargetRunner(sandbox, tmp_path)
    before, after = _synced_then_churned(sandbox, runner)
    contacts_before = sandbox.sendgrid.contacts()
    dry = runner.run(singer_input(sandbox, [COHORT]), dry_run=True)
    assert dry.error is None
    assert dry.report["dry_run"] is True
    entry = dry.list_entry(list_name(sandbox, COHORT))
    assert entry["removed"] == len(before - after)  # planned from the real export
    assert entry["upserted"] == len(after - before)
    assert dry.count("POST", "/v3/marketing/contacts/exports") == 1
    written = [
        r
        for r in dry.requests
        if r["method"] in ("PUT", "DELETE", "PATCH")
        or (r["method"] == "POST" and "exports" not in r["path"] and "search" not in r["path"])
    ]
    assert written == []
    assert sandbox.sendgrid.contacts() == contacts_before
    assert list_emails(sandbox, COHORT) == before

"""The orchestrator end to end: Dagster jobs and schedules run the real `meltano run` against the
sandbox over HTTP on 127.0.0.1."""

from __future__ import annotations

import importlib
import json

import pytest
import requests
from dagster import (
    DagsterEventType,
    DagsterInstance,
    DagsterRunStatus,
    build_schedule_context,
)

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

HOURLY_STATE = "sandbox:tap-amplitude-cohort--hourly-to-target-sendgrid-contacts"
DAILY_STATE = "sandbox:tap-amplitude-cohort--daily-to-target-sendgrid-contacts"


def _members_by_list(sandbox) -> dict[str, set[str]]:
    lists = requests.get(f"{sandbox.sendgrid_url}/_sandbox/lists", timeout=10).json()
    found = {}
    for item in lists:
        members = requests.get(
            f"{sandbox.sendgrid_url}/_sandbox/lists/{item['id']}/members", timeout=30
        ).json()
        found[item["name"]] = {m["email"] for m in members}
    return found


def _list_of(sandbox, cohort_id: str) -> set[str]:
    lists = _members_by_list(sandbox).items()
    matches = [m for name, m in lists if name.endswith(f": {cohort_id}")]
    assert len(matches) == 1, f"no single list for {cohort_id}"
    return matches[0]


def _definitions():
    import orchestrator.definitions as module

    return importlib.reload(module).defs  # read meltano.yml under this test's environment


def _events(instance: DagsterInstance, run_id: str, kind: DagsterEventType) -> list:
    return [
        record.event_log_entry.dagster_event
        for record in instance.get_records_for_run(run_id, of_type=kind).records
    ]


def test_headless_job_fills_the_list_and_its_run_shows_the_reports_counts(sandbox, orchestrator):
    done = orchestrator.meltano("invoke", "dagster:execute", "cohorts_hourly")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    assert _list_of(sandbox, "pwrusr1") == sandbox.generator.expected_emails("pwrusr1")
    assert HOURLY_STATE in orchestrator.state_ids()

    # The run history (the Dagster home the command used) holds the sync's own figures.
    with DagsterInstance.from_config(str(orchestrator.dagster_home)) as instance:
        (record,) = instance.get_run_records()
        run = record.dagster_run
        assert run.job_name == "cohorts_hourly"
        assert run.status == DagsterRunStatus.SUCCESS
        report = json.loads(
            (orchestrator.runs_dir / "cohorts-hourly" / run.run_id / "report.json").read_text()
        )
        (entry,) = report["lists"]
        (materialized,) = _events(instance, run.run_id, DagsterEventType.ASSET_MATERIALIZATION)
        metadata = materialized.step_materialization_data.materialization.metadata
        for key in ("received", "upserted", "unchanged", "rejected", "removed"):
            assert metadata[key].value == entry[key], key
        assert metadata["rejected_by_reason"].value == entry["rejected_by_reason"]
        assert metadata["downloads"].value == 1
        assert run.tags["sync/received"] == str(report["totals"]["received"])
        assert run.tags["sync/downloads"] == "1"
    assert entry["received"] == 1000  # the seeded cohort's size: the figures are the real ones
    # The run took its share of Amplitude's 60 cohort requests per 10 minutes, for every group.
    ledger = json.loads((orchestrator.dagster_home / "amplitude-budget.json").read_text())
    assert [(count, who.split("/")[0]) for _, count, who in ledger] == [(1, "cohorts-hourly")]


def test_two_groups_run_in_parallel_with_their_own_state_and_a_failing_one_stops_no_other(
    sandbox, orchestrator
):
    # Create Meltano's and Dagster's databases first, as set-up and a first run do for a user:
    # two processes migrating one new SQLite file at once fail.
    assert orchestrator.state_ids() == set()
    with DagsterInstance.from_config(str(orchestrator.dagster_home)) as instance:
        assert instance.get_run_records() == []
    hourly = orchestrator.popen("invoke", "dagster:execute", "cohorts_hourly")
    daily = orchestrator.popen("invoke", "dagster:execute", "cohorts_daily")
    outputs = [p.communicate(timeout=240)[0] for p in (hourly, daily)]
    assert hourly.returncode == 0, outputs[0][-3000:]
    assert daily.returncode == 0, outputs[1][-3000:]
    for cohort_id in ("pwrusr1", "trlrsk2", "empty03"):
        assert _list_of(sandbox, cohort_id) == sandbox.generator.expected_emails(cohort_id)
    assert {HOURLY_STATE, DAILY_STATE} <= orchestrator.state_ids()

    # Both ran at once: each run has its own report, none overwrote the other.
    reports = {
        path.parent.parent.name: json.loads(path.read_text())
        for path in orchestrator.runs_dir.glob("*/*/report.json")
    }
    assert {e["cohort_id"] for e in reports["cohorts-hourly"]["lists"]} == {"pwrusr1"}
    assert {e["cohort_id"] for e in reports["cohorts-daily"]["lists"]} == {"trlrsk2", "empty03"}

    # Now the daily group fails (a key without Marketing permission) while hourly runs again.
    requests.post(
        f"{sandbox.amplitude_url}/_sandbox/cohorts/pwrusr1/churn",
        json={"remove": 5, "add": 3, "rename": 0},
        timeout=10,
    ).raise_for_status()
    hourly = orchestrator.popen("invoke", "dagster:execute", "cohorts_hourly")
    daily = orchestrator.popen(
        "invoke",
        "dagster:execute",
        "cohorts_daily",
        env={"TARGET_SENDGRID_CONTACTS_API_KEY": sandbox.sendgrid_restricted_key},
    )
    outputs = [p.communicate(timeout=240)[0] for p in (hourly, daily)]
    assert hourly.returncode == 0, outputs[0][-3000:]
    assert daily.returncode != 0
    assert _list_of(sandbox, "pwrusr1") == sandbox.generator.expected_emails("pwrusr1")

    with DagsterInstance.from_config(str(orchestrator.dagster_home)) as instance:
        (failed,) = [
            r.dagster_run
            for r in instance.get_run_records()
            if r.dagster_run.status == DagsterRunStatus.FAILURE
        ]
        assert failed.job_name == "cohorts_daily"
        (failure,) = _events(instance, failed.run_id, DagsterEventType.STEP_FAILURE)
        description = failure.step_failure_data.user_failure_data.description
        assert "Restricted Access with Marketing permission" in description, description


def test_a_schedule_tick_runs_meltano_in_the_schedules_environment(sandbox, orchestrator):
    defs = _definitions()
    schedule = defs.resolve_schedule_def("cohorts_hourly_schedule")
    assert schedule.cron_schedule == "0 * * * *"
    with DagsterInstance.from_config(str(orchestrator.dagster_home)) as instance:
        context = build_schedule_context(instance=instance)
        (request,) = schedule.evaluate_tick(context).run_requests
        assert request.tags["meltano/environment"] == "sandbox"
        job = defs.resolve_job_def("cohorts_hourly")
        result = job.execute_in_process(
            run_config=request.run_config, instance=instance, tags=request.tags
        )
        assert result.success
    assert _list_of(sandbox, "pwrusr1") == sandbox.generator.expected_emails("pwrusr1")
    # The state id names the environment: the run was `meltano --environment=sandbox run`.
    assert HOURLY_STATE in orchestrator.state_ids()


def test_the_environment_comes_from_meltano_environment(orchestrator, monkeypatch):
    monkeypatch.setenv("MELTANO_ENVIRONMENT", "prod")
    schedule = _definitions().resolve_schedule_def("cohorts_daily_schedule")
    with DagsterInstance.from_config(str(orchestrator.dagster_home)) as instance:
        (request,) = schedule.evaluate_tick(build_schedule_context(instance=instance)).run_requests
    assert request.tags["meltano/environment"] == "prod"
    assert request.run_config["ops"]["meltano_run_cohorts_daily"]["config"] == {
        "environment": "prod"
    }


def test_a_tick_while_the_group_still_runs_is_skipped_and_says_why(orchestrator):
    defs = _definitions()
    job = defs.resolve_job_def("cohorts_hourly")
    schedule = defs.resolve_schedule_def("cohorts_hourly_schedule")
    with DagsterInstance.from_config(str(orchestrator.dagster_home)) as instance:
        running = instance.create_run_for_job(job, status=DagsterRunStatus.STARTED)
        other = instance.create_run_for_job(  # another group's run does not hold this one back
            defs.resolve_job_def("cohorts_daily"), status=DagsterRunStatus.STARTED
        )
        assert other.run_id != running.run_id
        data = schedule.evaluate_tick(build_schedule_context(instance=instance))
        assert not data.run_requests
        assert running.run_id in data.skip_message
        assert "skipped" in data.skip_message

        # Once it finished, the next tick starts a run.
        instance.report_run_failed(running)
        data = schedule.evaluate_tick(build_schedule_context(instance=instance))
        assert len(data.run_requests) == 1
        daily = defs.resolve_schedule_def("cohorts_daily_schedule")
        held = daily.evaluate_tick(build_schedule_context(instance=instance))
        assert not held.run_requests  # the daily run is still going


def test_the_run_queue_holds_one_run_per_group_and_four_amplitude_runs(orchestrator):
    with DagsterInstance.from_config(str(orchestrator.dagster_home)) as instance:
        queue = instance.get_concurrency_config().run_queue_config  # what the daemon applies
        limits = {
            (limit["key"], json.dumps(limit.get("value"))): limit["limit"]
            for limit in queue.tag_concurrency_limits
        }
    assert limits[("cohort-group", json.dumps({"applyLimitPerUniqueValue": True}))] == 1
    assert limits[("amplitude", "null")] == 4
    defs = _definitions()
    assert defs.resolve_job_def("cohorts_hourly").tags["cohort-group"] == "cohorts-hourly"
    assert defs.resolve_job_def("cohorts_daily").tags["amplitude"] == "cohort-export"
    assert "amplitude" not in defs.resolve_job_def("csv_to_sendgrid").tags


def test_a_job_does_not_start_while_another_job_syncs_one_of_its_cohorts(sandbox, orchestrator):
    defs = _definitions()
    with DagsterInstance.from_config(str(orchestrator.dagster_home)) as instance:
        # amplitude-to-sendgrid syncs every cohort of the environment, pwrusr1 included.
        busy = instance.create_run_for_job(
            defs.resolve_job_def("amplitude_to_sendgrid"), status=DagsterRunStatus.STARTED
        )
        result = defs.resolve_job_def("cohorts_hourly").execute_in_process(
            instance=instance, raise_on_error=False
        )
        assert not result.success
        (failure,) = [e for e in result.all_events if e.event_type == DagsterEventType.STEP_FAILURE]
        description = failure.step_failure_data.user_failure_data.description
        assert busy.run_id in description
        assert "pwrusr1" in description
    assert not [r for r in sandbox.requests if r["service"] == "amplitude"]  # nothing downloaded

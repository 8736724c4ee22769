"""Dagster definitions made from meltano.yml: one job per Meltano job, one schedule per schedule.

Load with ``dagster ... -m orchestrator.definitions`` from the project folder (the Meltano
utility ``dagster`` does: ``meltano invoke dagster:ui``). Nothing here copies meltano.yml: the
jobs, cadences and cohorts are read from it each time the definitions load.
"""

# No `from __future__ import annotations` here: Dagster evaluates ops' type hints when the
# definitions load, and cannot resolve string annotations of functions made inside functions.
import os
from collections.abc import Iterator
from pathlib import Path

from dagster import (
    AssetKey,
    AssetMaterialization,
    DagsterRunStatus,
    DefaultScheduleStatus,
    Definitions,
    Failure,
    Field,
    JobDefinition,
    MetadataValue,
    OpExecutionContext,
    Output,
    RunRequest,
    RunsFilter,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    SkipReason,
    in_process_executor,
    job,
    op,
    schedule,
)

from orchestrator.amplitude_budget import AmplitudeBudget, BudgetTooSmall
from orchestrator.project import CadenceGroup, Project, dagster_name, load_project
from orchestrator.run_report import RunFigures, figures
from orchestrator.runner import echo, run_job

# `meltano invoke` names the project; loaded by hand, the project is the folder above this one.
PROJECT_ROOT = Path(os.environ.get("MELTANO_PROJECT_ROOT") or Path(__file__).resolve().parents[1])
GROUP_TAG = "cohort-group"  # dagster.yaml: at most one run per value at once (queued past it)
AMPLITUDE_TAG = "amplitude"  # dagster.yaml: at most 4 such runs at once (Amplitude allows 5)
ENVIRONMENT_TAG = "meltano/environment"
IN_PROGRESS = [
    DagsterRunStatus.QUEUED,
    DagsterRunStatus.NOT_STARTED,
    DagsterRunStatus.STARTING,
    DagsterRunStatus.STARTED,
    DagsterRunStatus.CANCELING,
]


def _runs_dir(project: Project) -> Path:
    """Where each run keeps its log, report and rejects.

    ``$ORCHESTRATOR_RUNS_DIR``, else ``output/runs`` in the project.
    """
    configured = os.environ.get("ORCHESTRATOR_RUNS_DIR")
    return Path(configured) if configured else project.root / "output" / "runs"


def _budget_path(project: Project) -> Path:
    """The machine's shared ledger of Amplitude cohort requests (beside Dagster's run storage)."""
    home = os.environ.get("DAGSTER_HOME")
    return (Path(home) if home else _runs_dir(project)) / "amplitude-budget.json"


def _refuse_if_cohorts_busy(
    context: OpExecutionContext, group: CadenceGroup, project: Project
) -> None:
    """Fail before running when another job's run is syncing one of this group's cohorts.

    Two jobs sharing a cohort (a group and the by-hand ``amplitude-to-sendgrid``, say) would
    mirror one list from two downloads at once.
    """
    mine = set(group.cohort_ids)
    for other in project.groups:
        shared = mine & set(other.cohort_ids)
        if other.job == group.job or not shared:
            continue
        going = [
            record.dagster_run
            for record in context.instance.get_run_records(
                RunsFilter(job_name=other.dagster_name, statuses=IN_PROGRESS[2:])
            )
            if record.dagster_run.run_id != context.run_id
        ]
        if going:
            msg = (
                f"{group.job} not started: run {going[0].run_id} of {other.job} is syncing "
                f"cohort(s) {', '.join(sorted(shared))}; run it again when that run has ended"
            )
            raise Failure(description=msg)


def _reserve_amplitude_requests(
    context: OpExecutionContext, group: CadenceGroup, project: Project
) -> None:
    if not group.cohort_ids:
        context.log.warning(
            f"{group.job}: its cohort_ids are not in meltano.yml (set by environment variable?), "
            "so its Amplitude requests are not counted against the shared 60-per-10-minutes budget"
        )
        return
    try:
        done = AmplitudeBudget(_budget_path(project)).reserve(
            len(group.cohort_ids),
            f"{group.job}/{context.run_id}",
            on_wait=lambda seconds: context.log.warning(
                f"{group.job}: waiting {seconds:.0f} s for room in Amplitude's 60 cohort "
                "requests per 10 minutes (shared by every group)"
            ),
        )
    except BudgetTooSmall as exc:
        raise Failure(description=f"{group.job}: {exc}") from exc
    context.log.info(
        f"{group.job}: reserved {done.requests} of Amplitude's 60 cohort requests per 10 minutes"
    )


def _metadata(result: RunFigures, run_dir: Path) -> dict[str, object]:
    table = [
        "| list | received | upserted | unchanged | rejected (by reason) | removed | downloads |",
        "|---|---|---|---|---|---|---|",
    ]
    for entry in result.lists:
        reasons = ", ".join(f"{n} {r}" for r, n in sorted(entry.rejected_by_reason.items()))
        counts = entry.counts
        table.append(
            f"| {entry.list_name} | {counts['received']} | {counts['upserted']} | "
            f"{counts['unchanged']} | {counts['rejected']}{f' ({reasons})' if reasons else ''} | "
            f"{counts['removed']} | {entry.downloads} |"
        )
    metadata: dict[str, object] = {
        **{key: MetadataValue.int(value) for key, value in result.totals.items()},
        "rejected_by_reason": MetadataValue.json(result.rejected_by_reason),
        "downloads": MetadataValue.int(result.downloads),
        "lists": MetadataValue.md("\n".join(table)),
        "run_folder": MetadataValue.path(str(run_dir)),
    }
    if result.adds_up is not None:
        metadata["adds_up"] = MetadataValue.bool(bool(result.adds_up))
    return metadata


def _list_events(result: RunFigures) -> Iterator[AssetMaterialization]:
    for entry in result.lists:
        key = dagster_name(entry.cohort_id or entry.list_name).lower()
        metadata: dict[str, object] = {
            "list_name": MetadataValue.text(entry.list_name),
            **{k: MetadataValue.int(v) for k, v in entry.counts.items()},
            "rejected_by_reason": MetadataValue.json(entry.rejected_by_reason),
            "downloads": MetadataValue.int(entry.downloads),
        }
        if entry.removal_reason:
            metadata["removal_reason"] = MetadataValue.text(entry.removal_reason)
        yield AssetMaterialization(
            asset_key=AssetKey(["sendgrid_list", key]),
            description=f"SendGrid list {entry.list_name}",
            metadata=metadata,
        )


def build_job(group: CadenceGroup, project: Project, environment: str) -> JobDefinition:
    """Make the Dagster job that runs one Meltano job."""
    default_environment = environment
    uses_amplitude = project.exports_amplitude(group)

    @op(
        name=f"meltano_run_{group.dagster_name}",
        description=f"meltano run {group.job} ({', '.join(b.state_id_stem for b in group.blocks)})",
        config_schema={
            "environment": Field(
                str,
                default_value="",
                description=(
                    "The Meltano environment (empty: the one the definitions were loaded for)."
                ),
            )
        },
    )
    def run_meltano(context: OpExecutionContext) -> Iterator[object]:
        env = context.op_config["environment"] or default_environment
        run_dir = _runs_dir(project) / group.job / context.run_id
        _refuse_if_cohorts_busy(context, group, project)
        if uses_amplitude:
            _reserve_amplitude_requests(context, group, project)
        context.log.info(f"meltano --environment={env} run {group.job}; log in {run_dir}")
        done = run_job(
            group, project_root=project.root, environment=env, run_dir=run_dir, on_line=echo
        )
        last = group.blocks[-1]
        result = figures(
            done.report,
            done.lines,
            done.returncode,
            {"extractor": last.extractor, "loader": last.loader},
        )
        yield from _list_events(result)
        metadata = _metadata(result, run_dir)
        context.instance.add_run_tags(
            context.run_id,
            {
                f"sync/{key}": str(result.totals.get(key, 0))
                for key in ("received", "upserted", "unchanged", "rejected", "removed")
            }
            | {"sync/downloads": str(result.downloads), ENVIRONMENT_TAG: env},
        )
        if done.returncode != 0 or result.error:
            raise Failure(description=result.error or "meltano run failed", metadata=metadata)
        yield Output(None, metadata=metadata)

    tags = {GROUP_TAG: group.job}
    if uses_amplitude:
        tags[AMPLITUDE_TAG] = "cohort-export"

    # One op per job: running it in the run's own process saves a step subprocess per run.
    @job(
        name=group.dagster_name,
        tags=tags,
        executor_def=in_process_executor,
        description=f"Meltano job {group.job}"
        + (f", scheduled {group.interval} ({group.schedule})" if group.schedule else "")
        + (f"; cohorts {', '.join(group.cohort_ids)}" if group.cohort_ids else ""),
    )
    def meltano_job() -> None:
        run_meltano()

    return meltano_job


def build_schedule(
    group: CadenceGroup, job_def: JobDefinition, environment: str
) -> ScheduleDefinition:
    """Make the schedule of one group: it skips a tick while the group's last run is going."""
    op_name = f"meltano_run_{group.dagster_name}"

    @schedule(
        name=f"{group.dagster_name}_schedule",
        cron_schedule=group.cron or "",
        job=job_def,
        execution_timezone="UTC",
        default_status=DefaultScheduleStatus.STOPPED,
        description=f"Meltano schedule {group.schedule}: {group.interval}",
    )
    def tick(context: ScheduleEvaluationContext) -> RunRequest | SkipReason:
        going = context.instance.get_run_records(
            RunsFilter(job_name=job_def.name, statuses=IN_PROGRESS), limit=1
        )
        if going:
            run = going[0].dagster_run
            reason = (
                f"{group.job}: run {run.run_id} is still {run.status.value.lower()}, so this "
                "tick is skipped (a cadence group never overlaps itself)"
            )
            context.log.warning(reason)
            return SkipReason(reason)
        return RunRequest(
            run_config={"ops": {op_name: {"config": {"environment": environment}}}},
            tags={ENVIRONMENT_TAG: environment, "meltano/schedule": group.schedule or ""},
        )

    return tick


def build_definitions(project: Project, environment: str) -> Definitions:
    """Make every job and schedule of a Meltano project."""
    jobs: list[JobDefinition] = []
    schedules: list[ScheduleDefinition] = []
    for group in project.groups:
        job_def = build_job(group, project, environment)
        jobs.append(job_def)
        if group.cron:
            schedules.append(build_schedule(group, job_def, environment))
    return Definitions(jobs=jobs, schedules=schedules)


def _load() -> Definitions:
    environment = os.environ.get("MELTANO_ENVIRONMENT") or ""
    project = load_project(PROJECT_ROOT, environment or None)
    return build_definitions(project, environment or project.default_environment or "")


defs = _load()

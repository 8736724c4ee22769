"""Read the cadence groups out of meltano.yml (and the files it includes): pure, no Meltano."""

from __future__ import annotations

import glob
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ONE_TIME = frozenset({"@once", "@manual", "@none"})  # Meltano's intervals without a cron
_NAMED_CRONS = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@midnight": "0 0 * * *",
}  # as meltano.core.schedule.CRON_INTERVALS (Meltano 4.4)
AMPLITUDE_TAP = "tap-amplitude-cohort"


class ProjectError(ValueError):
    """meltano.yml describes something the orchestrator cannot run; the message says what."""


@dataclass(frozen=True)
class Block:
    """One extractor-to-loader pair of a job's task."""

    extractor: str
    loader: str

    @property
    def state_id_stem(self) -> str:
        """Meltano's state id without the environment: ``<extractor>-to-<loader>``."""
        return f"{self.extractor}-to-{self.loader}"


@dataclass(frozen=True)
class CadenceGroup:
    """A Meltano job, with its schedule when it has one.

    Attributes:
        job: The Meltano job's name (``meltano run <job>``).
        blocks: Its extractor-to-loader pairs.
        interval: The schedule's interval as written (None: no schedule).
        schedule: The Meltano schedule's name (None: no schedule).
        schedule_env: The schedule's ``env`` (applied to every run of the job by Dagster).
        cohort_ids: Cohorts its Amplitude extractors export (as configured in meltano.yml).
    """

    job: str
    blocks: tuple[Block, ...]
    interval: str | None = None
    schedule: str | None = None
    schedule_env: dict[str, str] = field(default_factory=dict)
    cohort_ids: tuple[str, ...] = ()

    @property
    def cron(self) -> str | None:
        """The cadence as a cron string, or None for a one-time (hand-run) group."""
        return to_cron(self.interval)

    @property
    def dagster_name(self) -> str:
        """The job's name in Dagster (letters, digits and underscores only)."""
        return dagster_name(self.job)


@dataclass(frozen=True)
class Project:
    """What the orchestrator needs from a Meltano project."""

    root: Path
    default_environment: str | None
    environment: str | None
    groups: tuple[CadenceGroup, ...]
    extractors: dict[str, dict[str, Any]]

    def exports_amplitude(self, group: CadenceGroup) -> bool:
        """Whether one of the group's extractors is (or inherits from) tap-amplitude-cohort."""
        return any(
            _lineage(block.extractor, self.extractors)[-1] == AMPLITUDE_TAP
            for block in group.blocks
        )

    def group(self, job: str) -> CadenceGroup:
        """Return the group of a Meltano job (KeyError when unknown)."""
        for group in self.groups:
            if job in (group.job, group.dagster_name):
                return group
        raise KeyError(job)


def dagster_name(name: str) -> str:
    """Turn a Meltano name into a Dagster one (``cohorts-hourly`` -> ``cohorts_hourly``)."""
    return "".join(c if c.isalnum() else "_" for c in name)


def to_cron(interval: str | None) -> str | None:
    """Return the cron string of a Meltano interval; None for no schedule or a one-time run.

    Raises:
        ProjectError: For an interval that is neither a known ``@`` name nor 5 cron fields.
    """
    if interval is None:
        return None
    text = interval.strip()
    if text in ONE_TIME:
        return None
    if text in _NAMED_CRONS:
        return _NAMED_CRONS[text]
    if text.startswith("@") or len(text.split()) != 5:
        msg = (
            f"schedule interval {interval!r} is not understood: use @hourly, @daily, @weekly, "
            "@monthly, @once or five cron fields"
        )
        raise ProjectError(msg)
    return text


def _read_yaml(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        msg = f"{path} is not a YAML mapping"
        raise ProjectError(msg)
    return data


def _merged_files(root: Path) -> list[dict[str, Any]]:
    main = _read_yaml(root / "meltano.yml")
    files = [main]
    for pattern in main.get("include_paths") or []:
        for name in sorted(glob.glob(str(root / pattern))):
            files.append(_read_yaml(Path(name)))
    return files


def _blocks(job: str, tasks: list[Any]) -> tuple[Block, ...]:
    blocks: list[Block] = []
    for task in tasks:
        names = task.split() if isinstance(task, str) else list(task)
        if len(names) != 2:
            msg = (
                f"job {job!r}: the orchestrator runs tasks of one extractor and one loader, "
                f"got {task!r}"
            )
            raise ProjectError(msg)
        blocks.append(Block(names[0], names[1]))
    return tuple(blocks)


def _lineage(name: str, extractors: dict[str, dict[str, Any]]) -> list[str]:
    """The extractor, its parent, the parent's parent...: the order Meltano inherits in."""
    chain = [name]
    while (parent := extractors.get(chain[-1], {}).get("inherit_from")) and parent not in chain:
        chain.append(parent)
    return chain


def _environment_config(files: list[dict[str, Any]], environment: str | None) -> dict[str, dict]:
    """Extractor name -> its config in the named environment."""
    found: dict[str, dict] = {}
    for data in files:
        for env in data.get("environments") or []:
            if env.get("name") != environment:
                continue
            plugins = (env.get("config") or {}).get("plugins") or {}
            for plugin in plugins.get("extractors") or []:
                found.setdefault(plugin["name"], {}).update(plugin.get("config") or {})
    return found


def _cohort_ids(
    extractor: str, extractors: dict[str, dict[str, Any]], environment: dict[str, dict]
) -> list[str]:
    """Resolve ``cohort_ids`` as Meltano does for an inherited extractor (env vars aside)."""
    for name in _lineage(extractor, extractors):
        for config in (environment.get(name) or {}, extractors.get(name, {}).get("config") or {}):
            if "cohort_ids" in config:
                return [str(c) for c in config["cohort_ids"] or []]
    return []


def load_project(root: Path, environment: str | None = None) -> Project:
    """Read meltano.yml and its ``include_paths`` into cadence groups.

    Args:
        root: The Meltano project folder.
        environment: The Meltano environment whose config overrides ``cohort_ids``
            (None: the project's ``default_environment``).

    Returns:
        The project: one group per Meltano job, with its schedule when one names the job.

    Raises:
        ProjectError: On a schedule naming an unknown job, two schedules for one job, a task
            that is not one extractor and one loader, or a cohort in two groups.
    """
    files = _merged_files(root)
    env_name = environment or files[0].get("default_environment")
    env_config = _environment_config(files, env_name)
    extractors: dict[str, dict[str, Any]] = {}
    jobs: dict[str, list[Any]] = {}
    schedules: list[dict[str, Any]] = []
    for data in files:
        for plugin in (data.get("plugins") or {}).get("extractors") or []:
            extractors[plugin["name"]] = plugin
        for job in data.get("jobs") or []:
            jobs[job["name"]] = job.get("tasks") or []
        schedules.extend(data.get("schedules") or [])

    by_job: dict[str, dict[str, Any]] = {}
    for schedule in schedules:
        job = schedule.get("job")
        if job is None:
            continue  # a legacy `meltano elt` schedule: not ours to run
        if job not in jobs:
            msg = f"schedule {schedule['name']!r} names job {job!r}, which meltano.yml lacks"
            raise ProjectError(msg)
        if job in by_job:
            msg = (
                f"job {job!r} has two schedules ({by_job[job]['name']!r}, {schedule['name']!r}): "
                "give each cadence its own group (extractor and job) so runs never share state"
            )
            raise ProjectError(msg)
        by_job[job] = schedule

    groups: list[CadenceGroup] = []
    owner: dict[str, str] = {}
    for job, tasks in jobs.items():
        blocks = _blocks(job, tasks)
        schedule = by_job.get(job)
        cohorts: list[str] = []
        for block in blocks:
            if _lineage(block.extractor, extractors)[-1] != AMPLITUDE_TAP:
                continue
            cohorts.extend(_cohort_ids(block.extractor, extractors, env_config))
        if schedule is not None:
            to_cron(schedule.get("interval"))  # fail early on a cadence we cannot read
            for cohort in cohorts:
                if cohort in owner and owner[cohort] != job:
                    msg = (
                        f"cohort {cohort} is in two scheduled jobs ({owner[cohort]}, {job}): "
                        "it would be downloaded twice and its list mirrored by both"
                    )
                    raise ProjectError(msg)
                owner[cohort] = job
        groups.append(
            CadenceGroup(
                job=job,
                blocks=blocks,
                interval=schedule.get("interval") if schedule else None,
                schedule=schedule["name"] if schedule else None,
                schedule_env={k: str(v) for k, v in (schedule or {}).get("env", {}).items()},
                cohort_ids=tuple(cohorts),
            )
        )
    return Project(
        root=root,
        default_environment=files[0].get("default_environment"),
        environment=env_name,
        groups=tuple(groups),
        extractors=extractors,
    )

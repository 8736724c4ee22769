"""The Amplitude download quota plan: the most downloads a month the cadence groups can use.

Run it with ``meltano invoke dagster:quota`` (or ``python -m orchestrator.quota``). Every
scheduled run may download each of its cohorts once (a ``request/{id}`` call counts against the
monthly quota, 500 on Growth and Enterprise plans); skipping unchanged cohorts only lowers that.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from orchestrator.cron import max_ticks_in_window, max_ticks_per_month
from orchestrator.project import CadenceGroup, Project, ProjectError, load_project

MONTHLY_QUOTA = 500
WINDOW_MINUTES = 10
WINDOW_REQUESTS = 60  # single-cohort requests per 10 minutes, per Amplitude app
# Cadences to suggest, most frequent first.
CADENCES = (
    ("every 30 minutes", "*/30 * * * *"),
    ("@hourly", "0 * * * *"),
    ("every 2 hours", "0 */2 * * *"),
    ("every 3 hours", "0 */3 * * *"),
    ("every 4 hours", "0 */4 * * *"),
    ("every 6 hours", "0 */6 * * *"),
    ("every 8 hours", "0 */8 * * *"),
    ("every 12 hours", "0 */12 * * *"),
    ("@daily", "0 0 * * *"),
    ("every 2 days", "0 0 */2 * *"),
    ("@weekly", "0 0 * * 0"),
)


@dataclass(frozen=True)
class GroupPlan:
    """One group's share of the plan."""

    job: str
    interval: str
    cohort_ids: tuple[str, ...]
    runs_per_month: int  # 0 for a one-time or hand-run group
    one_time: bool
    runs_per_window: int

    @property
    def downloads_per_month(self) -> int:
        """The most downloads a month: every run downloads every cohort."""
        return self.runs_per_month * len(self.cohort_ids)


@dataclass(frozen=True)
class Plan:
    """The whole configuration's plan."""

    groups: tuple[GroupPlan, ...]
    quota: int
    environment: str | None = None

    @property
    def total_per_month(self) -> int:
        """Downloads a month at most, all scheduled groups together."""
        return sum(g.downloads_per_month for g in self.groups)

    @property
    def one_time_downloads(self) -> int:
        """Downloads of one run of each one-time group."""
        return sum(len(g.cohort_ids) for g in self.groups if g.one_time)

    @property
    def window_requests(self) -> int:
        """Most cohort requests in one 10-minute window if every group's ticks coincide."""
        return sum(g.runs_per_window * len(g.cohort_ids) for g in self.groups)


def plan(project: Project, quota: int = MONTHLY_QUOTA) -> Plan:
    """Plan the scheduled groups that export Amplitude cohorts.

    Jobs without a schedule (such as ``amplitude-to-sendgrid``) are left out: they run only
    when someone starts them. A schedule of ``@once`` counts as one-time.

    Args:
        project: From :func:`orchestrator.project.load_project`.
        quota: Downloads a month the Amplitude plan allows.

    Returns:
        The plan.
    """
    groups = []
    for group in project.groups:
        if group.schedule is None or not group.cohort_ids:
            continue
        groups.append(_group_plan(group))
    return Plan(tuple(groups), quota, project.environment)


def _group_plan(group: CadenceGroup) -> GroupPlan:
    cron = group.cron
    return GroupPlan(
        job=group.job,
        interval=group.interval or "",
        cohort_ids=group.cohort_ids,
        runs_per_month=max_ticks_per_month(cron) if cron else 0,
        one_time=cron is None,
        runs_per_window=max_ticks_in_window(cron, WINDOW_MINUTES) if cron else 1,
    )


def suggest(result: Plan) -> list[str]:
    """Lines suggesting the cadence that fits, when the plan is over the quota.

    The suggestion caps every group faster than one cadence at that cadence, trying the most
    frequent cadence first, and names the groups to change.
    """
    if result.total_per_month <= result.quota:
        return []
    for name, cron in CADENCES:
        cap = max_ticks_per_month(cron)
        total = sum(min(g.runs_per_month, cap) * len(g.cohort_ids) for g in result.groups)
        if total <= result.quota:
            changes = [g.job for g in result.groups if g.runs_per_month > cap]
            return [
                f"Suggestion: run {', '.join(changes)} at most {name} ({cron!r}): then at most "
                f"{total} downloads a month."
            ]
    cohorts = sum(len(g.cohort_ids) for g in result.groups if not g.one_time)
    return [
        f"Suggestion: even weekly, {cohorts} scheduled cohorts exceed {result.quota} downloads "
        "a month: schedule fewer cohorts, or make some one-time (@once)."
    ]


def render(result: Plan) -> str:
    """The plan as the text the command prints."""
    lines = [
        f"Amplitude download quota plan, environment {result.environment or '(none)'} "
        "(most downloads a month; skipping unchanged cohorts only lowers it)",
    ]
    for group in result.groups:
        if group.one_time:
            lines.append(
                f"{group.job} ({group.interval}): one time, "
                f"{len(group.cohort_ids)} download(s) when run"
            )
            for cohort in group.cohort_ids:
                lines.append(f"  {cohort}: 1 (once)")
            continue
        lines.append(
            f"{group.job} ({group.interval}): {group.runs_per_month} runs a month x "
            f"{len(group.cohort_ids)} cohort(s) = {group.downloads_per_month}"
        )
        for cohort in group.cohort_ids:
            lines.append(f"  {cohort}: {group.runs_per_month}")
    lines.append(
        f"Total: {result.total_per_month} downloads a month at most "
        f"(quota {result.quota})"
        + (f", plus {result.one_time_downloads} one-time" if result.one_time_downloads else "")
    )
    if result.total_per_month > result.quota:
        lines.append(
            f"WARNING: {result.total_per_month} is over the {result.quota} "
            "downloads a month Amplitude allows; past it every export is refused "
            "until the month ends."
        )
        lines.extend(suggest(result))
    if result.window_requests > WINDOW_REQUESTS:
        lines.append(
            f"WARNING: if the groups' ticks coincide, {result.window_requests} cohort "
            f"requests fall in one {WINDOW_MINUTES}-minute window; Amplitude allows "
            f"{WINDOW_REQUESTS}: spread the schedules' minutes."
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Print the plan; exit 2 when meltano.yml cannot be read, 1 over the quota with --strict."""
    parser = argparse.ArgumentParser(description="Amplitude download quota plan")
    parser.add_argument(
        "--project",
        type=Path,
        default=Path(os.environ.get("MELTANO_PROJECT_ROOT", ".")),
        help="Meltano project folder (default: the current one)",
    )
    parser.add_argument(
        "--environment",
        default=os.environ.get("MELTANO_ENVIRONMENT"),
        help="Meltano environment whose cohort_ids count (default: the "
        "project's default environment)",
    )
    parser.add_argument(
        "--quota",
        type=int,
        default=MONTHLY_QUOTA,
        help=f"downloads a month your Amplitude plan allows ({MONTHLY_QUOTA})",
    )
    parser.add_argument(
        "--strict",
        action="store_true",
        help="exit 1 when the plan is over the quota (for a CI check)",
    )
    args = parser.parse_args(argv)
    try:
        project = load_project(args.project.resolve(), args.environment)
    except (ProjectError, OSError) as exc:
        print(f"Cannot read the cadence groups: {exc}", file=sys.stderr)
        return 2
    result = plan(project, args.quota)
    print(render(result))
    return 1 if args.strict and result.total_per_month > result.quota else 0


if __name__ == "__main__":
    sys.exit(main())

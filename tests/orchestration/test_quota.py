"""The download quota planner on known configurations, and the cron counting behind it."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from orchestrator.cron import CronError, max_ticks_in_window, max_ticks_per_month
from orchestrator.project import ProjectError, load_project
from orchestrator.quota import main, plan, render

ROOT = Path(__file__).resolve().parents[2]


def _project(tmp_path: Path, groups: dict[str, tuple[str, list[str]]]) -> Path:
    extractors = "".join(
        f"  - name: tap-amplitude-cohort--{name}\n"
        f"    inherit_from: tap-amplitude-cohort\n"
        f"    config: {{cohort_ids: {ids}}}\n"
        for name, (_, ids) in groups.items()
    )
    jobs = "".join(
        f"- name: cohorts-{name}\n"
        f"  tasks: [tap-amplitude-cohort--{name} target-sendgrid-contacts]\n"
        for name in groups
    )
    schedules = "".join(
        f"- name: cohorts-{name}\n  interval: '{interval}'\n  job: cohorts-{name}\n"
        for name, (interval, _) in groups.items()
    )
    (tmp_path / "meltano.yml").write_text(
        textwrap.dedent("""\
        default_environment: sandbox
        include_paths: [./cadences.meltano.yml]
        plugins:
          extractors:
          - name: tap-amplitude-cohort
          loaders:
          - name: target-sendgrid-contacts
        """)
    )
    (tmp_path / "cadences.meltano.yml").write_text(
        f"plugins:\n  extractors:\n{extractors}jobs:\n{jobs}schedules:\n{schedules}"
    )
    return tmp_path


@pytest.mark.parametrize(
    ("cron", "month", "window"),
    [
        ("0 * * * *", 744, 1),  # hourly: 24 x 31
        ("0 0 * * *", 31, 1),
        ("*/5 * * * *", 8928, 2),  # every 5 minutes: 2 ticks in any 10 minutes
        ("0 9 * * 1-5", 23, 1),  # weekdays: at most 23 in a month
        ("0 0 1 * *", 1, 1),
        ("0 0 * * 0", 5, 1),
        ("30 */6 * * *", 124, 1),
    ],
)
def test_cron_ticks(cron, month, window):
    assert max_ticks_per_month(cron) == month
    assert max_ticks_in_window(cron, 10) == window


def test_a_bad_cron_names_the_field():
    with pytest.raises(CronError, match="hour"):
        max_ticks_per_month("0 25 * * *")


def test_plan_counts_every_run_times_every_cohort_and_suggests_what_fits(tmp_path):
    project = load_project(
        _project(
            tmp_path,
            {
                "hourly": ("@hourly", ["aaa1"]),
                "daily": ("@daily", ["bbb2", "ccc3"]),
                "once": ("@once", ["ddd4"]),
            },
        )
    )
    result = plan(project)
    by_job = {g.job: g for g in result.groups}
    assert by_job["cohorts-hourly"].downloads_per_month == 744
    assert by_job["cohorts-daily"].downloads_per_month == 62
    assert by_job["cohorts-once"].downloads_per_month == 0
    assert result.total_per_month == 806
    assert result.one_time_downloads == 1
    text = render(result)
    assert "  aaa1: 744" in text
    assert "  bbb2: 31" in text
    assert "Total: 806 downloads a month at most (quota 500), plus 1 one-time" in text
    assert "WARNING: 806 is over the 500" in text
    # Hourly capped at every 2 hours: 372 + 62 = 434 fits; every hour does not.
    assert "run cohorts-hourly at most every 2 hours ('0 */2 * * *'): then at most 434" in text


def test_a_plan_within_the_quota_warns_of_nothing(tmp_path):
    result = plan(load_project(_project(tmp_path, {"daily": ("@daily", ["a1", "b2", "c3"])})))
    assert result.total_per_month == 93
    assert "WARNING" not in render(result)
    assert "Suggestion" not in render(result)


def test_too_many_cohorts_even_weekly_says_so(tmp_path):
    ids = [f"c{n}" for n in range(120)]
    text = render(plan(load_project(_project(tmp_path, {"weekly": ("@weekly", ids)}))))
    assert "Total: 600" in text
    assert "even weekly, 120 scheduled cohorts exceed 500" in text


def test_coinciding_ticks_past_sixty_requests_in_ten_minutes_are_warned(tmp_path):
    ids = [f"c{n}" for n in range(40)]
    text = render(
        plan(
            load_project(
                _project(
                    tmp_path,
                    {
                        "a": ("@daily", ids[:30]),
                        "b": ("0 0 * * 0", ids[30:]),
                        "c": (
                            "*/5 * * * 0",
                            ["z1", "z2", "z3", "z4", "z5", "z6", "z7", "z8", "z9", "z10", "z11"],
                        ),
                    },
                )
            )
        )
    )
    # 30 + 10 + 2 ticks x 11 = 62 requests if they all fall in one window.
    assert "62 cohort requests fall in one 10-minute window" in text


def test_the_command_reads_this_projects_cadences(capsys):
    assert main(["--project", str(ROOT), "--environment", "sandbox"]) == 0
    out = capsys.readouterr().out
    assert "cohorts-hourly (@hourly): 744 runs a month x 1 cohort(s) = 744" in out
    assert "cohorts-daily (@daily): 31 runs a month x 2 cohort(s) = 62" in out
    assert main(["--project", str(ROOT), "--strict"]) == 1


def test_a_cohort_in_two_scheduled_groups_is_refused(tmp_path):
    root = _project(tmp_path, {"a": ("@hourly", ["x1"]), "b": ("@daily", ["x1"])})
    with pytest.raises(ProjectError, match="cohort x1 is in two scheduled jobs"):
        load_project(root)


def test_two_schedules_for_one_job_are_refused(tmp_path):
    root = _project(tmp_path, {"a": ("@hourly", ["x1"])})
    extra = "- name: again\n  interval: '@daily'\n  job: cohorts-a\n"
    path = root / "cadences.meltano.yml"
    path.write_text(path.read_text() + extra)
    with pytest.raises(ProjectError, match="two schedules"):
        load_project(root)

"""The cadence groups as this project ships them: one readable place, no copied configuration."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests
import yaml

from orchestrator.project import load_project

ROOT = Path(__file__).resolve().parents[2]


def test_each_group_is_an_inherited_extractor_that_names_only_its_cohorts():
    cadences = yaml.safe_load((ROOT / "cadences.meltano.yml").read_text())
    project = load_project(ROOT)
    scheduled = [g for g in project.groups if g.schedule]
    assert {g.job for g in scheduled} == {"cohorts-hourly", "cohorts-daily"}
    extractors = {p["name"]: p for p in cadences["plugins"]["extractors"]}
    state_ids = set()
    for group in scheduled:
        (block,) = group.blocks
        plugin = extractors[block.extractor]
        assert plugin["inherit_from"] == "tap-amplitude-cohort--batch"  # our tap, BATCH output
        assert set(plugin) == {"name", "inherit_from", "config"}
        assert set(plugin["config"]) == {"cohort_ids"}, "a group carries only its cohort_ids"
        state_ids.add(block.state_id_stem)
    assert len(state_ids) == len(scheduled), "each group has its own state id"
    cohorts = [c for g in scheduled for c in g.cohort_ids]
    assert sorted(cohorts) == ["empty03", "pwrusr1", "trlrsk2"]


def test_the_dagster_utility_and_the_test_tools_pin_the_same_dagster():
    meltano = yaml.safe_load((ROOT / "meltano.yml").read_text())
    (dagster,) = meltano["plugins"]["utilities"]
    pins = dict(p.split(">=", 1) for p in dagster["pip_url"].split())
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert f'"dagster>={pins["dagster"]}"' in pyproject
    assert pins["dagster"] == pins["dagster-webserver"]


@pytest.mark.e2e
@pytest.mark.integration
def test_meltano_lists_the_schedules_and_cron_can_run_one(sandbox, orchestrator):
    listed = orchestrator.meltano("schedule", "list", "--format=json")
    assert listed.returncode == 0, listed.stderr[-2000:]
    schedules = {s["name"]: s for s in json.loads(listed.stdout)["schedules"]["job"]}
    assert schedules["cohorts-hourly"]["interval"] == "@hourly"
    assert schedules["cohorts-daily"]["interval"] == "@daily"
    # Dagster's schedules tick when Meltano says they do.
    for group in load_project(ROOT).groups:
        if group.schedule:
            assert group.cron == schedules[group.schedule]["cron_interval"], group.schedule

    # The minimal path without Dagster: what a crontab line runs.
    report = ROOT / "output" / "cohorts-daily" / "report.json"
    report.unlink(missing_ok=True)
    ran = orchestrator.meltano("--environment=sandbox", "schedule", "run", "cohorts-daily")
    assert ran.returncode == 0, ran.stderr[-3000:]
    lists = requests.get(f"{sandbox.sendgrid_url}/_sandbox/lists", timeout=10).json()
    assert {item["name"].rsplit(": ", 1)[1] for item in lists} == {"trlrsk2", "empty03"}
    # The schedule's env gives the group its own report.
    assert {e["cohort_id"] for e in json.loads(report.read_text())["lists"]} == {
        "trlrsk2",
        "empty03",
    }

"""The runner: each run its own report files, and a terminated run stops its `meltano run`."""

from __future__ import annotations

import sys
import textwrap

import pytest

from orchestrator.project import Block, CadenceGroup
from orchestrator.runner import run_env, run_job

GROUP = CadenceGroup(
    job="cohorts-hourly",
    blocks=(Block("tap-amplitude-cohort--hourly", "target-sendgrid-contacts--eu"),),
    schedule="cohorts-hourly",
    interval="@hourly",
    schedule_env={
        "TARGET_SENDGRID_CONTACTS_REPORT_PATH": "output/cohorts-hourly/report.json",
        "TARGET_SENDGRID_CONTACTS_LIST_NAME": "Hourly",
    },
)


def test_each_run_writes_its_report_in_its_own_folder_whatever_the_schedule_says(tmp_path):
    env = run_env(GROUP, tmp_path / "run-1", {"MELTANO_JOB_NAME": "outer", "KEEP": "1"})
    assert env["TARGET_SENDGRID_CONTACTS_REPORT_PATH"] == str(tmp_path / "run-1" / "report.json")
    # An inherited loader may set its own report_path: its name variable overrides that too.
    assert env["TARGET_SENDGRID_CONTACTS__EU_REPORT_PATH"] == str(
        tmp_path / "run-1" / "report.json"
    )
    assert env["TARGET_SENDGRID_CONTACTS_REJECTS_PATH"] == str(tmp_path / "run-1" / "rejects.jsonl")
    assert env["TARGET_SENDGRID_CONTACTS_LIST_NAME"] == "Hourly"  # the schedule's env applies
    assert env["KEEP"] == "1"
    assert "MELTANO_JOB_NAME" not in env


class Terminated(Exception):
    pass


def test_a_terminated_run_stops_meltano_and_is_not_reported_as_done(tmp_path, monkeypatch):
    marker = tmp_path / "got-sigterm"
    fake = tmp_path / "meltano"
    fake.write_text(
        textwrap.dedent(f"""\
        #!{sys.executable}
        import signal, sys, time
        def stop(*_):
            open({str(marker)!r}, "w").write("stopped")
            sys.exit(143)
        signal.signal(signal.SIGTERM, stop)
        print("Running job", flush=True)
        time.sleep(60)
        """)
    )
    fake.chmod(0o755)
    monkeypatch.setenv("MELTANO_EXECUTABLE", str(fake))

    def interrupt(line: str) -> None:
        raise Terminated(line)

    with pytest.raises(Terminated):
        run_job(
            GROUP,
            project_root=tmp_path,
            environment="sandbox",
            run_dir=tmp_path / "run",
            on_line=interrupt,
        )
    assert marker.read_text() == "stopped"
    assert (tmp_path / "run" / "meltano.log").read_text() == "Running job\n"


def test_meltano_gets_the_environment_and_the_job(tmp_path, monkeypatch):
    fake = tmp_path / "meltano"
    fake.write_text(f"#!{sys.executable}\nimport sys\nprint(' '.join(sys.argv[1:]))\nsys.exit(3)\n")
    fake.chmod(0o755)
    monkeypatch.setenv("MELTANO_EXECUTABLE", str(fake))
    done = run_job(GROUP, project_root=tmp_path, environment="prod", run_dir=tmp_path / "run")
    assert done.returncode == 3
    assert done.lines == ["--environment=prod run cohorts-hourly"]  # never --force
    assert done.report is None

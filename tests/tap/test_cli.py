"""The tap as Meltano runs it: a process, Singer on stdout, logs on stderr, an exit code."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.tap.harness import tap_config

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
TAP = ROOT / ".venv" / "bin" / "tap-amplitude-cohort"


def run_cli(config: dict, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(config))
    command = [str(TAP)] if TAP.exists() else [sys.executable, "-m", "tap_amplitude_cohort.tap"]
    return subprocess.run(
        [*command, "--config", str(config_path), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_failed_cohort_exits_non_zero_after_writing_cohort_syncs_and_state(sandbox, tmp_path):
    sandbox.faults.add("storage", "GET", r"/files/.*pwrusr1", truncate_after=3000)
    proc = run_cli(tap_config(sandbox), tmp_path)

    assert proc.returncode == 1
    messages = [json.loads(line) for line in proc.stdout.splitlines()]
    kinds = [(m["type"], m.get("stream")) for m in messages]
    last_sync = max(i for i, k in enumerate(kinds) if k == ("RECORD", "cohort_syncs"))
    assert ("STATE", None) in kinds[last_sync:]  # bookmarks of the good cohorts are kept
    syncs = {
        m["record"]["cohort_id"]: m["record"]["status"]
        for m in messages
        if m["type"] == "RECORD" and m["stream"] == "cohort_syncs"
    }
    assert syncs == {"pwrusr1": "failed", "trlrsk2": "complete", "empty03": "complete"}
    summary = [line for line in proc.stderr.splitlines() if "cohort(s) failed" in line]
    assert len(summary) == 1
    assert "pwrusr1 (Power users)" in summary[0]
    assert "trlrsk2" not in summary[0]
    assert "Traceback" not in proc.stderr


def test_logs_carry_no_secret_and_no_email(sandbox, tmp_path):
    proc = run_cli(tap_config(sandbox), tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert sandbox.amplitude_secret_key not in proc.stderr
    assert sandbox.amplitude_api_key not in proc.stderr
    assert "@" not in proc.stderr.replace("growth-team@acme-corp.io", "")
    assert "3 complete, 0 unchanged, 0 failed; 3 cohort download(s) used" in proc.stderr


def test_unknown_cohort_is_a_config_error_with_the_cohorts_that_exist(sandbox, tmp_path):
    proc = run_cli(tap_config(sandbox, cohort_ids=["nope42"]), tmp_path)
    assert proc.returncode == 1
    assert "nope42" in proc.stderr
    assert "pwrusr1 (Power users)" in proc.stderr


def test_discover_needs_no_network(tmp_path):
    proc = run_cli(
        {"api_key": "k", "secret_key": "s", "api_url": "http://127.0.0.1:9"}, tmp_path, "--discover"
    )
    assert proc.returncode == 0, proc.stderr
    streams = [s["tap_stream_id"] for s in json.loads(proc.stdout)["streams"]]
    assert streams == ["cohorts", "cohort_members", "cohort_syncs"]

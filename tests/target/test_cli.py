"""The installed CLI, fed what `meltano config test` sends a loader (one record, no email)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

CLI = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "target-sendgrid-contacts"
MELTANO_TEST_INPUT = (
    "\n".join(
        json.dumps(message)
        for message in (
            {
                "type": "SCHEMA",
                "stream": "meltano_test_stream",
                "key_properties": ["id"],
                "schema": {
                    "type": "object",
                    "properties": {
                        "id": {"type": "integer"},
                        "name": {"type": "string"},
                        "created_at": {"type": "string", "format": "date-time"},
                    },
                },
            },
            {
                "type": "RECORD",
                "stream": "meltano_test_stream",
                "record": {"id": 1, "name": "test", "created_at": "2026-11-26T00:00:00Z"},
            },
            {"type": "STATE", "value": {"bookmarks": {"meltano_test_stream": {"last": 1}}}},
        )
    )
    + "\n"
)


def run_cli(sandbox, tmp_path: Path, api_key: str) -> subprocess.CompletedProcess:
    config = tmp_path / "config.json"
    config.write_text(
        json.dumps(
            {
                "api_key": api_key,
                "api_url": sandbox.sendgrid_url,
                "rejects_path": str(tmp_path / "rejects.jsonl"),
            }
        )
    )
    if not CLI.exists():
        pytest.skip("run scripts/setup.sh first")
    return subprocess.run(
        [str(CLI), "--config", str(config)],
        input=MELTANO_TEST_INPUT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_config_test_input_is_rejected_with_a_reason_and_the_run_succeeds(sandbox, tmp_path):
    done = run_cli(sandbox, tmp_path, sandbox.sendgrid_api_key)
    assert done.returncode == 0, done.stderr[-2000:]
    rejects = [json.loads(line) for line in (tmp_path / "rejects.jsonl").read_text().splitlines()]
    assert [r["reason"] for r in rejects] == ["missing_email"]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {
        "bookmarks": {"meltano_test_stream": {"last": 1}}
    }
    # meltano's loader test fails the test on any output line containing "error"
    assert "error" not in done.stderr.lower()


def test_a_key_without_marketing_permission_exits_non_zero_with_the_fix(sandbox, tmp_path):
    done = run_cli(sandbox, tmp_path, sandbox.sendgrid_restricted_key)
    assert done.returncode != 0
    assert "Full Access, or Restricted Access with Marketing" in done.stderr
    assert sandbox.sendgrid_restricted_key not in done.stderr
    assert "Traceback" not in done.stderr

"""`meltano run tap-amplitude-cohort target-jsonl`: the tap feeds a stock loader."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from sandbox.generator import PROPERTY_KEYS
from tests.tap.harness import SEEDED_IDS

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

ROOT = Path(__file__).resolve().parents[2]
MELTANO = ROOT / ".venv" / "bin" / "meltano"


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_meltano_run_into_target_jsonl_writes_every_member_and_the_sync_outcomes(sandbox, tmp_path):
    if not MELTANO.exists():
        pytest.skip("run scripts/setup.sh first (no .venv/bin/meltano)")
    out = tmp_path / "jsonl"
    out.mkdir()
    env = {
        **os.environ,
        "MELTANO_ENVIRONMENT": "sandbox",
        "MELTANO_DATABASE_URI": f"sqlite:///{tmp_path / 'meltano.db'}",
        "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
        "TAP_AMPLITUDE_COHORT_API_URL": sandbox.amplitude_url,
        # No TAP_AMPLITUDE_COHORT_POLL_INTERVAL_SECONDS: Meltano 4.4.1 turns a string value of
        # a `kind: decimal` setting into a Decimal it cannot serialise (meltano.yml's 0.2 holds).
        "TARGET_JSONL_DESTINATION_PATH": str(out),
        "TARGET_JSONL_DO_TIMESTAMP_FILE": "false",
    }
    proc = subprocess.run(
        [str(MELTANO), "run", "tap-amplitude-cohort", "target-jsonl"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]

    members = read_jsonl(out / "cohort_members.jsonl")
    for cohort_id in SEEDED_IDS:
        rows = [m for m in members if m["cohort_id"] == cohort_id]
        expected = {m["amplitude_id"] for m in sandbox.generator.members(cohort_id)}
        assert {r["amplitude_id"] for r in rows} == expected
        assert len(rows) == len(expected)
        assert all(set(r["user_properties"]) == set(PROPERTY_KEYS) for r in rows)
    syncs = {s["cohort_id"]: s for s in read_jsonl(out / "cohort_syncs.jsonl")}
    assert {c: s["status"] for c, s in syncs.items()} == dict.fromkeys(SEEDED_IDS, "complete")
    assert syncs["empty03"]["member_count"] == 0
    # The secrets in meltano.yml's sandbox environment never reach the log.
    assert "sandbox-amplitude-secret" not in proc.stderr + proc.stdout

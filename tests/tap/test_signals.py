"""SIGTERM or SIGINT stops the tap at once: the cohort in flight fails, no STATE, exit 128+N."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.tap.harness import tap_config

pytestmark = pytest.mark.integration

TAP = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "tap-amplitude-cohort"


def wait_until(condition, what: str, limit: float = 60.0) -> None:
    """Poll for a condition (a bound on a hang, not a timed assertion)."""
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.02)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=lambda s: s.name)
def test_a_signal_during_the_download_fails_the_cohort_and_exits_128_plus_n(
    signum, sandbox, tmp_path
):
    if not TAP.exists():
        pytest.skip("run scripts/setup.sh first")
    # The second cohort's file hangs, so the signal lands while it is being downloaded.
    slow = sandbox.faults.add("storage", "GET", r"/files/.*trlrsk2", delay=60)
    config = tmp_path / "config.json"
    config.write_text(json.dumps(tap_config(sandbox)))
    out_path, err_path = tmp_path / "out.singer", tmp_path / "err.log"
    # Files, not pipes: a full pipe would stall the tap before it reaches the slow download.
    with out_path.open("w") as out_file, err_path.open("w") as err_file:
        tap = subprocess.Popen(
            [str(TAP), "--config", str(config)], stdout=out_file, stderr=err_file
        )
        wait_until(lambda: slow.hits >= 1, "the slow download to start")
        tap.send_signal(signum)
        tap.wait(timeout=30)
    out, err = out_path.read_text(), err_path.read_text()

    assert tap.returncode == 128 + signum
    lines = [line for line in err.splitlines() if "Interrupted by" in line]
    assert len(lines) == 1, err[-3000:]
    assert f"Interrupted by {signum.name} while downloading cohort trlrsk2" in lines[0]
    assert "cohort trlrsk2 failed and its bookmark did not move; STATE not written" in lines[0]
    assert "Gracefully shutting down" not in err
    messages = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    syncs = [m for m in messages if m.get("stream") == "cohort_syncs" and m["type"] == "RECORD"]
    assert syncs == []  # no completeness signal: the target removes nobody
    states = [m["value"] for m in messages if m["type"] == "STATE"]
    partitions = [
        p
        for s in states
        for p in s.get("bookmarks", {}).get("cohort_members", {}).get("partitions", [])
    ]
    assert not any(p.get("last_computed") for p in partitions)  # no bookmark moved
    assert "@" not in err.replace("growth-team@acme-corp.io", "")

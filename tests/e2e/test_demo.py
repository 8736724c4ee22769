"""The README's first command: the demo runs the real job against the sandbox, and says so."""

from __future__ import annotations

import os
import random
import socket
import subprocess
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

ROOT = Path(__file__).resolve().parents[2]
PYTHON = ROOT / ".venv" / "bin" / "python"


def _three_free_ports() -> int:
    for _ in range(50):
        base = random.randint(20_000, 60_000)
        try:
            for port in range(base, base + 3):
                with socket.socket() as probe:
                    probe.bind(("127.0.0.1", port))
        except OSError:
            continue
        return base
    pytest.fail("no three free consecutive ports")


def test_demo_syncs_every_cohort_then_mirrors_the_churn(tmp_path):
    if not PYTHON.exists():
        pytest.skip("run scripts/setup.sh first")
    env = {**os.environ, "MELTANO_DATABASE_URI": f"sqlite:///{tmp_path / 'meltano.db'}"}
    proc = subprocess.run(
        [
            str(PYTHON),
            str(ROOT / "scripts" / "demo.py"),
            "--port",
            str(_three_free_ports()),
            "--output",
            str(tmp_path / "out"),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    first, second = proc.stdout.split("=== Second sync")
    # Each cohort's list equals its valid, de-duplicated, lower-cased emails, after both runs.
    assert first.count("= the cohort's valid, de-duplicated, lower-cased emails") == 3
    assert "MISMATCH" not in proc.stdout
    assert "Amplitude cohort downloads in this run: 3" in first
    assert "Amplitude cohort downloads in this run: 1" in second
    assert "= the cohort's valid, de-duplicated, lower-cased emails" in second
    assert (tmp_path / "out" / "report.json").exists()
    assert (tmp_path / "out" / "rejects.jsonl").exists()

"""The orchestrator against a test sandbox: own Meltano database, Dagster home and run folder."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MELTANO = ROOT / ".venv" / "bin" / "meltano"
DAGSTER_YAML = ROOT / "orchestrator" / "dagster_home" / "dagster.yaml"


@dataclass
class Orchestrator:
    """Paths and environment of one test's orchestrator."""

    env: dict[str, str]
    dagster_home: Path
    runs_dir: Path

    def meltano(
        self, *args: str, env: dict[str, str] | None = None, timeout: float = 240
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(MELTANO), *args],
            cwd=ROOT,
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=timeout,
            check=False,
        )

    def popen(self, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [str(MELTANO), *args],
            cwd=ROOT,
            env={**self.env, **(env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            stdin=subprocess.DEVNULL,
        )

    def state_ids(self) -> set[str]:
        listed = self.meltano("--environment=sandbox", "state", "list")
        assert listed.returncode == 0, listed.stderr[-2000:]
        return {line.strip() for line in listed.stdout.splitlines() if line.strip()}


@pytest.fixture
def orchestrator(sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Orchestrator:
    """The sandbox's URLs, a fresh Meltano system database and a fresh Dagster home.

    The same variables are set in this process, for tests that drive Dagster in-process.
    """
    if not MELTANO.exists():
        pytest.skip("run scripts/setup.sh first (no .venv/bin/meltano)")
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(DAGSTER_YAML, home / "dagster.yaml")
    runs = tmp_path / "runs"
    overrides = {
        "MELTANO_DATABASE_URI": f"sqlite:///{tmp_path / 'meltano.db'}",
        "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
        "MELTANO_EXECUTABLE": str(MELTANO),
        "TAP_AMPLITUDE_COHORT_API_URL": sandbox.amplitude_url,
        "TARGET_SENDGRID_CONTACTS_API_URL": sandbox.sendgrid_url,
        "DAGSTER_HOME": str(home),  # for Dagster in this process
        "DAGSTER_DAGSTER_HOME": str(home),  # the utility's dagster_home setting
        "ORCHESTRATOR_RUNS_DIR": str(runs),
    }
    for name in ("MELTANO_ENVIRONMENT", "MELTANO_JOB_NAME"):
        monkeypatch.delenv(name, raising=False)
    for name, value in overrides.items():
        monkeypatch.setenv(name, value)
    return Orchestrator(dict(os.environ), home, runs)

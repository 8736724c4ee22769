"""Run Meltano, with the root meltano.yml, against a test sandbox on ephemeral ports."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MELTANO = ROOT / ".venv" / "bin" / "meltano"
PYTHON = ROOT / ".venv" / "bin" / "python"
PATCHED = Path(__file__).with_name("meltano_patched.py")


@dataclass
class MeltanoResult:
    """What one meltano invocation did."""

    returncode: int
    stdout: str
    stderr: str
    report: dict
    rejects: list[dict]


@pytest.fixture
def meltano(sandbox, tmp_path: Path) -> Callable[..., MeltanoResult]:
    """Return a runner of `meltano ARGS` pointed at the `sandbox` fixture.

    Each test gets its own Meltano system database (so state does not leak between tests or into
    the developer's project), its own report and rejects files, and the sandbox's ports.
    Decimal settings are left to meltano.yml: Meltano 4.4 cannot pass a decimal setting that
    comes from an environment variable (it fails with "Decimal is not JSON serializable").
    """
    if not MELTANO.exists():
        pytest.skip("run scripts/setup.sh first (no .venv/bin/meltano)")
    report_path = tmp_path / "report.json"
    rejects_path = tmp_path / "rejects.jsonl"
    base_env = {
        **os.environ,
        "MELTANO_ENVIRONMENT": "sandbox",
        "MELTANO_DATABASE_URI": f"sqlite:///{tmp_path / 'meltano.db'}",
        "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
        "TAP_AMPLITUDE_COHORT_API_URL": sandbox.amplitude_url,
        "TARGET_SENDGRID_CONTACTS_API_URL": sandbox.sendgrid_url,
        "TARGET_SENDGRID_CONTACTS_REPORT_PATH": str(report_path),
        "TARGET_SENDGRID_CONTACTS_REJECTS_PATH": str(rejects_path),
        "TARGET_JSONL_DESTINATION_PATH": str(tmp_path / "jsonl"),
    }

    def run(
        *args: str, env: dict[str, str] | None = None, timeout: float = 240, patched: bool = False
    ) -> MeltanoResult:
        report_path.unlink(missing_ok=True)
        rejects_path.unlink(missing_ok=True)
        # patched: Meltano's CLI with its `config test` ProcessLookupError bug worked around.
        command = [str(PYTHON), str(PATCHED)] if patched else [str(MELTANO)]
        proc = subprocess.run(
            [*command, *args],
            cwd=ROOT,
            env={**base_env, **(env or {})},
            capture_output=True,
            stdin=subprocess.DEVNULL,
            text=True,
            timeout=timeout,
            check=False,
        )
        report = json.loads(report_path.read_text()) if report_path.exists() else {}
        rejects = (
            [json.loads(line) for line in rejects_path.read_text().splitlines() if line]
            if rejects_path.exists()
            else []
        )
        return MeltanoResult(proc.returncode, proc.stdout, proc.stderr, report, rejects)

    return run

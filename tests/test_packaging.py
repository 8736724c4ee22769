"""Each plugin runs as ``python -m`` and ships its type information (``py.typed``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = [
    ("tap-amplitude-cohort", "tap_amplitude_cohort"),
    ("target-sendgrid-contacts", "target_sendgrid_contacts"),
]


@pytest.mark.parametrize(("name", "package"), PACKAGES)
def test_python_m_runs_the_plugin_cli(name, package):
    done = subprocess.run(
        [sys.executable, "-m", package, "--version"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"{name} v")


@pytest.mark.parametrize(("name", "package"), PACKAGES)
def test_the_package_is_marked_typed(name, package):
    assert (ROOT / name / package / "py.typed").is_file()

"""`benchmarks/end_to_end.py` runs every row at a tiny size and prints one table (no timings)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

ROOT = Path(__file__).resolve().parents[2]


def test_the_benchmark_prints_a_row_for_everything_it_measures():
    if not (ROOT / ".venv" / "bin" / "meltano").exists():
        pytest.skip("run scripts/setup.sh first (no .venv/bin/meltano)")
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "end_to_end.py"),
         "--members", "2000", "--latency", "0.3"],
        cwd=ROOT, capture_output=True, text=True, timeout=280, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.split()[:2] == ["latency", "row"])
    table = []
    for line in lines[header + 2 :]:
        if not line.startswith(" "):  # "notes:" or "goals ...": the table has ended
            break
        table.append(line.split())
    rows = {cells[1]: cells for cells in table}
    assert set(rows) == {"floor", "bare", "record", "batch", "churn", "rerun"}
    # Whole-number counts where the sandbox saw the work: every member read once by bare and
    # by the first syncs, nothing downloaded by the unchanged rerun.
    downloads = lines[header].split().index("downloads")
    assert rows["bare"][downloads] == rows["record"][downloads] == "1"
    assert rows["rerun"][downloads] == "0"
    assert "failed" not in proc.stdout
    batch = rows["batch"]
    assert batch[2] != "-" or "batch at 0.3: n/a (target does not read BATCH)" in proc.stdout

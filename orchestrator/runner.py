"""Run one Meltano job as a subprocess, keeping its log and its own report file (no Dagster)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from orchestrator.project import CadenceGroup

_TAIL_LINES = 200
_STOP_SECONDS = 120  # how long a terminated run may take to stop before it is killed
# Lines kept whatever the log's length: they carry the run's figures and failure sentence.
_KEEP = ("export requested", "cohort(s) failed", "THE RUN STOPPED")


@dataclass
class MeltanoRun:
    """What one ``meltano run`` did."""

    command: list[str]
    returncode: int
    lines: list[str]  # the kept lines and the log's tail
    report: dict | None
    run_dir: Path


def meltano_executable(project_root: Path) -> str:
    """Find Meltano: ``$MELTANO_EXECUTABLE``, the project's ``.venv``, or ``meltano`` on PATH.

    Raises:
        FileNotFoundError: When none is found.
    """
    candidates = [os.environ.get("MELTANO_EXECUTABLE"), str(project_root / ".venv/bin/meltano")]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return candidate
    found = shutil.which("meltano")
    if found:
        return found
    msg = "meltano not found: set MELTANO_EXECUTABLE or run scripts/setup.sh"
    raise FileNotFoundError(msg)


def _env_name(plugin: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in plugin).upper()


def run_env(group: CadenceGroup, run_dir: Path, base: Mapping[str, str]) -> dict[str, str]:
    """The subprocess environment: the schedule's ``env``, then this run's own report files.

    Each run writes ``report.json`` and ``rejects.jsonl`` in its own folder, so groups running
    at once never overwrite each other's report. Both the loader's namespace variable and its
    name variable are set: an inherited loader with its own ``report_path`` still follows.
    """
    env = {**base, **group.schedule_env}
    env.pop("MELTANO_JOB_NAME", None)  # set by an outer meltano; not this run's
    for block in group.blocks:
        for prefix in {"TARGET_SENDGRID_CONTACTS", _env_name(block.loader)}:
            env[f"{prefix}_REPORT_PATH"] = str(run_dir / "report.json")
            env[f"{prefix}_REJECTS_PATH"] = str(run_dir / "rejects.jsonl")
    return env


def run_job(
    group: CadenceGroup,
    *,
    project_root: Path,
    environment: str,
    run_dir: Path,
    on_line: Callable[[str], None] | None = None,
    base_env: Mapping[str, str] | None = None,
) -> MeltanoRun:
    """Run ``meltano --environment=ENV run JOB``.

    Never with ``--force``: Meltano then refuses a second run of the same state id while one is
    still running, a last guard behind the schedules' skip and the run queue.

    Args:
        group: The job to run.
        project_root: The Meltano project folder.
        environment: The Meltano environment.
        run_dir: Folder for this run's ``meltano.log``, ``report.json`` and ``rejects.jsonl``.
        on_line: Called with each output line (e.g. to echo it into Dagster's captured stderr).
        base_env: Environment to start from (default: this process's).

    Returns:
        The exit status, the kept log lines and the target's report (None when it wrote none).
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    report_path = run_dir / "report.json"
    report_path.unlink(missing_ok=True)
    command = [meltano_executable(project_root), f"--environment={environment}", "run", group.job]
    env = run_env(group, run_dir, os.environ if base_env is None else base_env)
    kept: list[str] = []
    tail: deque[str] = deque(maxlen=_TAIL_LINES)
    with (
        (run_dir / "meltano.log").open("w", encoding="utf-8") as log,
        subprocess.Popen(
            command,
            cwd=project_root,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
        ) as proc,
    ):
        assert proc.stdout is not None
        try:
            for line in proc.stdout:
                log.write(line)
                text = line.rstrip("\n")
                tail.append(text)
                if any(marker in text for marker in _KEEP):
                    kept.append(text)
                if on_line is not None:
                    on_line(text)
        except BaseException:
            # The run was terminated (Dagster raises in the op): let Meltano stop its plugins
            # as it does on SIGTERM (the target drains; no STATE past what SendGrid holds).
            _stop(proc)
            raise
        returncode = proc.wait()
    report = None
    if report_path.exists():
        try:
            report = json.loads(report_path.read_text(encoding="utf-8"))
        except ValueError:
            report = None
    lines = kept + [line for line in tail if line not in kept]
    return MeltanoRun(command, returncode, lines, report, run_dir)


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=_STOP_SECONDS)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def echo(line: str) -> None:
    """Write one line to stderr (Dagster captures it in the run's compute log)."""
    sys.stderr.write(line + "\n")
    sys.stderr.flush()

"""Scale-out example: 20 cohorts in 4 cadence groups, run one after another, then all at once.

Everything runs against a local sandbox of both APIs on free 127.0.0.1 ports. The script writes
a throw-away Meltano project beside this one (its meltano.yml plus a generated cadence file of 4
groups, sharing this project's installed plugins), builds the Dagster jobs from it with
orchestrator/definitions.py, and executes them headless: first serially, then the 4 groups in
parallel worker processes (each job runs its own `meltano run`). It prints both wall times and
checks every list against its cohort. Figures only: nothing here decides a test.

    .venv/bin/python scripts/scale_out.py [--members 2000] [--groups 4] [--cohorts 20]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import requests
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dagster import DagsterInstance  # noqa: E402

from orchestrator.definitions import build_definitions  # noqa: E402
from orchestrator.project import load_project  # noqa: E402
from sandbox import Sandbox, SandboxConfig  # noqa: E402


def _write_project(folder: Path, groups: dict[str, list[str]]) -> None:
    main = yaml.safe_load((ROOT / "meltano.yml").read_text(encoding="utf-8"))
    main["include_paths"] = ["./scale-out.meltano.yml"]
    (folder / "meltano.yml").write_text(yaml.safe_dump(main, sort_keys=False), encoding="utf-8")
    cadences = {
        "plugins": {
            "extractors": [
                {
                    "name": f"tap-amplitude-cohort--{g}",
                    "inherit_from": "tap-amplitude-cohort",
                    "config": {"cohort_ids": ids},
                }
                for g, ids in groups.items()
            ]
        },
        "jobs": [
            {
                "name": f"cohorts-{g}",
                "tasks": [f"tap-amplitude-cohort--{g} target-sendgrid-contacts"],
            }
            for g in groups
        ],
        "schedules": [
            {"name": f"cohorts-{g}", "interval": "@hourly", "job": f"cohorts-{g}"} for g in groups
        ],
    }
    (folder / "scale-out.meltano.yml").write_text(
        yaml.safe_dump(cadences, sort_keys=False), encoding="utf-8"
    )
    # Share this project's installed plugins (inherited extractors use their parent's venv).
    for name in (".meltano", "tap-amplitude-cohort", "target-sendgrid-contacts"):
        (folder / name).symlink_to(ROOT / name)


def _lists_right(sb: Sandbox, cohorts: list[str]) -> int:
    lists = requests.get(f"{sb.sendgrid_url}/_sandbox/lists", timeout=10).json()
    right = 0
    for item in lists:
        cohort_id = item["name"].rsplit(": ", 1)[-1]
        members = requests.get(
            f"{sb.sendgrid_url}/_sandbox/lists/{item['id']}/members", timeout=60
        ).json()
        if cohort_id in cohorts and {m["email"] for m in members} == sb.generator.expected_emails(
            cohort_id
        ):
            right += 1
    return right


def _execute(project_dir: str, job: str, home: str) -> bool:
    """Run one group's Dagster job in this (worker) process.

    Dagster's in-process execution is not thread-safe: each job gets a process, as Dagster's own
    executors and run launchers do.
    """
    defs = build_definitions(load_project(Path(project_dir), "sandbox"), "sandbox")
    with DagsterInstance.from_config(home) as instance:
        return (
            defs.resolve_job_def(job)
            .execute_in_process(instance=instance, raise_on_error=False)
            .success
        )


def _round(
    sb: Sandbox, project_dir: Path, jobs: list[str], work: Path, name: str, *, parallel: bool
) -> float:
    sb.reset()
    os.environ["MELTANO_DATABASE_URI"] = f"sqlite:///{work / f'{name}.db'}"
    os.environ["ORCHESTRATOR_RUNS_DIR"] = str(work / f"runs-{name}")
    home = work / f"dagster-{name}"
    home.mkdir()
    shutil.copy(ROOT / "orchestrator" / "dagster_home" / "dagster.yaml", home)
    os.environ["DAGSTER_HOME"] = str(home)
    with DagsterInstance.from_config(str(home)) as instance:
        instance.get_run_records()  # create the run database before the workers share it
    # Likewise Meltano's system database: two first runs migrating one new file at once fail.
    subprocess.run(
        [os.environ["MELTANO_EXECUTABLE"], "state", "list"],
        cwd=project_dir,
        capture_output=True,
        check=True,
    )
    workers = len(jobs) if parallel else 1
    started = time.monotonic()
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
        results = list(
            pool.map(_execute, [str(project_dir)] * len(jobs), jobs, [str(home)] * len(jobs))
        )
    seconds = time.monotonic() - started
    print(
        f"{name:>8}: {seconds:6.1f} s wall for {len(jobs)} groups ({sum(results)} succeeded)",
        flush=True,
    )
    return seconds


def main() -> int:
    """Run the example; returns the exit code (1 when a list ends wrong)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cohorts", type=int, default=20)
    parser.add_argument("--groups", type=int, default=4)
    parser.add_argument("--members", type=int, default=2000, help="members per cohort")
    parser.add_argument(
        "--job-seconds",
        type=float,
        default=1.0,
        help="how long each SendGrid import/export job stays pending (waits are "
        "what parallel groups overlap; real jobs take seconds to minutes)",
    )
    parser.add_argument(
        "--log",
        type=Path,
        default=ROOT / "output" / "scale-out.log",
        help="where Meltano's and Dagster's own output goes",
    )
    args = parser.parse_args()
    args.log.parent.mkdir(parents=True, exist_ok=True)
    print(f"(Meltano's and Dagster's output: {args.log})", flush=True)
    with args.log.open("w", encoding="utf-8") as log:
        os.dup2(log.fileno(), 2)  # the runs' output (stderr) goes to the log, figures to stdout
    sys.stderr = os.fdopen(2, "w", buffering=1)
    cohorts = [f"scale{n:02d}" for n in range(1, args.cohorts + 1)]
    groups = {f"g{g + 1}": cohorts[g :: args.groups] for g in range(args.groups)}
    specs = [{"id": c, "name": f"Scale-out cohort {c}", "size": args.members} for c in cohorts]
    sb = Sandbox(
        SandboxConfig(
            extra_cohorts=specs,
            export_polls_before_ready=2,
            import_delay_seconds=args.job_seconds,
            export_delay_seconds=args.job_seconds,
            removal_delay_seconds=args.job_seconds / 2,
        )
    ).start()
    with sb, tempfile.TemporaryDirectory(prefix="scale-out-", dir=args.log.parent) as tmp:
        work = Path(tmp)
        project_dir = work / "project"
        project_dir.mkdir()
        _write_project(project_dir, groups)
        os.environ.update(
            {
                "MELTANO_EXECUTABLE": str(ROOT / ".venv/bin/meltano"),
                "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
                "TAP_AMPLITUDE_COHORT_API_URL": sb.amplitude_url,
                "TARGET_SENDGRID_CONTACTS_API_URL": sb.sendgrid_url,
            }
        )
        jobs = [f"cohorts_{g}" for g in groups]
        print(
            f"{args.cohorts} cohorts of {args.members} members in {args.groups} groups "
            f"({', '.join(f'{g}: {len(ids)}' for g, ids in groups.items())}); "
            f"SendGrid jobs pending {args.job_seconds} s; {os.cpu_count()} CPU(s)"
        )
        serial = _round(sb, project_dir, jobs, work, "serial", parallel=False)
        right_serial = _lists_right(sb, cohorts)
        peak, watching = [0], threading.Event()

        def watch() -> None:
            while not watching.wait(0.005):
                peak[0] = max(peak[0], sb.amplitude.in_flight)

        threading.Thread(target=watch, daemon=True).start()
        parallel = _round(sb, project_dir, jobs, work, "parallel", parallel=True)
        right_parallel = _lists_right(sb, cohorts)
        print(
            f"lists equal to their cohort: serial {right_serial}/{len(cohorts)}, "
            f"parallel {right_parallel}/{len(cohorts)}"
        )
        print(
            f"parallel / serial wall time: {parallel / serial:.2f} "
            f"(speed-up x{serial / parallel:.2f})"
        )
        refused = sum(
            1 for r in list(sb.requests) if r["service"] == "amplitude" and r["status"] == 429
        )
        print(
            f"most Amplitude requests in flight at once (sampled): {peak[0]} (limit 5); "
            f"429 answers in the parallel round: {refused}"
        )
        watching.set()
        return 0 if right_serial == right_parallel == len(cohorts) else 1


if __name__ == "__main__":
    sys.exit(main())

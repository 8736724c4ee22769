"""Two mirror syncs of a large sandbox cohort with 1% churn between them (prints figures).

The sandbox runs in this process; the target runs as its own process (the installed
``target-sendgrid-contacts`` CLI), so its peak resident memory is measured alone. Per run it
prints wall time, the target's peak RSS, the SendGrid requests by kind, and the report's counts.

    .venv/bin/python benchmarks/mirror_sync.py [--members 200000] [--churn 0.01]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import psutil

from sandbox import Sandbox, SandboxConfig

COHORT = "bench01"
TARGET = Path(sys.executable).with_name("target-sendgrid-contacts")
MEMBERS_SCHEMA = {
    "type": "object",
    "properties": {
        "cohort_id": {"type": "string"},
        "cohort_name": {"type": "string"},
        "amplitude_id": {"type": "integer"},
        "user_properties": {"type": "object", "properties": {
            "email": {"type": ["string", "null"]},
            "first_name": {"type": ["string", "null"]},
            "last_name": {"type": ["string", "null"]},
        }},
    },
}


def write_input(sb: Sandbox, path: Path) -> int:
    name = sb.generator.spec(COHORT).name
    count = 0
    with path.open("w") as out:
        out.write(json.dumps({"type": "SCHEMA", "stream": "cohort_members",
                              "schema": MEMBERS_SCHEMA,
                              "key_properties": ["cohort_id", "amplitude_id"]}) + "\n")
        for m in sb.generator.members(COHORT):
            props = {"email": m["email"], "first_name": m["first_name"],
                     "last_name": m["last_name"]}
            out.write(json.dumps({"type": "RECORD", "stream": "cohort_members", "record": {
                "cohort_id": COHORT, "cohort_name": name, "amplitude_id": m["amplitude_id"],
                "user_properties": props}}) + "\n")
            count += 1
        out.write(json.dumps({"type": "SCHEMA", "stream": "cohort_syncs", "schema": {
            "type": "object", "properties": {"cohort_id": {"type": "string"}}},
            "key_properties": ["cohort_id"]}) + "\n")
        out.write(json.dumps({"type": "RECORD", "stream": "cohort_syncs", "record": {
            "cohort_id": COHORT, "cohort_name": name, "status": "complete",
            "member_count": count, "message": None}}) + "\n")
    return count


def _watch(sb: Sandbox, pid: int, started: float, samples: list) -> None:
    """Sample the target's RSS twice a second, with the SendGrid call it last made."""
    try:
        process = psutil.Process(pid)
        while process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
            last = sb.requests[-1] if sb.requests else {}
            samples.append((time.perf_counter() - started, process.memory_info().rss / 1e6,
                            f"{last.get('method', '')} {last.get('path', '')}"[:80]))
            time.sleep(0.5)
    except psutil.Error:
        pass


def run_target(sb: Sandbox, workdir: Path, label: str) -> None:
    input_path = workdir / "input.jsonl"
    records = write_input(sb, input_path)
    report_path = workdir / f"report-{label}.json"
    config = {
        "api_key": sb.sendgrid_api_key, "api_url": sb.sendgrid_url,
        "email_field": "user_properties.email",
        "first_name_field": "user_properties.first_name",
        "last_name_field": "user_properties.last_name",
        "job_poll_interval_seconds": 0.2, "report_path": str(report_path),
        "rejects_path": str(workdir / f"rejects-{label}.jsonl"),
    }
    config_path = workdir / "config.json"
    config_path.write_text(json.dumps(config))
    before = len(sb.requests)
    started = time.perf_counter()
    samples: list[tuple[float, float, str]] = []  # (seconds, RSS MB, last SendGrid call)
    with input_path.open() as stdin, tempfile.TemporaryFile("w+") as stderr:
        proc = subprocess.Popen([str(TARGET), "--config", str(config_path)], stdin=stdin,
                                stdout=subprocess.DEVNULL, stderr=stderr, text=True)
        watcher = threading.Thread(target=_watch, args=(sb, proc.pid, started, samples))
        watcher.start()
        proc.wait()
        watcher.join()
        stderr.seek(0)
        errors = stderr.read()
    seconds = time.perf_counter() - started
    peak = max(samples, default=(0.0, 0.0, ""), key=lambda s: s[1])
    kinds = Counter(f"{r['method']} {r['path'].split('?')[0].rsplit('/', 1)[0]}"
                    for r in sb.requests[before:])
    print(f"\n{label}: {records:,} records, exit {proc.returncode}, {seconds:.1f} s, "
          f"{records / seconds:,.0f} records/s; target peak RSS {peak[1]:.0f} MB at "
          f"{peak[0]:.0f} s (last SendGrid call then: {peak[2]})")
    if proc.returncode:
        print(errors[-2000:])
    puts = sum(n for k, n in kinds.items() if k.startswith("PUT /v3/marketing"))
    deletes = sum(n for k, n in kinds.items() if k.startswith("DELETE"))
    print(f"  PUT contacts requests {puts}, DELETE list-contacts requests {deletes}, "
          f"all SendGrid requests {sum(kinds.values())}")
    if report_path.exists():
        totals = json.loads(report_path.read_text())["totals"]
        print("  report: " + ", ".join(f"{k} {totals[k]}" for k in (
            "received", "upserted", "unchanged", "rejected", "removed")))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--members", type=int, default=200_000)
    parser.add_argument("--churn", type=float, default=0.01)
    args = parser.parse_args()
    config = SandboxConfig(
        extra_cohorts=[{"id": COHORT, "name": "Mirror benchmark", "size": args.members}],
        import_delay_seconds=0.2, removal_delay_seconds=0.2, export_delay_seconds=0.5,
        validate_requests=False,
    )
    with Sandbox(config).start() as sb, tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        run_target(sb, workdir, "first sync")
        change = int(args.members * args.churn)
        sb.generator.churn(COHORT, remove=change, add=change, rename=change)
        print(f"\nchurn: {change:,} left, {change:,} joined, {change:,} renamed")
        run_target(sb, workdir, "second sync")


if __name__ == "__main__":
    main()

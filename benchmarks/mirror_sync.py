"""Two mirror syncs of a large sandbox cohort with 1% churn between them (prints figures).

The sandbox runs in this process; the target runs as its own process (the installed
``target-sendgrid-contacts`` CLI), so its peak resident memory is measured alone. Per run it
prints wall time, the target's peak RSS, the SendGrid requests by kind, and the report's counts.

    .venv/bin/python benchmarks/mirror_sync.py [--members 200000] [--churn 0.01]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
import time
from collections import Counter
from pathlib import Path

from common import (
    Sandbox,
    add_job_latency_option,
    bench_sandbox,
    cli,
    job_delays,
    run_measured,
    target_config,
    write_lines,
)

from sandbox.singer_input import TARGET_SHAPE, singer_lines

COHORT = "bench01"
TARGET = cli("target-sendgrid-contacts")
# Members carry the contact fields only: the benchmark maps no custom field.
SHAPE = dataclasses.replace(TARGET_SHAPE, property_keys=("email", "first_name", "last_name"))


def _last_call(sb: Sandbox) -> str:
    """The SendGrid call the sandbox received last."""
    last = sb.requests[-1] if sb.requests else {}
    return f"{last.get('method', '')} {last.get('path', '')}"[:80]


def _print_phases(requests: list[dict], started: float, ended: float) -> None:
    """When each kind of SendGrid call first and last reached the sandbox, from the run's start."""
    kinds = {
        "export start": lambda r: r["method"] == "POST" and r["path"].endswith("/exports"),
        "export polls": lambda r: r["method"] == "GET" and "/contacts/exports/" in r["path"],
        "export download": lambda r: "/files/" in r["path"],
        "upserts (PUT)": lambda r: r["method"] == "PUT",
        "job polls": lambda r: r["method"] == "GET" and "/contacts/imports/" in r["path"],
        "removals (DELETE)": lambda r: r["method"] == "DELETE",
    }
    parts = []
    for label, matches in kinds.items():
        times = [r["ts"] - started for r in requests if matches(r)]
        if times:
            parts.append(f"{label} {min(times):.1f}-{max(times):.1f} s")
    print(f"  phases: {'; '.join(parts)}; end {ended - started:.1f} s")


def run_target(sb: Sandbox, workdir: Path, label: str) -> None:
    input_path = workdir / "input.jsonl"
    write_lines(input_path, singer_lines(sb.generator, [COHORT], shape=SHAPE))
    records = sb.generator.size(COHORT)
    report_path = workdir / f"report-{label}.json"
    config = target_config(
        sb,
        job_poll_interval_seconds=0.2,
        report_path=str(report_path),
        rejects_path=str(workdir / f"rejects-{label}.jsonl"),
    )
    config_path = workdir / "config.json"
    config_path.write_text(json.dumps(config))
    before = len(sb.requests)
    started = time.time()
    # RSS twice a second, with the SendGrid call the target made last.
    run = run_measured(
        [str(TARGET), "--config", str(config_path)],
        stdin=input_path,
        interval=0.5,
        note=lambda: _last_call(sb),
    )
    seconds, peak = run.seconds, run.peak
    kinds = Counter(
        f"{r['method']} {r['path'].split('?')[0].rsplit('/', 1)[0]}" for r in sb.requests[before:]
    )
    print(
        f"\n{label}: {records:,} records, exit {run.code}, {seconds:.1f} s, "
        f"{records / seconds:,.0f} records/s; target peak RSS {peak[1] / 1e6:.0f} MB at "
        f"{peak[0]:.0f} s (last SendGrid call then: {peak[2]})"
    )
    if run.code:
        print(run.errors)
    puts = sum(n for k, n in kinds.items() if k.startswith("PUT /v3/marketing"))
    deletes = sum(n for k, n in kinds.items() if k.startswith("DELETE"))
    print(
        f"  PUT contacts requests {puts}, DELETE list-contacts requests {deletes}, "
        f"all SendGrid requests {sum(kinds.values())}"
    )
    _print_phases(sb.requests[before:], started, started + seconds)
    if report_path.exists():
        totals = json.loads(report_path.read_text())["totals"]
        print(
            "  report: "
            + ", ".join(
                f"{k} {totals[k]}"
                for k in ("received", "upserted", "unchanged", "rejected", "removed")
            )
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--members", type=int, default=200_000)
    parser.add_argument("--churn", type=float, default=0.01)
    add_job_latency_option(parser, "0.2 s import and removal, 0.5 s export")
    args = parser.parse_args()
    delays = job_delays(
        args.job_latency,
        import_delay_seconds=0.2,
        removal_delay_seconds=0.2,
        export_delay_seconds=0.5,
    )
    with (
        bench_sandbox(
            COHORT, "Mirror benchmark", args.members, validate_requests=False, **delays
        ) as sb,
        tempfile.TemporaryDirectory() as tmp,
    ):
        workdir = Path(tmp)
        run_target(sb, workdir, "first sync")
        change = int(args.members * args.churn)
        sb.generator.churn(COHORT, remove=change, add=change, rename=change)
        print(f"\nchurn: {change:,} left, {change:,} joined, {change:,} renamed")
        run_target(sb, workdir, "second sync")


if __name__ == "__main__":
    main()

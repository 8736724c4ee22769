"""Throughput and memory of target-sendgrid-contacts alone (prints figures; CI never runs it).

Pre-generates N Singer lines (cohorts, cohort_members, cohort_syncs, as the tap writes them) into
a file, starts a sandbox, then runs the target CLI as a subprocess reading that file:

* dry run (key check and list lookup only; everything else is pure processing), and
* a real run against the sandbox (creates the list, upserts everything, follows the jobs),

and reports records/second (from the target's own report: time from start-up to the end of
the run) plus peak resident memory (RSS, sampled every 20 ms with psutil).

    .venv/bin/python benchmarks/target_throughput.py --records 100000
    .venv/bin/python benchmarks/target_throughput.py --records 2000000 --skip-sandbox-run
    .venv/bin/python benchmarks/target_throughput.py --records 100000 --profile
    .venv/bin/python benchmarks/target_throughput.py --records 100000 --batch --skip-sandbox-run
    .venv/bin/python benchmarks/target_throughput.py --records 200000 --batch --profile \
        --skip-sandbox-run   # profiles the BATCH dry run

Measured on the 2-core sandbox machine (2026-11-26): 100,000 records, dry run ~49,500 rec/s
(target time; ~33,500 rec/s counting interpreter start-up), first sandbox run ~33,500 rec/s,
mirror rerun (list export + compare) ~25,000 rec/s; 2,000,000 records: dry run ~39,000-44,000
rec/s with peak RSS 178 MB, first sandbox run 186 MB, mirror rerun 216 MB. The SDK's own
per-record work (reader, stream maps, timestamp parsing, key checks) is ~14 us of the ~20 us
a record costs in a dry run.

BATCH input (2026-12-01, 200,000 records, dry run, CPU seconds in-process): 3.8 s (52,000
rec/CPU-s) through the SDK's per-record message path, 3.0 s (66,000 rec/CPU-s) with
bulk_records.py; peak RSS of a 2,000,000-record BATCH dry run 203 MB.

Live BATCH first sync into the sandbox (2026-12-01, two custom fields created by the run, target
CPU seconds from wait4, the machine shared with other suites, old and new run alternately):
400,000 records 13.1-14.7 s before the record-path cuts (33-37 us a record), 8.0-8.2 s after
(~20 us), peak RSS 217 -> 170 MB; 2,000,000 records 36.9 s (18.5 us a record), peak RSS 261 MB.
The cuts: no per-contact copy for field ids, one msgspec call per body and per spilled part,
lines decoded a chunk at a time, the SDK's no-op record hooks skipped, a young-generation GC
threshold of 10,000 while a file is taken in (GC was ~25 % of the CPU), parts set aside when sent.

Second round (2026-12-01, the same BATCH first sync with the two custom fields existing before
the run, target CPU seconds from wait4, e35c33c and the new code alternately on the shared
machine; ~0.9 CPU-s of every run is start-up): 400,000 records 7.6-9.3 s -> 5.5-6.9 s; dry run
6.9-7.3 s -> 5.9-6.3 s; 2,000,000 records 39.9-42.5 s (20-21 us a record) -> 28.6-31.7 s
(14.3-15.9 us; 28.8 against 42.5 in one back-to-back pair), peak RSS 256-265 -> 232-255 MB; the
2,000,000-record dry run 23.4 s (11.7 us). The cuts: batch lines decoded 32 KB at a time (the
records still in the CPU cache) as one array without a bytes object a line, and chained on; the
collector kept off records (gc.freeze at both ends of a file); de-duplication storing what names
a kept record as msgpack data, made into text only for a repeat, its probing one call a batch;
spilled parts stored as their request body plus names, not re-encoded; no with_ids call when
fields are keyed by id; mapped values read in one C-level pass over user_properties; keys by a
dict display; Items by tuple.__new__; SDK tallies in bulk; one call less a record to the intake.
"""

from __future__ import annotations

import argparse
import cProfile
import gzip
import io
import json
import pstats
import tempfile
import time
from pathlib import Path
from typing import TextIO

from common import (
    add_job_latency_option,
    bench_sandbox,
    cli,
    job_delays,
    run_measured,
    target_config,
    write_lines,
)

from sandbox.singer_input import singer_lines

COHORT = "bench1"
TARGET = cli("target-sendgrid-contacts")


def write_input(generator: object, path: Path, records: int) -> None:
    """Write the Singer lines the tap would emit for the benchmark cohort."""
    started = time.monotonic()
    write_lines(path, singer_lines(generator, [COHORT]))
    print(
        f"generated {records:,} records in {time.monotonic() - started:.1f} s "
        f"({path.stat().st_size / 1e6:.0f} MB)"
    )


def write_batch_input(input_path: Path, workdir: Path, batch_size: int = 10_000) -> Path:
    """The same input as SDK BATCH messages (gzip jsonl files of batch_size records).

    The target deletes the files once read, so this is called before every run.
    """
    out_path = workdir / "input.batch.singer"
    files = workdir / "batches"
    files.mkdir(exist_ok=True)
    pending: dict[str, list[str]] = {}
    counter = 0

    def flush(stream: str, out: TextIO) -> None:
        nonlocal counter
        rows = pending.pop(stream, [])
        if not rows:
            return
        counter += 1
        path = files / f"{stream}-{counter}.json.gz"
        with gzip.open(path, "wt", compresslevel=1) as gz:
            gz.write("\n".join(rows) + "\n")
        out.write(
            json.dumps(
                {
                    "type": "BATCH",
                    "stream": stream,
                    "encoding": {"format": "jsonl", "compression": "gzip"},
                    "manifest": [path.as_uri()],
                }
            )
            + "\n"
        )

    with input_path.open() as lines, out_path.open("w") as out:
        for line in lines:
            message = json.loads(line)
            if message["type"] != "RECORD":
                for stream in list(pending):
                    flush(stream, out)
                out.write(line)
                continue
            rows = pending.setdefault(message["stream"], [])
            rows.append(json.dumps(message["record"]))
            if len(rows) >= batch_size:
                flush(message["stream"], out)
        for stream in list(pending):
            flush(stream, out)
    return out_path


def run_target(config: dict, input_path: Path, workdir: Path, label: str) -> dict:
    """Run the CLI on the input file; return its report with wall time and peak RSS added."""
    config_path = workdir / f"{label}.config.json"
    report_path = workdir / f"{label}.report.json"
    config_path.write_text(json.dumps({**config, "report_path": str(report_path)}))
    run = run_measured(
        [str(TARGET), "--config", str(config_path), "--input", str(input_path)],
        interval=0.02,
        log=workdir / f"{label}.log",
    )
    if run.code != 0:
        print(f"{label}: exit code {run.code}; see {workdir / (label + '.log')}")
    report = json.loads(report_path.read_text()) if report_path.exists() else {}
    report["wall_seconds"] = run.seconds
    report["peak_rss_mb"] = run.peak_rss / 1e6
    return report


def show(label: str, report: dict, records: int) -> None:
    totals = report.get("totals", {})
    seconds = report.get("seconds") or float("nan")
    wall = report["wall_seconds"]
    print(
        f"{label:<28} {records:>10,} records  target {seconds:7.2f} s  "
        f"{records / seconds:>9,.0f} rec/s  (process wall {wall:.2f} s, "
        f"{records / wall:,.0f} rec/s)  peak RSS {report['peak_rss_mb']:.0f} MB  "
        f"upserted {totals.get('upserted')} rejected {totals.get('rejected')} "
        f"api_calls {report.get('api_calls')}"
    )


def profile_in_process(config: dict, input_path: Path) -> None:
    """Profile pure processing (dry run, upsert mode: no list export) and print the top."""
    from target_sendgrid_contacts.target import TargetSendGridContacts

    target = TargetSendGridContacts(config=config)
    profiler = cProfile.Profile()
    with input_path.open() as lines:
        profiler.enable()
        target.listen(lines)
        profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(18)
    print(out.getvalue())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument(
        "--skip-sandbox-run",
        action="store_true",
        help="only the dry run (e.g. for the 2,000,000-record memory figure)",
    )
    parser.add_argument("--profile", action="store_true", help="also profile a dry run in-process")
    parser.add_argument(
        "--batch", action="store_true", help="also a dry run on the same records as SDK BATCH files"
    )
    add_job_latency_option(parser, "0.05 s")
    args = parser.parse_args()
    delays = job_delays(args.job_latency, import_delay_seconds=0.05, export_delay_seconds=0.05)

    with (
        bench_sandbox(
            COHORT, "Benchmark cohort", args.records, validate_requests=False, **delays
        ) as sb,
        tempfile.TemporaryDirectory(prefix="target-bench-") as tmp,
    ):
        workdir = Path(tmp)
        input_path = workdir / "input.singer"
        write_input(sb.generator, input_path, args.records)
        base = target_config(sb, job_poll_interval_seconds=0.05)
        show(
            "dry run (pure processing)",
            run_target({**base, "dry_run": True}, input_path, workdir, "dry"),
            args.records,
        )
        if args.batch:
            batch_input = write_batch_input(input_path, workdir)
            show(
                "dry run, BATCH input",
                run_target({**base, "dry_run": True}, batch_input, workdir, "dry-batch"),
                args.records,
            )
        if not args.skip_sandbox_run:
            show("sandbox, first run", run_target(base, input_path, workdir, "first"), args.records)
            show(
                "sandbox, rerun (unchanged)",
                run_target(base, input_path, workdir, "rerun"),
                args.records,
            )
        if args.profile:
            # With --batch the BATCH path is profiled (its files were consumed: written anew).
            profiled = write_batch_input(input_path, workdir) if args.batch else input_path
            profile_in_process({**base, "dry_run": True, "sync_mode": "upsert"}, profiled)


if __name__ == "__main__":
    main()

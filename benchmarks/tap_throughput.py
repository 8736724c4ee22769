"""Throughput and memory of tap-amplitude-cohort alone, against a sandbox extra cohort.

Prints members/second of the tap process writing Singer messages to /dev/null, and the tap's
peak RSS. The export file is rendered once before timing and served from the sandbox storage
(through Amplitude's 302), so the figures are the tap's, not the sandbox's CSV generator's.

    .venv/bin/python benchmarks/tap_throughput.py                    # 200,000 members
    .venv/bin/python benchmarks/tap_throughput.py --members 2000000  # the Amplitude maximum
    .venv/bin/python benchmarks/tap_throughput.py --profile          # cProfile of an in-process run
    .venv/bin/python benchmarks/tap_throughput.py --batch            # RECORD, then BATCH files

With ``--batch`` the same export is read twice: as RECORD messages, then with the SDK's standard
``batch_config`` (jsonl, gzip, a private temporary folder) as BATCH messages and files; the
files are deleted after each run, as the target would.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from common import ROOT, Sandbox, bench_sandbox, cli, run_measured

COHORT = "bench1"


def serve_prerendered(sb: Sandbox, members: int, workdir: Path) -> Path:
    """Render the export once to disk and make /file redirect to it."""
    from sandbox.amplitude import ExportJob
    from sandbox.generator import PROPERTY_KEYS

    job = ExportJob(
        request_id="bench",
        cohort_id=COHORT,
        churn=sb.generator.churns[COHORT],
        columns=list(PROPERTY_KEYS),
    )
    path = workdir / "bench.csv.gz"
    started = time.perf_counter()
    with path.open("wb") as out:
        for chunk in sb.amplitude.export_chunks(job):
            out.write(chunk)
    print(
        f"rendered {members:,} members to {path.stat().st_size / 1e6:.1f} MB gzip "
        f"in {time.perf_counter() - started:.1f} s (not timed below)"
    )

    def body() -> Iterator[bytes]:
        with path.open("rb") as src:
            while chunk := src.read(1 << 16):
                yield chunk

    url = sb.storage.put(body, content_type="text/csv", name="bench.csv.gz")
    sb.faults.add(
        "amplitude", "GET", r"/request/\w+/file$", times=None, status=302, headers={"Location": url}
    )
    return path


def run_tap_process(config_path: Path) -> tuple[float, float, int, int]:
    """Run the tap CLI to /dev/null; return (wall s, CPU s, peak RSS bytes, exit code)."""
    run = run_measured(
        [str(cli("tap-amplitude-cohort")), "--config", str(config_path)], interval=0.05
    )
    if run.code:
        print(run.errors)
    return run.seconds, run.cpu_seconds, run.peak_rss, run.code


def batch_config(folder: Path, batch_size: int) -> dict:
    """The SDK's standard batch config: gzip JSON lines in a local folder."""
    return {
        "encoding": {"format": "jsonl", "compression": "gzip"},
        "storage": {"root": folder.as_uri(), "prefix": "bench-"},
        "batch_size": batch_size,
    }


def report(
    label: str, members: int, *, elapsed: float, cpu: float, peak: int, base: float, base_cpu: float
) -> None:
    print(f"--- {label}")
    print(f"wall time:          {elapsed:.2f} s (start-up {base:.2f} s)")
    print(f"members/second:     {members / elapsed:,.0f} (whole process)")
    net = members / max(elapsed - base, 1e-9)
    print(f"members/second:     {net:,.0f} (excluding start-up)")
    print(f"CPU time of tap:    {cpu:.2f} s (start-up {base_cpu:.2f} s)")
    print(f"members/CPU-second: {members / max(cpu - base_cpu, 1e-9):,.0f}")
    print(f"peak RSS of tap:    {peak / 2**20:.0f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=200_000)
    parser.add_argument("--profile", action="store_true", help="also profile an in-process run")
    parser.add_argument(
        "--batch", action="store_true", help="also run with batch_config (BATCH messages and files)"
    )
    parser.add_argument("--batch-size", type=int, default=50_000, help="records per batch file")
    args = parser.parse_args()

    with (
        bench_sandbox(COHORT, "Benchmark cohort", args.members, export_polls_before_ready=0) as sb,
        tempfile.TemporaryDirectory() as tmp,
    ):
        workdir = Path(tmp)
        serve_prerendered(sb, args.members, workdir)
        config = {
            "api_url": sb.amplitude_url,
            "api_key": sb.amplitude_api_key,
            "secret_key": sb.amplitude_secret_key,
            "cohort_ids": [COHORT],
            "poll_interval_seconds": 0.01,
        }
        config_path = workdir / "config.json"
        config_path.write_text(json.dumps(config))

        # Start-up cost (imports, discovery, cohort list) measured on an empty run.
        empty = {**config, "cohort_ids": []}
        (workdir / "empty.json").write_text(json.dumps(empty))
        base, base_cpu, _, _ = run_tap_process(workdir / "empty.json")

        elapsed, cpu, peak, code = run_tap_process(config_path)
        print(f"tap exit code {code}")
        print(f"members:            {args.members:,}")
        report(
            "RECORD messages",
            args.members,
            elapsed=elapsed,
            cpu=cpu,
            peak=peak,
            base=base,
            base_cpu=base_cpu,
        )

        if args.batch:
            folder = workdir / "batches"  # created 0700 by the tap
            batched = {**config, "batch_config": batch_config(folder, args.batch_size)}
            (workdir / "batch.json").write_text(json.dumps(batched))
            elapsed, cpu, peak, code = run_tap_process(workdir / "batch.json")
            files = sorted(folder.iterdir()) if folder.exists() else []
            size = sum(f.stat().st_size for f in files)
            print(f"tap exit code {code}; {len(files)} batch file(s), {size / 1e6:.1f} MB")
            report(
                "BATCH messages (gzip JSON lines)",
                args.members,
                elapsed=elapsed,
                cpu=cpu,
                peak=peak,
                base=base,
                base_cpu=base_cpu,
            )
            for file in files:
                file.unlink()

        if args.profile:
            profile(config)
            if args.batch:
                profile({**config, "batch_config": batch_config(workdir / "p", args.batch_size)})


def profile(config: dict) -> None:
    """Profile an in-process run (stdout to /dev/null) and print the top functions."""
    sys.path.insert(0, str(ROOT / "tap-amplitude-cohort"))
    from tap_amplitude_cohort.tap import TapAmplitudeCohort

    profiler = cProfile.Profile()
    real_stdout = sys.stdout
    with open(os.devnull, "w") as sink:
        sys.stdout = sink
        try:
            tap = TapAmplitudeCohort(config=config)
            profiler.enable()
            tap.sync_all()
            profiler.disable()
        finally:
            sys.stdout = real_stdout
    stats = pstats.Stats(profiler)
    stats.sort_stats("tottime").print_stats(18)


if __name__ == "__main__":
    main()

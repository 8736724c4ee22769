"""First-sync wall time of the target at a given SendGrid job latency (prints figures; not CI).

Import jobs in the sandbox stay ``pending`` for ``--delays`` seconds; the target is run as a
subprocess on pre-generated Singer lines (a first sync: the list is new, everything is sent).
``--pythonpath`` runs another copy of the target package (e.g. the code before a change):

    .venv/bin/python benchmarks/upsert_pipeline.py --records 200000 --delays 2 15
    .venv/bin/python benchmarks/upsert_pipeline.py --records 200000 --pythonpath /tmp/old/src
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

from common import bench_sandbox, cli, run_measured, target_config, write_lines

from sandbox.singer_input import singer_lines

COHORT = "bench1"
NAME = "Benchmark cohort"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--delays", type=float, nargs="+", default=[2.0, 15.0])
    parser.add_argument("--pythonpath", help="directory holding another target_sendgrid_contacts")
    parser.add_argument("--settings", default="{}", help="extra target settings (JSON)")
    args = parser.parse_args()
    if args.pythonpath:
        os.environ["PYTHONPATH"] = args.pythonpath  # the target subprocess imports that copy
    with tempfile.TemporaryDirectory(prefix="upsert-bench-") as tmp:
        workdir = Path(tmp)
        input_path = workdir / "input.singer"
        with bench_sandbox(COHORT, NAME, args.records, validate_requests=False) as sb:
            write_lines(input_path, singer_lines(sb.generator, [COHORT]))
        for delay in args.delays:
            with bench_sandbox(
                COHORT, NAME, args.records, validate_requests=False, import_delay_seconds=delay
            ) as sb:
                report_path = workdir / "report.json"
                config = target_config(
                    sb, report_path=str(report_path), **json.loads(args.settings)
                )
                config_path = workdir / "config.json"
                config_path.write_text(json.dumps(config))
                run = run_measured(
                    [
                        str(cli("target-sendgrid-contacts")),
                        "--config",
                        str(config_path),
                        "--input",
                        str(input_path),
                    ],
                    interval=0.05,
                    log=workdir / "target.log",
                )
                report = json.loads(report_path.read_text()) if report_path.exists() else {}
                puts = sum(1 for r in list(sb.requests) if r["method"] == "PUT")
                totals = report.get("totals", {})
                print(
                    f"{args.records:>10,} records  job latency {delay:5.1f} s  "
                    f"wall {run.seconds:8.1f} s  {args.records / run.seconds:>8,.0f} rec/s  "
                    f"target CPU {run.cpu_seconds:6.1f} s  "
                    f"peak RSS {run.peak_rss / 1e6:4.0f} MB  PUTs {puts}  "
                    f"upserted {totals.get('upserted')}  exit {run.code}",
                    flush=True,
                )
                if run.code:
                    print(run.errors)


if __name__ == "__main__":
    main()

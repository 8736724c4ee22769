"""End to end: `meltano run` beside a bare script and Meltano's own floor, at several job latencies.

One invocation; prints one table. For each job latency (how long every SendGrid import, removal
and export job stays pending), on a cohort of --members members with email, names, two custom
properties (plan, company) and the demo's messiness (missing, invalid, duplicate, mixed-case
emails):

    bare     benchmarks/bare_sync.py: stream the gzip CSV, normalise, validate, dedupe, PUT
             bodies of <= 30,000 contacts, follow all jobs at the end (the least work possible)
    floor    `meltano run tap-trivial target-trivial` (benchmarks/meltano_floor): Meltano
             forwarding as many RECORD lines from a tap that does nothing (once, any latency)
    record   `meltano run tap-amplitude-cohort target-sendgrid-contacts`, first sync
    batch    `meltano run tap-amplitude-cohort--batch target-sendgrid-contacts`, first sync
    churn    the same run again after 1 % churn (0.4 % leave, 0.4 % join, 0.2 % renamed)
    rerun    the same run again, nothing changed (zero downloads, zero upserts expected)

Each first sync starts from an empty SendGrid and a fresh Meltano system database; churn and
rerun follow the batch sync (the record sync when batch is not available). Each row runs with
only its own sandbox alive (the batch lineage first, the record sync last), and what earlier
rows left in this process is kept out of its garbage collector's reach. cpu_s is the user +
system time of the whole process tree (Meltano, tap, target; or the bare script), which other
work on the machine disturbs less than wall time. The export files
are rendered once beforehand and served from the sandbox's storage, and the sandbox skips its
OpenAPI checks, so the sandbox's own CPU seconds (its column) stay small. Peak RSS is sampled
with psutil every 0.1 s over the child processes of `meltano` (the bare script is one process:
its RSS is in the tap column). Never part of CI.

    .venv/bin/python benchmarks/end_to_end.py                      # 2,000,000 members, 2 s and 30 s
    .venv/bin/python benchmarks/end_to_end.py --members 200000 --latency 2
    .venv/bin/python benchmarks/end_to_end.py --members 20000 --latency 0.3 --only bare,batch
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil
from common import ROOT, Sandbox, SandboxConfig, cli

COHORT = "e2e"
COHORT_NAME = "End-to-end benchmark"
ROWS = ("bare", "floor", "record", "batch", "churn", "rerun")
CUSTOM_FIELDS = {"plan": "user_properties.plan", "company": "user_properties.company"}
CHURN = {"remove": 0.004, "add": 0.004, "rename": 0.002}
FLOOR_PROJECT = ROOT / "benchmarks" / "meltano_floor"
BATCH_FOLDER = ROOT / ".meltano" / "batches" / "amplitude-to-sendgrid"  # meltano.yml's root
ROLES = {  # cmdline fragment -> RSS column
    "tap-amplitude-cohort": "tap", "trivial_tap.py": "tap", "bare_sync.py": "tap",
    "target-sendgrid-contacts": "target", "trivial_target.py": "target",
}  # fmt: skip


@dataclass
class Row:
    """One line of the table."""

    latency: float | None
    name: str
    seconds: float | None = None
    members: int = 0
    rss: dict[str, int] = field(default_factory=dict)
    upserts: int | None = None
    contacts: int | None = None
    downloads: int | None = None
    sandbox_cpu: float | None = None
    cpu: float | None = None  # user + system seconds of the whole process tree
    note: str = ""


@dataclass
class Run:
    """A measured process tree."""

    code: int
    seconds: float
    rss: dict[str, int]
    log: str
    cpu: float


def run_tree(argv: list[str], *, cwd: Path, env: dict[str, str], log: Path) -> Run:
    """Run a command, sampling the peak RSS of its tap and target (any depth) every 0.1 s."""
    peaks: dict[str, int] = {}
    done = threading.Event()

    def sample(root: psutil.Process) -> None:
        while not done.is_set():
            try:
                tree = [root, *root.children(recursive=True)]
            except psutil.Error:
                return
            for process in tree:
                try:
                    cmdline = " ".join(process.cmdline())
                    if "bin/meltano" in cmdline:  # Meltano itself names the plugins it runs
                        continue
                    role = next((r for frag, r in ROLES.items() if frag in cmdline), None)
                    if role:
                        peaks[role] = max(peaks.get(role, 0), process.memory_info().rss)
                except psutil.Error:
                    continue
            time.sleep(0.1)

    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    with log.open("w+b") as out:
        started = time.perf_counter()
        proc = subprocess.Popen(
            argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT
        )
        sampler = threading.Thread(target=sample, args=(psutil.Process(proc.pid),), daemon=True)
        sampler.start()
        code = proc.wait()
        seconds = time.perf_counter() - started
        done.set()
        sampler.join()
        out.seek(0)
        text = out.read().decode(errors="replace")
    # Meltano waits for its plugins, so their CPU time is in its children's, and so in ours.
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - children.ru_utime) + (after.ru_stime - children.ru_stime)
    return Run(code, seconds, peaks, text, cpu)


class Bench:
    """Sandboxes, rendered exports and the measured rows of one invocation."""

    def __init__(self, members: int, workdir: Path) -> None:
        self.members = members
        self.workdir = workdir
        self.rows: list[Row] = []
        self._files: dict[str, Path] = {}

    # ----- sandboxes and their exports ---------------------------------------------------

    def sandbox(self, latency: float) -> Sandbox:
        """A fresh sandbox: empty SendGrid, the two custom fields, the export pre-rendered."""
        config = SandboxConfig(
            extra_cohorts=[{"id": COHORT, "name": COHORT_NAME, "size": self.members}],
            export_polls_before_ready=0,
            import_delay_seconds=latency,
            removal_delay_seconds=latency,
            export_delay_seconds=latency,
            validate_requests=False,  # the tests check requests; here its CPU would blur
            storage_url_ttl_seconds=10**9,
        )
        sb = Sandbox(config).start()
        for name in CUSTOM_FIELDS:
            sb.sendgrid_app.state.create_field(name, "Text", usable_now=True)
        self.serve_export(sb)
        return sb

    def serve_export(self, sb: Sandbox) -> None:
        """Redirect every cohort file download to the export as the cohort is now, on disk."""
        from sandbox.amplitude import ExportJob
        from sandbox.generator import PROPERTY_KEYS

        churn = sb.generator.churns[COHORT]
        key = f"r{churn.recomputations}"
        if key not in self._files:  # deterministic from the seed: render once, reuse
            path = self.workdir / f"{COHORT}-{key}.csv.gz"
            job = ExportJob(
                request_id=key, cohort_id=COHORT, churn=churn, columns=list(PROPERTY_KEYS)
            )
            started = time.perf_counter()
            with path.open("wb") as out:
                for chunk in sb.amplitude.export_chunks(job):
                    out.write(chunk)
            print(
                f"rendered the export ({key}): {path.stat().st_size / 1e6:.1f} MB in "
                f"{time.perf_counter() - started:.1f} s (not timed)",
                flush=True,
            )
            self._files[key] = path
        path = self._files[key]

        def body() -> Iterator[bytes]:
            with path.open("rb") as src:
                while chunk := src.read(1 << 16):
                    yield chunk

        url = sb.storage.put(body, content_type="text/csv", name=path.name)
        sb.faults.clear()
        sb.faults.add(
            "amplitude",
            "GET",
            r"/request/\w+/file$",
            times=None,
            status=302,
            headers={"Location": url},
        )

    # ----- measuring ---------------------------------------------------------------------

    def measure(self, row: Row, sb: Sandbox | None, go: Callable[[], Run]) -> Run:
        """Run ``go`` and fill the row from the process tree and the sandbox's logs."""
        before = len(sb.requests) if sb else 0
        jobs_before = set(sb.sendgrid_app.state.job_sizes()) if sb else set()
        # What earlier rows left in this process (their sandboxes' objects) is freed or kept
        # out of the collector's reach, so no row's sandbox pays to scan another's.
        gc.collect()
        gc.freeze()
        cpu = time.process_time()  # the sandbox's threads live in this process
        try:
            run = go()
        finally:
            gc.unfreeze()
        row.sandbox_cpu = time.process_time() - cpu if sb else None
        row.seconds, row.rss, row.members, row.cpu = run.seconds, run.rss, self.members, run.cpu
        if sb is not None:
            log = list(sb.requests)[before:]
            row.upserts = sum(
                1
                for r in log
                if r["method"] == "PUT"
                and r["path"] == "/v3/marketing/contacts"
                and r["status"] == 202
            )
            row.downloads = sum(
                1
                for r in log
                if r["service"] == "amplitude"
                and r["path"].startswith("/api/5/cohorts/request/")
                and not r["path"].endswith("/file")
            )
            row.contacts = sum(
                n
                for j, (kind, n) in sb.sendgrid_app.state.job_sizes().items()
                if j not in jobs_before and kind == "upsert_contacts"
            )
        if run.code:
            row.seconds = None
            last = [line for line in run.log.splitlines() if line.strip()][-3:]
            row.note = f"failed (exit {run.code}): " + " | ".join(s.strip()[-160:] for s in last)
        self.rows.append(row)
        return run

    def bare(self, latency: float) -> None:
        with self.sandbox(latency) as sb:
            argv = [
                sys.executable,
                str(ROOT / "benchmarks" / "bare_sync.py"),
                "--amplitude-url",
                sb.amplitude_url,
                "--sendgrid-url",
                sb.sendgrid_url,
                "--cohort",
                COHORT,
                "--custom-fields",
                ",".join(CUSTOM_FIELDS),
            ]
            self.measure(
                Row(latency, "bare"),
                sb,
                lambda: run_tree(
                    argv, cwd=ROOT, env=dict(os.environ), log=self.workdir / "bare.log"
                ),
            )

    def floor(self) -> None:
        env = {
            **os.environ,
            "TRIVIAL_RECORDS": str(self.members),
            "MELTANO_DATABASE_URI": f"sqlite:///{self.workdir / 'floor.db'}",
            "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
        }
        argv = [str(cli("meltano")), "run", "tap-trivial", "target-trivial"]
        self.measure(
            Row(None, "floor"),
            None,
            lambda: run_tree(argv, cwd=FLOOR_PROJECT, env=env, log=self.workdir / "floor.log"),
        )

    def meltano(self, row: Row, sb: Sandbox, tap: str, lineage: str) -> Run:
        env = {
            **os.environ,
            "MELTANO_ENVIRONMENT": "sandbox",
            "MELTANO_DATABASE_URI": f"sqlite:///{self.workdir / lineage}.db",
            "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
            "TAP_AMPLITUDE_COHORT_API_URL": sb.amplitude_url,
            "TAP_AMPLITUDE_COHORT_COHORT_IDS": json.dumps([COHORT]),
            "TARGET_SENDGRID_CONTACTS_API_URL": sb.sendgrid_url,
            "TARGET_SENDGRID_CONTACTS_CUSTOM_FIELDS": json.dumps(CUSTOM_FIELDS),
            "TARGET_SENDGRID_CONTACTS_REPORT_PATH": str(self.workdir / f"{lineage}.report.json"),
            "TARGET_SENDGRID_CONTACTS_REJECTS_PATH": str(self.workdir / f"{lineage}.rejects"),
        }
        argv = [str(cli("meltano")), "run", tap, "target-sendgrid-contacts"]
        left_before = set(BATCH_FOLDER.iterdir()) if BATCH_FOLDER.exists() else set()
        run = self.measure(
            row,
            sb,
            lambda: run_tree(
                argv, cwd=ROOT, env=env, log=self.workdir / f"{lineage}-{row.name}.log"
            ),
        )
        if BATCH_FOLDER.exists():  # files a failed run left behind: this benchmark's own
            for leftover in set(BATCH_FOLDER.iterdir()) - left_before:
                leftover.unlink()
        return run

    def latency_rows(self, latency: float, only: set[str]) -> None:
        """The rows of one latency; each runs with only its own sandbox alive.

        A sandbox holds its contacts in this process: one left alive from an earlier row (the
        RECORD first sync's 1.86 million contacts, say) made the rows after it slower. So the
        BATCH first sync runs first, its churn and rerun follow on its sandbox, and the RECORD
        first sync runs last on a fresh one (followed instead when the BATCH one failed).
        """
        if "bare" in only:
            self.bare(latency)
        followed = False
        lineages = (
            ("batch", "tap-amplitude-cohort--batch", f"batch-{latency:g}"),
            ("record", "tap-amplitude-cohort", f"record-{latency:g}"),
        )
        for name, tap, lineage in lineages:
            if name not in only and (followed or not only & {"churn", "rerun"}):
                continue
            with self.sandbox(latency) as sb:
                row = Row(latency, name)
                run = self.meltano(row, sb, tap, lineage)
                ok = not run.code
                if name == "batch" and _ignored_batches(run, row):
                    row.seconds, row.note, ok = None, "n/a (target does not read BATCH)", False
                if name not in only:
                    self.rows.pop()
                if ok and not followed:
                    followed = True
                    self.follow_rows(latency, only, sb, tap, lineage)
        if not followed and only & {"churn", "rerun"}:
            self.rows.append(Row(latency, "churn/rerun", note="skipped: no first sync"))

    def follow_rows(
        self, latency: float, only: set[str], sb: Sandbox, tap: str, lineage: str
    ) -> None:
        """The churn and rerun rows, on the sandbox and state of a first sync."""
        mode = "BATCH" if "batch" in tap else "RECORD"
        if "churn" in only:
            sb.amplitude.churn(
                COHORT, **{k: max(1, round(v * self.members)) for k, v in CHURN.items()}
            )
            self.serve_export(sb)
            self.meltano(Row(latency, "churn", note=mode), sb, tap, lineage)
        if "rerun" in only:
            self.meltano(Row(latency, "rerun", note=mode), sb, tap, lineage)

    # ----- the table ---------------------------------------------------------------------

    def table(self) -> str:
        bare = {r.latency: r.seconds for r in self.rows if r.name == "bare" and r.seconds}
        first_bare = next(iter(bare.values()), None)
        head = (
            "latency",
            "row",
            "wall_s",
            "members/s",
            "tap_MB",
            "target_MB",
            "upserts",
            "contacts",
            "downloads",
            "cpu_s",
            "sandbox_cpu_s",
            "x_bare",
        )
        lines = [head]
        # Rows print in ROWS order within each latency, whatever order they ran in.
        latencies = list(dict.fromkeys(r.latency for r in self.rows))
        shown = sorted(
            self.rows,
            key=lambda r: (
                latencies.index(r.latency),
                ROWS.index(r.name) if r.name in ROWS else len(ROWS),
            ),
        )
        for r in shown:
            base = bare.get(r.latency, first_bare if r.latency is None else None)
            ok = r.seconds is not None
            lines.append(
                (
                    "-" if r.latency is None else f"{r.latency:g}s",
                    r.name,
                    f"{r.seconds:.1f}" if ok else "-",
                    f"{r.members / r.seconds:,.0f}" if ok and r.seconds else "-",
                    _mb(r.rss.get("tap")),
                    _mb(r.rss.get("target")),
                    _num(r.upserts),
                    _num(r.contacts),
                    _num(r.downloads),
                    f"{r.cpu:.1f}" if r.cpu is not None else "-",
                    f"{r.sandbox_cpu:.1f}" if r.sandbox_cpu is not None else "-",
                    f"{r.seconds / base:.2f}" if ok and base else "-",
                )
            )
        widths = [max(len(str(line[i])) for line in lines) for i in range(len(head))]
        out = [
            "  ".join(str(c).rjust(w) for c, w in zip(line, widths, strict=True)) for line in lines
        ]
        out.insert(1, "  ".join("-" * w for w in widths))
        notes = [
            f"  {r.name} at {r.latency if r.latency is not None else '-'}: {r.note}"
            for r in self.rows
            if r.note
        ]
        if notes:
            out += ["notes:", *notes]
        return "\n".join(out)


def _ignored_batches(run: Run, row: Row) -> bool:
    """A target without BATCH reading fails on the message, or (the SDK's default) skips it."""
    if run.code:
        return "BATCH" in run.log or "batch" in run.log
    return not row.contacts  # a first sync that upserted nobody did not read the files


def _mb(value: int | None) -> str:
    return f"{value / 2**20:.0f}" if value else "-"


def _num(value: int | None) -> str:
    return f"{value:,}" if value is not None else "-"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=2_000_000)
    parser.add_argument(
        "--latency",
        default="2,30",
        help="comma-separated SendGrid job latencies in seconds (default 2,30)",
    )
    parser.add_argument(
        "--only",
        default=",".join(ROWS),
        help=f"comma-separated rows to run (default all: {','.join(ROWS)})",
    )
    args = parser.parse_args()
    latencies = [float(x) for x in args.latency.split(",") if x.strip()]
    only = {x.strip() for x in args.only.split(",") if x.strip()}
    unknown = only - set(ROWS)
    if unknown:
        parser.error(f"unknown rows {sorted(unknown)}; choose from {', '.join(ROWS)}")
    if not cli("meltano").exists():
        parser.error("run scripts/setup.sh first (no .venv/bin/meltano)")

    workdir = Path(tempfile.mkdtemp(prefix="end-to-end-"))
    print(
        f"{args.members:,} members, job latency {', '.join(f'{x:g} s' for x in latencies)}, "
        f"{os.cpu_count()} CPUs; logs in {workdir}",
        flush=True,
    )
    bench = Bench(args.members, workdir)
    try:
        if "floor" in only:
            bench.floor()
        for latency in latencies:
            bench.latency_rows(latency, only)
            print(f"done: latency {latency:g} s", flush=True)
    finally:
        print(bench.table())
        goals(bench)
    if not os.environ.get("KEEP_BENCH_LOGS"):
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


def goals(bench: Bench) -> None:
    """Print the issue's goals next to what this run measured (informative, never a verdict)."""
    rows = {(r.latency, r.name): r for r in bench.rows}
    for latency in sorted({r.latency for r in bench.rows if r.latency is not None}):
        batch, bare = rows.get((latency, "batch")), rows.get((latency, "bare"))
        churn, rerun = rows.get((latency, "churn")), rows.get((latency, "rerun"))
        print(f"goals at {latency:g} s job latency:")
        if batch and batch.seconds:
            print(
                f"  batch first sync: {batch.members / batch.seconds:,.0f} members/s "
                "(goal >= 70,000 at 2 s)"
                + (
                    f", {batch.seconds / bare.seconds:.2f}x bare (goal <= 1.5x), "
                    f"{batch.seconds - bare.seconds:+.1f} s vs bare (goal within one latency "
                    "at 30 s)"
                    if bare and bare.seconds
                    else ""
                )
            )
        if churn and churn.seconds and churn.upserts is not None:
            changes = sum(
                max(1, round(v * bench.members)) for k, v in CHURN.items() if k != "remove"
            )
            first = batch if batch and batch.seconds else rows.get((latency, "record"))
            bound = math.ceil(changes / 30_000) + 1
            half = (
                f", {churn.seconds / first.seconds:.2f} of the first sync (goal <= 0.5)"
                if (first and first.seconds)
                else ""
            )
            print(f"  churn: {churn.upserts} upsert requests (goal <= {bound}){half}")
        if rerun and rerun.seconds is not None:
            print(f"  rerun: {rerun.downloads} downloads, {rerun.upserts} upserts (goal 0 and 0)")
        # The goal is the plugins'; the bare script (its RSS in the tap column) is no plugin.
        for r in (x for x in bench.rows if x.latency == latency and x.rss and x.name != "bare"):
            peak = max(r.rss.values()) / 2**20
            if peak > 300:
                print(f"  {r.name}: peak RSS {peak:.0f} MB (goal <= 300 MB per plugin)")


if __name__ == "__main__":
    sys.exit(main())

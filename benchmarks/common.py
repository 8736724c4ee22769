"""What the benchmark scripts share: a started sandbox, Singer input files, measured CLI runs."""

from __future__ import annotations

import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # `sandbox` (with its Singer input builder) outside the venv

from sandbox import Sandbox, SandboxConfig  # noqa: E402


def cli(name: str) -> Path:
    """An installed console script of the interpreter running the benchmark (.venv/bin)."""
    return Path(sys.executable).with_name(name)


def bench_sandbox(cohort_id: str, name: str, size: int, **config: object) -> Sandbox:
    """A started sandbox with one extra cohort of ``size`` members (use it in a ``with``)."""
    spec = {"id": cohort_id, "name": name, "size": size}
    return Sandbox(SandboxConfig(extra_cohorts=[spec], **config)).start()


def add_job_latency_option(parser: object, default: str) -> None:
    """``--job-latency S``: how long every SendGrid import, removal and export job stays pending."""
    parser.add_argument(  # type: ignore[attr-defined]
        "--job-latency", type=float, default=None, metavar="S",
        help=f"seconds every SendGrid job stays pending (default: {default})",
    )  # fmt: skip


def job_delays(latency: float | None, **defaults: float) -> dict[str, float]:
    """SandboxConfig delays: ``latency`` for all three SendGrid job kinds, else ``defaults``."""
    if latency is None:
        return defaults
    kinds = ("import_delay_seconds", "removal_delay_seconds", "export_delay_seconds")
    return dict.fromkeys(kinds, latency)


def target_config(sb: Sandbox, **settings: object) -> dict:
    """Target settings for the sandbox's SendGrid, mapping the tap's user properties."""
    return {
        "api_key": sb.sendgrid_api_key,
        "api_url": sb.sendgrid_url,
        "email_field": "user_properties.email",
        "first_name_field": "user_properties.first_name",
        "last_name_field": "user_properties.last_name",
        **settings,
    }


def write_lines(path: Path, lines: Iterable[str]) -> int:
    """Write Singer lines (streamed, never all in memory); return how many."""
    count = 0
    with path.open("w") as out:
        for line in lines:
            out.write(line + "\n")
            count += 1
    return count


@dataclass
class Measured:
    """One CLI run: exit code, wall and CPU seconds, RSS samples, and stderr on failure."""

    code: int
    seconds: float
    cpu_seconds: float
    samples: list[tuple[float, int, str]]  # (seconds since start, RSS bytes, note)
    errors: str  # the end of stderr when the run failed, else ""

    @property
    def peak(self) -> tuple[float, int, str]:
        """The sample with the highest RSS."""
        return max(self.samples, default=(0.0, 0, ""), key=lambda s: s[1])

    @property
    def peak_rss(self) -> int:
        """The highest RSS sampled, in bytes."""
        return self.peak[1]


def run_measured(
    argv: list[str],
    *,
    interval: float,
    stdin: Path | None = None,
    log: Path | None = None,
    note: Callable[[], str] | None = None,
) -> Measured:
    """Run a command (stdout to /dev/null) while sampling its RSS every ``interval`` seconds.

    Args:
        argv: The command.
        interval: Seconds between RSS samples.
        stdin: A file to read as standard input.
        log: Where stderr goes (a temporary file when None).
        note: Called at each sample: what the run was doing then.

    CPU seconds (user + system of the child) are less sensitive than wall time to other work
    on the machine; they assume no other child runs meanwhile.
    """
    samples: list[tuple[float, int, str]] = []
    done = threading.Event()

    def sample(process: psutil.Process) -> None:
        try:
            while not done.is_set():
                samples.append(
                    (
                        time.perf_counter() - started,
                        process.memory_info().rss,
                        note() if note else "",
                    )
                )
                time.sleep(interval)
        except psutil.Error:  # the process has gone
            pass

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with ExitStack() as files:
        stderr = files.enter_context(
            log.open("w+b") if log else tempfile.TemporaryFile()  # noqa: SIM115
        )
        source = files.enter_context(stdin.open("rb")) if stdin else None
        started = time.perf_counter()
        proc = subprocess.Popen(argv, stdin=source, stdout=subprocess.DEVNULL, stderr=stderr)
        # psutil.Process before wait(): the pid stays this child's until it is reaped.
        sampler = threading.Thread(target=sample, args=(psutil.Process(proc.pid),), daemon=True)
        sampler.start()
        code = proc.wait()
        seconds = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        done.set()
        sampler.join()
        errors = ""
        if code:
            stderr.seek(0)
            errors = stderr.read().decode(errors="replace")[-2000:]
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Measured(code, seconds, cpu, samples, errors)

"""Command line: ``python -m sandbox serve|stop|summary|expected``."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests

from sandbox.config import SandboxConfig

DEFAULT_PORTS = {"amplitude": 8761, "sendgrid": 8762, "storage": 8763}
DEFAULT_PID_FILE = ".sandbox/sandbox.pid"
DEFAULT_LOG_FILE = ".sandbox/sandbox.log"
# serve flag -> SandboxConfig attribute (how long a SendGrid job of that kind stays pending)
LATENCY_FLAGS = {
    "import-delay": "import_delay_seconds",
    "removal-delay": "removal_delay_seconds",
    "export-delay": "export_delay_seconds",
}
_START_TIMEOUT = 20.0
_STOP_TIMEOUT = 10.0


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "serve":
        return _serve_background(args) if args.background else _serve(args)
    if args.command == "stop":
        return _stop(Path(args.pid_file))
    if args.command == "summary":
        return _summary(args.sendgrid_url)
    return _expected(args)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m sandbox", description="Local sandbox of Amplitude and SendGrid."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve the fake APIs on 127.0.0.1")
    for service, port in DEFAULT_PORTS.items():
        serve.add_argument(f"--{service}-port", type=int, default=port)
    serve.add_argument("--seed", type=int, default=SandboxConfig.seed)
    latency = serve.add_argument_group(
        "SendGrid job latency (seconds a job stays pending; a real one was seen pending over 30 s)"
    )
    latency.add_argument(
        "--job-latency", type=_seconds, default=None, metavar="S",
        help="sets all three below at once (an individual flag wins over it)",
    )  # fmt: skip
    for flag, attribute in LATENCY_FLAGS.items():
        latency.add_argument(
            f"--{flag}", type=_seconds, default=None, metavar="S",
            help=f"default {getattr(SandboxConfig, attribute)}",
        )  # fmt: skip
    serve.add_argument("--background", action="store_true", help="detach; return once up")
    serve.add_argument("--pid-file", default=None, help=f"default {DEFAULT_PID_FILE} (background)")
    serve.add_argument("--log-file", default=DEFAULT_LOG_FILE, help="output of a background run")
    stop = commands.add_parser("stop", help="stop a background sandbox")
    stop.add_argument("--pid-file", default=DEFAULT_PID_FILE)
    summary = commands.add_parser("summary", help="print the lists and their member counts")
    summary.add_argument("--sendgrid-url", default=f"http://127.0.0.1:{DEFAULT_PORTS['sendgrid']}")
    expected = commands.add_parser("expected", help="print a cohort's expected list emails")
    expected.add_argument("cohort_id")
    expected.add_argument("--seed", type=int, default=SandboxConfig.seed)
    expected.add_argument(
        "--amplitude-url",
        default=None,
        help="ask a running sandbox (reflects churn) instead of generating from the seed",
    )
    return parser


def _seconds(text: str) -> float:
    value = float(text)
    if not value >= 0:  # also refuses nan
        msg = f"must be a number of seconds >= 0, got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return value


def job_latencies(args: argparse.Namespace) -> dict[str, float]:
    """Return the SandboxConfig job delays the serve flags ask for (only those given).

    Args:
        args: Parsed ``serve`` arguments.

    Returns:
        ``{attribute: seconds}``: ``--job-latency`` for all three, an individual flag over it.
    """
    delays: dict[str, float] = {}
    for flag, attribute in LATENCY_FLAGS.items():
        value = getattr(args, flag.replace("-", "_"))
        if value is None:
            value = args.job_latency
        if value is not None:
            delays[attribute] = value
    return delays


def serve_config(args: argparse.Namespace) -> SandboxConfig:
    """Return the SandboxConfig of a ``serve`` command line."""
    return SandboxConfig(
        seed=args.seed,
        amplitude_port=args.amplitude_port,
        sendgrid_port=args.sendgrid_port,
        storage_port=args.storage_port,
        **job_latencies(args),  # type: ignore[arg-type]
    )


def _latency_argv(args: argparse.Namespace) -> list[str]:
    """The latency flags again, for the detached child of ``--background``."""
    argv: list[str] = []
    for attribute, seconds in job_latencies(args).items():
        flag = next(f for f, a in LATENCY_FLAGS.items() if a == attribute)
        argv += [f"--{flag}", repr(seconds)]
    return argv


def _serve(args: argparse.Namespace) -> int:
    from sandbox.server import Sandbox

    config = serve_config(args)
    try:
        sb = Sandbox(config).start()
    except OSError as exc:
        print(f"cannot start the sandbox: {exc}", file=sys.stderr)
        return 1
    pid_file = Path(args.pid_file) if args.pid_file else None
    if pid_file:
        pid_file.parent.mkdir(parents=True, exist_ok=True)
        pid_file.write_text(f"{os.getpid()}\n")
    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())
    print(
        f"sandbox up (seed {args.seed}): amplitude {sb.amplitude_url}, "
        f"sendgrid {sb.sendgrid_url}, storage {sb.storage_url}; SendGrid jobs pending "
        f"{config.import_delay_seconds:g} s (import), {config.removal_delay_seconds:g} s "
        f"(removal), {config.export_delay_seconds:g} s (export)",
        flush=True,
    )
    try:
        while not stopping.wait(0.5):
            pass
    finally:
        sb.stop()
        if pid_file and pid_file.exists() and pid_file.read_text().strip() == str(os.getpid()):
            pid_file.unlink()
        print("sandbox stopped", flush=True)
    return 0


def _serve_background(args: argparse.Namespace) -> int:
    ports = [args.amplitude_port, args.sendgrid_port, args.storage_port]
    busy = [port for port in ports if _answers(port)]
    if busy:
        print(f"ports already answering: {busy} (is a sandbox running?)", file=sys.stderr)
        return 1
    pid_file = Path(args.pid_file or DEFAULT_PID_FILE)
    log_file = Path(args.log_file)
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    log_file.parent.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable, "-m", "sandbox", "serve", "--seed", str(args.seed),
        "--amplitude-port", str(args.amplitude_port),
        "--sendgrid-port", str(args.sendgrid_port),
        "--storage-port", str(args.storage_port),
        "--pid-file", str(pid_file), *_latency_argv(args),
    ]  # fmt: skip
    with log_file.open("ab") as log:
        child = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
    pid_file.write_text(f"{child.pid}\n")
    deadline = time.monotonic() + _START_TIMEOUT
    while time.monotonic() < deadline:
        if child.poll() is not None:
            print(f"the sandbox exited ({child.returncode}); see {log_file}", file=sys.stderr)
            pid_file.unlink(missing_ok=True)
            return 1
        if all(_answers(port) for port in ports):
            print(f"sandbox running (pid {child.pid}) on ports {ports}; log: {log_file}")
            return 0
        time.sleep(0.05)
    child.terminate()
    pid_file.unlink(missing_ok=True)
    print(f"no answer within {_START_TIMEOUT:.0f} s; see {log_file}", file=sys.stderr)
    return 1


def _stop(pid_file: Path) -> int:
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        print(f"no sandbox running (no pid file {pid_file})")
        return 0
    if not _alive(pid) or not _is_sandbox(pid):
        print(f"no sandbox running (stale pid file {pid_file})")
        pid_file.unlink(missing_ok=True)
        return 0
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + _STOP_TIMEOUT
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if _alive(pid):
        print(f"sandbox (pid {pid}) did not stop within {_STOP_TIMEOUT:.0f} s", file=sys.stderr)
        return 1
    pid_file.unlink(missing_ok=True)
    print(f"sandbox (pid {pid}) stopped")
    return 0


def _summary(sendgrid_url: str) -> int:
    try:
        answer = requests.get(f"{sendgrid_url.rstrip('/')}/_sandbox/summary", timeout=10)
        answer.raise_for_status()
    except requests.RequestException as exc:
        print(f"cannot read the sandbox summary at {sendgrid_url}: {exc}", file=sys.stderr)
        return 1
    print(format_summary(answer.json()))
    return 0


def format_summary(summary: dict) -> str:
    """Render ``/_sandbox/summary`` for people."""
    lines = [
        f"Amplitude cohorts (downloads used: {summary.get('downloads_used', 0)}"
        f" of {summary.get('download_quota', '?')}):"
    ]
    for cohort in summary.get("cohorts", []):
        lines.append(f"  {cohort['id']:<9} {cohort['size']:>10,} members  {cohort['name']}")
    sendgrid = summary.get("sendgrid") or {}
    lists = sendgrid.get("lists", [])
    if isinstance(lists, dict):
        lists = [{"name": name, "member_count": count} for name, count in lists.items()]
    lines.append(f"SendGrid lists ({len(lists)}):")
    for entry in lists:
        count = next(
            (entry[k] for k in ("member_count", "contact_count", "members", "count") if k in entry),
            "?",
        )
        count_text = f"{count:>10,}" if isinstance(count, int) else f"{count!s:>10}"
        lines.append(f"  {count_text} members  {entry.get('name', entry.get('id', '?'))}")
    if not lists:
        lines.append("  (none)")
    contacts = sendgrid.get("contacts", sendgrid.get("contact_count"))
    if contacts is not None:
        lines.append(f"SendGrid contacts: {contacts:,}" if isinstance(contacts, int) else "")
    return "\n".join(line for line in lines if line)


def _expected(args: argparse.Namespace) -> int:
    if args.amplitude_url:
        url = f"{args.amplitude_url.rstrip('/')}/_sandbox/cohorts/{args.cohort_id}/expected"
        answer = requests.get(url, timeout=30)
        if answer.status_code == 404:
            print(f"unknown cohort {args.cohort_id}", file=sys.stderr)
            return 1
        answer.raise_for_status()
        emails = answer.json()
    else:
        from sandbox.generator import CohortGenerator

        generator = CohortGenerator(args.seed)
        if args.cohort_id not in generator.specs:
            print(
                f"unknown cohort {args.cohort_id}; cohorts: {', '.join(generator.specs)}",
                file=sys.stderr,
            )
            return 1
        emails = sorted(generator.expected_emails(args.cohort_id))
    sys.stdout.write("".join(f"{email}\n" for email in emails))
    return 0


def _answers(port: int) -> bool:
    try:
        return requests.get(f"http://127.0.0.1:{port}/_sandbox/summary", timeout=1).ok
    except requests.RequestException:
        return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    try:
        # A zombie (exited, not yet reaped) counts as gone.
        return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _is_sandbox(pid: int) -> bool:
    """Guard against a stale pid file naming an unrelated process (when /proc can tell)."""
    cmdline = Path(f"/proc/{pid}/cmdline")
    try:
        return b"sandbox" in cmdline.read_bytes()
    except OSError:
        return True


if __name__ == "__main__":
    sys.exit(main())

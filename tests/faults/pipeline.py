"""Tap piped into target against one sandbox, run after run, with STATE carried like Meltano.

In-process by default (fast, no signal needed); ``SubprocessPipeline`` runs the two CLIs as
``tap | target`` with a state file between runs, for the cases that send a signal.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import logging
import os
import signal
import subprocess
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tap_amplitude_cohort.tap import TapAmplitudeCohort
from target_sendgrid_contacts.list_names import DEFAULT_TEMPLATE, ListNamer
from target_sendgrid_contacts.target import TargetSendGridContacts

from sandbox import Sandbox

ROOT = Path(__file__).resolve().parents[2]
BIN = ROOT / ".venv" / "bin"
REMOVAL_PATH = "/v3/marketing/lists/"


def list_name(sb: Sandbox, cohort_id: str) -> str:
    """The list name the target gives a cohort by default."""
    namer = ListNamer(
        list_name=None, template=DEFAULT_TEMPLATE, stream="cohort_members", has_cohort_fields=True
    )
    return namer.name_for(cohort_id, sb.generator.spec(cohort_id).name)


def list_emails(sb: Sandbox, cohort_id: str) -> set[str]:
    """The emails the cohort's list holds (empty when there is no list yet)."""
    found = sb.sendgrid.list_by_name(list_name(sb, cohort_id))
    return set() if found is None else set(sb.sendgrid.member_emails(found["id"]))


def removed_emails(sb: Sandbox, requests: Iterable[dict]) -> set[str]:
    """Emails of every contact a logged removal call asked SendGrid to take off a list."""
    emails: set[str] = set()
    for entry in requests:
        if entry["service"] != "sendgrid" or entry["method"] != "DELETE":
            continue
        if not (entry["path"].startswith(REMOVAL_PATH) and entry["path"].endswith("/contacts")):
            continue
        for ids in entry["query"].get("contact_ids", []):
            for contact_id in ids.split(","):
                contact = sb.sendgrid.contact_by_id(contact_id)
                if contact is not None:
                    emails.add(contact["email"].lower())
    return emails


@dataclass
class PipelineRun:
    """What one tap | target run did."""

    tap_exit: int
    target_exit: int
    tap_messages: list[dict]
    report: dict
    rejects: list[dict]
    log: str
    requests: list[dict]
    state_out: dict | None
    signalled: tuple[str, ...] = ()  # the processes still running when the signal was sent

    @property
    def failed(self) -> bool:
        """Whether either plugin reported failure (what a scheduler would see)."""
        return self.tap_exit != 0 or self.target_exit != 0

    def delivered(self, cohort_id: str) -> int:
        """cohort_members records the tap sent for a cohort."""
        return sum(
            1
            for m in self.tap_messages
            if m.get("type") == "RECORD"
            and m.get("stream") == "cohort_members"
            and m["record"].get("cohort_id") == cohort_id
        )

    def syncs(self) -> dict[str, dict]:
        """cohort_id -> the cohort_syncs record of this run."""
        return {
            m["record"]["cohort_id"]: m["record"]
            for m in self.tap_messages
            if m.get("type") == "RECORD" and m.get("stream") == "cohort_syncs"
        }

    def downloads(self) -> int:
        """Amplitude export requests (each one spends a download of the monthly quota)."""
        return sum(
            1
            for r in self.requests
            if r["service"] == "amplitude"
            and r["path"].startswith("/api/5/cohorts/request/")
            and not r["path"].endswith("/file")
        )


class _Capture(logging.Handler):
    """Every log line at INFO or above as the default stderr handler would print it."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@contextlib.contextmanager
def _captured_logs() -> Iterator[_Capture]:
    handler = _Capture()
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    # Plugin loggers the SDK configured may not propagate: listen on them too.
    extra = [
        logging.getLogger(name)
        for name in list(logging.root.manager.loggerDict)
        if not getattr(logging.getLogger(name), "propagate", True)
    ]
    for logger in extra:
        logger.addHandler(handler)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
        for logger in extra:
            logger.removeHandler(handler)


@dataclass
class Pipeline:
    """Runs tap-amplitude-cohort | target-sendgrid-contacts in-process, one run at a time.

    The STATE handed to each tap run is the last one the target emitted in an earlier run
    (Meltano keeps that one); a run whose target emitted none leaves the old one in place.
    """

    sb: Sandbox
    workdir: Path
    cohort_ids: list[str]
    tap_config: dict = field(default_factory=dict)
    target_config: dict = field(default_factory=dict)
    state: dict | None = None
    runs: list[PipelineRun] = field(default_factory=list)
    edit: Callable[[list[dict]], list[dict]] | None = None  # tap output -> target input

    def tap_settings(self, **overrides: object) -> dict:
        """The tap's config: the sandbox, fast polls, then the pipeline's and the run's settings."""
        return {
            "api_url": self.sb.amplitude_url,
            "api_key": self.sb.amplitude_api_key,
            "secret_key": self.sb.amplitude_secret_key,
            "cohort_ids": list(self.cohort_ids),
            "poll_interval_seconds": 0.02,
            "max_export_wait_seconds": 10,
            **self.tap_config,
            **overrides,
        }

    def target_settings(self, n: int, **overrides: object) -> dict:
        """The target's config for run ``n`` (its own report and rejects files)."""
        return {
            "api_key": self.sb.sendgrid_api_key,
            "api_url": self.sb.sendgrid_url,
            "email_field": "user_properties.email",
            "first_name_field": "user_properties.first_name",
            "last_name_field": "user_properties.last_name",
            "custom_fields": {"plan": "user_properties.plan"},
            "create_missing_custom_fields": True,
            "job_poll_interval_seconds": 0.02,
            "job_timeout_seconds": 20,
            "report_path": str(self.workdir / f"report-{n}.json"),
            "rejects_path": str(self.workdir / f"rejects-{n}.jsonl"),
            **self.target_config,
            **overrides,
        }

    def run(
        self,
        *,
        tap: dict | None = None,
        target: dict | None = None,
        between: Callable[[], None] | None = None,
    ) -> PipelineRun:
        """One run; ``between`` is called after the tap and before the target."""
        n = len(self.runs) + 1
        before = len(self.sb.requests)
        with _captured_logs() as logs:
            tap_exit, messages = self._tap(self.tap_settings(**(tap or {})), logs)
            if self.edit is not None:
                messages = self.edit(messages)
            if between is not None:
                between()
            settings = self.target_settings(n, **(target or {}))
            target_exit, states = self._target(messages, settings, logs)
        report_path = Path(settings["report_path"])
        rejects_path = Path(settings["rejects_path"])
        result = PipelineRun(
            tap_exit=tap_exit,
            target_exit=target_exit,
            tap_messages=messages,
            report=json.loads(report_path.read_text()) if report_path.exists() else {},
            rejects=[json.loads(line) for line in rejects_path.read_text().splitlines() if line]
            if rejects_path.exists()
            else [],
            log="\n".join(logs.lines),
            requests=list(self.sb.requests[before:]),
            state_out=states[-1] if states else None,
        )
        if result.state_out is not None:
            self.state = result.state_out
        self.runs.append(result)
        return result

    def _tap(self, config: dict, logs: _Capture) -> tuple[int, list[dict]]:
        # The tap writes bytes to stdout's buffer (its fast path).
        out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
        exit_code = 0
        with contextlib.redirect_stdout(out):
            try:
                tap = TapAmplitudeCohort(config=config, state=copy.deepcopy(self.state))
                tap.sync_all()
                exit_code = tap.finish_run()
            except Exception:  # noqa: BLE001 - the CLI would print it and exit 1
                logs.lines.append(traceback.format_exc())
                exit_code = 1
            out.flush()
        out.seek(0)
        messages = [json.loads(line) for line in out.read().splitlines() if line.strip()]
        return exit_code, messages

    def _target(self, messages: list[dict], config: dict, logs: _Capture) -> tuple[int, list[dict]]:
        lines = io.StringIO("".join(json.dumps(m) + "\n" for m in messages))
        out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
        exit_code = 0
        with contextlib.redirect_stdout(out):
            try:
                TargetSendGridContacts(config=config).listen(lines)
            except Exception:  # noqa: BLE001 - the CLI would print it and exit 1
                logs.lines.append(traceback.format_exc())
                exit_code = 1
            out.flush()
        out.seek(0)
        # A target prints each STATE value as one JSON line (what Meltano stores).
        states = [json.loads(line) for line in out.read().splitlines() if line.strip()]
        return exit_code, states


@dataclass
class SubprocessPipeline(Pipeline):
    """``tap-amplitude-cohort --state state.json | target-sendgrid-contacts > states``.

    The last STATE line the target printed becomes ``state.json`` for the next run, as Meltano
    keeps it; nothing printed leaves the file as it was.
    """

    def start(
        self, n: int, tap: dict | None = None, target: dict | None = None
    ) -> tuple[subprocess.Popen, subprocess.Popen, dict]:
        """Start run ``n``: two processes joined by a pipe; return them and the target config."""
        tap_cfg = self.workdir / f"tap-{n}.json"
        tap_cfg.write_text(json.dumps(self.tap_settings(**(tap or {}))))
        target_settings = self.target_settings(n, **(target or {}))
        target_cfg = self.workdir / f"target-{n}.json"
        target_cfg.write_text(json.dumps(target_settings))
        state_file = self.workdir / "state.json"
        tap_args = [str(BIN / "tap-amplitude-cohort"), "--config", str(tap_cfg)]
        if self.state is not None:
            state_file.write_text(json.dumps(self.state))
            tap_args += ["--state", str(state_file)]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        tap_err = (self.workdir / f"tap-{n}.stderr").open("w")
        target_err = (self.workdir / f"target-{n}.stderr").open("w")
        target_out = (self.workdir / f"target-{n}.stdout").open("w")
        tap = subprocess.Popen(
            tap_args,
            stdout=subprocess.PIPE,
            stderr=tap_err,
            env=env,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        target_proc = subprocess.Popen(
            [str(BIN / "target-sendgrid-contacts"), "--config", str(target_cfg)],
            stdin=tap.stdout,
            stdout=target_out,
            stderr=target_err,
            env=env,
            start_new_session=True,
        )
        assert tap.stdout is not None
        tap.stdout.close()  # the target owns the read end
        for handle in (tap_err, target_err, target_out):
            handle.close()
        return tap, target_proc, target_settings

    def run_sub(
        self,
        *,
        tap: dict | None = None,
        target: dict | None = None,
        interrupt: Callable[[], bool] | None = None,
        sig: int = signal.SIGTERM,
        timeout: float = 90,
    ) -> PipelineRun:
        """One subprocess run; when ``interrupt()`` turns true, ``sig`` goes to both plugins."""
        n = len(self.runs) + 1
        before = len(self.sb.requests)
        tap_proc, target_proc, settings = self.start(n, tap, target)
        deadline = time.monotonic() + timeout
        signalled: tuple[str, ...] | None = None
        while target_proc.poll() is None or tap_proc.poll() is None:
            if interrupt is not None and signalled is None and interrupt():
                running = {"tap": tap_proc, "target": target_proc}
                running = {k: p for k, p in running.items() if p.poll() is None}
                for proc in running.values():
                    with contextlib.suppress(ProcessLookupError):
                        proc.send_signal(sig)
                signalled = tuple(running)
            if time.monotonic() > deadline:
                for proc in (tap_proc, target_proc):
                    proc.kill()
                raise AssertionError("the pipeline did not finish in time")
            time.sleep(0.01)
        stdout = (self.workdir / f"target-{n}.stdout").read_text()
        states = [json.loads(line) for line in stdout.splitlines() if line.strip()]
        stderr = (self.workdir / f"tap-{n}.stderr").read_text() + (
            self.workdir / f"target-{n}.stderr"
        ).read_text()
        report_path = Path(settings["report_path"])
        result = PipelineRun(
            tap_exit=tap_proc.returncode,
            target_exit=target_proc.returncode,
            tap_messages=[],
            report=json.loads(report_path.read_text()) if report_path.exists() else {},
            rejects=[],
            log=stderr,
            requests=list(self.sb.requests[before:]),
            state_out=states[-1] if states else None,
            signalled=signalled or (),
        )
        if result.state_out is not None:
            self.state = result.state_out
        self.runs.append(result)
        return result

"""SIGTERM or SIGINT stops the target at once: no STATE, one line saying what, exit 128+N."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest

from sandbox.singer_input import cohort_lines

pytestmark = pytest.mark.integration

TARGET = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "target-sendgrid-contacts"


def wait_until(condition, what: str, limit: float = 60.0) -> None:
    """Poll for a condition (a bound on a hang, not a timed assertion)."""
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.02)


def list_name(sandbox, cohort_id: str) -> str:
    return f"[Amplitude] {sandbox.generator.spec(cohort_id).name}: {cohort_id}"


class TargetProcess:
    """The target CLI with its output in files (a full pipe would stall it)."""

    def __init__(self, sandbox, tmp_path: Path, stdin) -> None:
        if not TARGET.exists():
            pytest.skip("run scripts/setup.sh first")
        config = tmp_path / "config.json"
        config.write_text(
            json.dumps(
                {
                    "api_key": sandbox.sendgrid_api_key,
                    "api_url": sandbox.sendgrid_url,
                    "email_field": "user_properties.email",
                    "job_poll_interval_seconds": 0.02,
                    "report_path": str(tmp_path / "report.json"),
                }
            )
        )
        self.out, self.err = tmp_path / "out.singer", tmp_path / "err.log"
        with self.out.open("w") as out, self.err.open("w") as err:
            self.proc = subprocess.Popen(
                [str(TARGET), "--config", str(config)],
                stdin=stdin,
                stdout=out,
                stderr=err,
                text=True,
            )

    def logged(self, text: str) -> bool:
        return text in self.err.read_text()

    def stop(self, signum: int) -> tuple[int, str, str]:
        self.proc.send_signal(signum)
        code = self.proc.wait(timeout=30)
        return code, self.out.read_text(), self.err.read_text()


def interruption_line(err: str) -> str:
    """The one log line (the report's table repeats it after THE RUN STOPPED)."""
    lines = [line for line in err.splitlines() if "Interrupted by" in line]
    logged = [line for line in lines if not line.startswith("THE RUN STOPPED: ")]
    assert len(logged) == 1, err[-3000:]
    assert all(line.endswith(logged[0].split(" | ")[-1]) for line in lines)
    return logged[0]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=lambda s: s.name)
def test_a_signal_while_reading_input_writes_no_state_and_exits_128_plus_n(
    signum, sandbox, tmp_path
):
    lines = cohort_lines(sandbox.generator, ["trlrsk2"])
    target = TargetProcess(sandbox, tmp_path, subprocess.PIPE)
    # Everything, STATE included, but the input stays open: the tap is still running.
    target.proc.stdin.write("\n".join(lines) + "\n")
    target.proc.stdin.flush()
    wait_until(lambda: target.logged("SendGrid key accepted"), "the target to start")
    code, out, err = target.stop(signum)

    assert code == 128 + signum
    line = interruption_line(err)
    assert f"Interrupted by {signum.name} while reading input" in line
    assert "STATE not written" in line
    assert out == ""  # the SDK's handler would drain, write STATE and exit 0
    assert "Gracefully shutting down" not in err
    assert "draining all sinks" not in err
    assert "@" not in err


def test_a_signal_while_waiting_for_an_import_job_writes_no_state_and_a_rerun_converges(
    sandbox_factory, tmp_path
):
    sandbox = sandbox_factory(import_delay_seconds=60)
    singer = tmp_path / "in.singer"
    singer.write_text("\n".join(cohort_lines(sandbox.generator, ["trlrsk2"])) + "\n")
    with singer.open() as stdin:
        target = TargetProcess(sandbox, tmp_path, stdin)
        wait_until(
            lambda: any(
                r["method"] == "PUT" and r["path"] == "/v3/marketing/contacts"
                for r in sandbox.requests
            ),
            "the upsert to be sent",
        )
        code, out, err = target.stop(signal.SIGTERM)

    assert code == 143
    line = interruption_line(err)
    name = list_name(sandbox, "trlrsk2")
    assert "Interrupted by SIGTERM while upserting" in line
    assert f"into list {name!r} (waiting for SendGrid's import job): STATE not written" in line
    assert out == ""
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["error"] == line.split(" | ")[-1]
    assert report["totals"]["removed"] == 0

    sandbox.config.import_delay_seconds = 0.05  # SendGrid healthy again: the rerun converges
    with singer.open() as stdin:
        rerun = subprocess.run(
            [str(TARGET), "--config", str(tmp_path / "config.json")],
            stdin=stdin,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    found = sandbox.sendgrid.list_by_name(name)
    assert sandbox.sendgrid.member_emails(found["id"]) == (
        sandbox.generator.expected_emails("trlrsk2")
    )

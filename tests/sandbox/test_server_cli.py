"""`python -m sandbox`: serve --background, summary, expected, stop."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from sandbox.__main__ import format_summary
from sandbox.generator import CohortGenerator

pytestmark = pytest.mark.integration


def _free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sandbox", *args],
        cwd=cwd, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_serve_in_background_then_summary_expected_and_stop(tmp_path):
    amplitude, sendgrid, storage = _free_ports(3)
    pid_file = tmp_path / "run" / "sandbox.pid"
    served = _cli(
        "serve", "--background", "--seed", "7",
        "--amplitude-port", str(amplitude), "--sendgrid-port", str(sendgrid),
        "--storage-port", str(storage),
        "--pid-file", str(pid_file), "--log-file", str(tmp_path / "sandbox.log"),
        cwd=tmp_path,
    )  # fmt: skip
    try:
        assert served.returncode == 0, served.stderr
        assert pid_file.exists()
        for port in (amplitude, sendgrid, storage):  # answering when serve returned
            assert requests.get(f"http://127.0.0.1:{port}/_sandbox/summary", timeout=5).ok

        summary = _cli("summary", "--sendgrid-url", f"http://127.0.0.1:{sendgrid}", cwd=tmp_path)
        assert summary.returncode == 0, summary.stderr
        assert "Power users" in summary.stdout
        assert "1,000" in summary.stdout

        local = _cli("expected", "pwrusr1", "--seed", "7", cwd=tmp_path)
        assert local.stdout.splitlines() == sorted(CohortGenerator(7).expected_emails("pwrusr1"))
        remote = _cli(
            "expected", "pwrusr1", "--amplitude-url", f"http://127.0.0.1:{amplitude}", cwd=tmp_path
        )
        assert remote.stdout == local.stdout  # the server runs with the same seed

        again = _cli(
            "serve", "--background", "--amplitude-port", str(amplitude),
            "--sendgrid-port", str(sendgrid), "--storage-port", str(storage),
            "--pid-file", str(tmp_path / "other.pid"), cwd=tmp_path,
        )  # fmt: skip
        assert again.returncode == 1
        assert "already answering" in again.stderr
    finally:
        stopped = _cli("stop", "--pid-file", str(pid_file), cwd=tmp_path)
    assert stopped.returncode == 0, stopped.stderr
    assert not pid_file.exists()
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{amplitude}/_sandbox/summary", timeout=2)
    assert "sandbox stopped" in (tmp_path / "sandbox.log").read_text()


def test_stop_without_a_running_sandbox_says_so(tmp_path):
    result = _cli("stop", "--pid-file", str(tmp_path / "none.pid"), cwd=tmp_path)
    assert result.returncode == 0
    assert "no sandbox running" in result.stdout


def test_expected_for_an_unknown_cohort_fails_with_the_known_ones(tmp_path):
    result = _cli("expected", "nosuch1", cwd=tmp_path)
    assert result.returncode == 1
    assert "pwrusr1" in result.stderr


def test_summary_when_nothing_answers_fails_clearly(tmp_path):
    (port,) = _free_ports(1)
    result = _cli("summary", "--sendgrid-url", f"http://127.0.0.1:{port}", cwd=tmp_path)
    assert result.returncode == 1
    assert "cannot read the sandbox summary" in result.stderr


def test_summary_text_names_lists_with_member_counts():
    text = format_summary(
        {
            "cohorts": [{"id": "pwrusr1", "name": "Power users", "size": 1000}],
            "downloads_used": 3,
            "download_quota": 500,
            "sendgrid": {
                "lists": [
                    {"id": "l1", "name": "[Amplitude] Power users: pwrusr1", "member_count": 932}
                ],
                "contacts": 1100,
            },
        }
    )
    assert "downloads used: 3 of 500" in text
    assert "932 members  [Amplitude] Power users: pwrusr1" in text
    assert "1,100" in text


def _serve_args(*flags: str):
    from sandbox.__main__ import _parser

    return _parser().parse_args(["serve", *flags])


def test_job_latency_sets_all_three_delays_and_individual_flags_win():
    from sandbox.__main__ import serve_config

    config = serve_config(_serve_args("--job-latency", "30", "--removal-delay", "2"))
    assert config.import_delay_seconds == 30
    assert config.export_delay_seconds == 30
    assert config.removal_delay_seconds == 2


def test_without_latency_flags_the_sandbox_keeps_its_quick_defaults():
    from sandbox.__main__ import serve_config
    from sandbox.config import SandboxConfig

    config = serve_config(_serve_args("--export-delay", "5"))
    assert config.export_delay_seconds == 5
    assert config.import_delay_seconds == SandboxConfig.import_delay_seconds
    assert config.removal_delay_seconds == SandboxConfig.removal_delay_seconds


def test_negative_latency_is_refused():
    with pytest.raises(SystemExit):
        _serve_args("--job-latency", "-1")


def test_background_sandbox_keeps_an_import_job_pending_for_the_job_latency(tmp_path):
    from sandbox.config import SENDGRID_API_KEY

    amplitude, sendgrid, storage = _free_ports(3)
    pid_file = tmp_path / "sandbox.pid"
    served = _cli(
        "serve", "--background", "--job-latency", "600",
        "--amplitude-port", str(amplitude), "--sendgrid-port", str(sendgrid),
        "--storage-port", str(storage),
        "--pid-file", str(pid_file), "--log-file", str(tmp_path / "sandbox.log"),
        cwd=tmp_path,
    )  # fmt: skip
    try:
        assert served.returncode == 0, served.stderr
        api = f"http://127.0.0.1:{sendgrid}/v3/marketing/contacts"
        headers = {"Authorization": f"Bearer {SENDGRID_API_KEY}"}
        upsert = requests.put(
            api, json={"contacts": [{"email": "a@example.com"}]}, headers=headers, timeout=10
        )
        assert upsert.status_code == 202, upsert.text
        time.sleep(1)  # past the default 0.3 s, so a lost flag shows as "completed"
        job = requests.get(
            f"{api}/imports/{upsert.json()['job_id']}", headers=headers, timeout=10
        ).json()
        assert job["status"] == "pending"
    finally:
        _cli("stop", "--pid-file", str(pid_file), cwd=tmp_path)
    assert "600 s (import)" in (tmp_path / "sandbox.log").read_text()

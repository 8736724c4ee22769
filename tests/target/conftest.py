"""Run the target in-process against a sandbox and collect what it produced."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from target_sendgrid_contacts.target import TargetSendGridContacts

from sandbox.singer_input import as_file


@dataclass
class TargetRun:
    """What one target run left behind."""

    report: dict
    rejects: list[dict]
    log: str
    error: BaseException | None

    def entry(self, cohort_id: str) -> dict:
        return next(e for e in self.report["lists"] if e["cohort_id"] == cohort_id)


@pytest.fixture
def target_config(sandbox, tmp_path: Path) -> dict:
    return {
        "api_key": sandbox.sendgrid_api_key,
        "api_url": sandbox.sendgrid_url,
        "email_field": "user_properties.email",
        "first_name_field": "user_properties.first_name",
        "last_name_field": "user_properties.last_name",
        "job_poll_interval_seconds": 0.02,
        "report_path": str(tmp_path / "out" / "report.json"),
        "rejects_path": str(tmp_path / "out" / "rejects.jsonl"),
    }


@pytest.fixture
def run_target(target_config: dict, caplog) -> Callable[..., TargetRun]:
    """``run_target(lines, **overrides)``: run the target on Singer lines, catch its failure."""

    def run(lines: list[str], *, raise_errors: bool = False, **overrides: object) -> TargetRun:
        config = {**target_config, **overrides}
        report_path = Path(config["report_path"])
        rejects_path = Path(config["rejects_path"])
        report_path.unlink(missing_ok=True)
        rejects_path.unlink(missing_ok=True)
        caplog.clear()
        error = None
        with caplog.at_level(logging.INFO):
            try:
                TargetSendGridContacts(config=config).listen(as_file(lines))
            except Exception as exc:
                if raise_errors:
                    raise
                error = exc
        report = json.loads(report_path.read_text()) if report_path.exists() else {}
        rejects = (
            [json.loads(line) for line in rejects_path.read_text().splitlines() if line]
            if rejects_path.exists()
            else []
        )
        return TargetRun(report, rejects, caplog.text, error)

    return run

"""The real tap piped into the real target in-process, state kept between runs as by Meltano.

Meltano saves the last STATE line the target wrote; a run that wrote none leaves the saved state
as it was. Each ``Pipeline.run`` starts from that state, like the next scheduled run.
"""

from __future__ import annotations

import copy
import io
import json
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

from singer_sdk import Target
from target_sendgrid_contacts.target import TargetSendGridContacts

from tests.tap.harness import TapRun, export_requests, run_tap, tap_config

from .sync import CUSTOM_FIELDS


@dataclass
class PipelineRun:
    """What one tap | target run did."""

    tap: TapRun
    report: dict
    error: BaseException | None
    states: list[dict]  # STATE values the target wrote, in order
    downloads: int  # Amplitude request/{id} calls (each uses a download)

    def list_entry(self, name: str) -> dict:
        return next(e for e in self.report["lists"] if e["list_name"] == name)

    def pending_ids(self) -> list[str]:
        return [entry["cohort_id"] for entry in self.report["pending"]]


def partitions(state: dict | None) -> dict[str, dict]:
    """cohort_id -> its cohort_members partition in a STATE value."""
    found = ((state or {}).get("bookmarks", {}).get("cohort_members", {}) or {}).get(
        "partitions", []
    )
    return {p["context"]["cohort_id"]: p for p in found}


class Pipeline:
    """Runs tap-amplitude-cohort into target-sendgrid-contacts against one sandbox."""

    def __init__(self, sb, workdir: Path, cohort_ids: list[str], **target_config: object) -> None:
        self.sb = sb
        self.workdir = workdir
        self.cohort_ids = cohort_ids
        self.target_config = {
            "api_key": sb.sendgrid_api_key,
            "api_url": sb.sendgrid_url,
            "email_field": "user_properties.email",
            "first_name_field": "user_properties.first_name",
            "last_name_field": "user_properties.last_name",
            "custom_fields": CUSTOM_FIELDS,
            "create_missing_custom_fields": True,
            "job_poll_interval_seconds": 0.02,
            "job_timeout_seconds": 30,
            **target_config,
        }
        self.state: dict | None = None  # what Meltano keeps between runs
        self.runs = 0

    def tap_config(self, **overrides: object) -> dict:
        return tap_config(self.sb, cohort_ids=self.cohort_ids, **overrides)

    def run(self, *, tap: dict | None = None, target: dict | None = None) -> PipelineRun:
        self.runs += 1
        before = len(export_requests(self.sb))
        tap_run = run_tap(self.tap_config(**(tap or {})), state=self.state)
        downloads = len(export_requests(self.sb)) - before
        lines = "".join(json.dumps(m) + "\n" for m in tap_run.messages)
        report_path = self.workdir / f"report-{self.runs}.json"
        config = {**self.target_config, "report_path": str(report_path), **(target or {})}
        states: list[dict] = []
        error: BaseException | None = None
        # The SDK's own writer only prints the STATE it is handed; recording it there keeps
        # the target's whole path to it, and does not depend on pytest leaving sys.stdout be.
        with mock.patch.object(
            Target,
            "_write_state_message",
            lambda _target, state: states.append(copy.deepcopy(state)),
        ):
            try:
                TargetSendGridContacts(config=config).listen(io.StringIO(lines))
            except Exception as exc:  # noqa: BLE001 - some runs fail on purpose
                error = exc
        if states:
            self.state = states[-1]
        report = json.loads(report_path.read_text()) if report_path.exists() else {}
        return PipelineRun(tap_run, report, error, states, downloads)

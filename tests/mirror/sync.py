"""Drive the real target in-process against a sandbox with Singer input shaped like the tap's."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from target_sendgrid_contacts.list_names import DEFAULT_TEMPLATE, ListNamer
from target_sendgrid_contacts.target import TargetSendGridContacts

from sandbox.singer_input import InputShape, as_file, singer_lines

CUSTOM_FIELDS = {
    "plan": "user_properties.plan",
    "lifetime_value": "user_properties.lifetime_value",
    "signup_date": "user_properties.signup_date",
}
# The mirror suite's members carry the contact fields and the CUSTOM_FIELDS sources only.
MIRROR_SHAPE = InputShape(
    property_keys=("email", "first_name", "last_name", "plan", "lifetime_value", "signup_date"),
    last_computed="2026-11-26T10:00:00+00:00",
    failure_message="sandbox test: {status}",
    final_bookmarks={"test": True},
)


def singer_input(sb, cohort_ids: Iterable[str], **options: object) -> list[str]:
    """Singer lines in contract order for some sandbox cohorts (see ``singer_lines``).

    Args:
        sb: The sandbox (its generator supplies the members).
        cohort_ids: Cohorts to deliver.
        **options: ``status``, ``deliver``, ``member_count``, ``with_syncs``.
    """
    return list(singer_lines(sb.generator, cohort_ids, shape=MIRROR_SHAPE, **options))


def list_name(sb, cohort_id: str) -> str:
    """The list name the target gives a cohort's list by default."""
    namer = ListNamer(
        list_name=None, template=DEFAULT_TEMPLATE, stream="cohort_members", has_cohort_fields=True
    )
    return namer.name_for(cohort_id, sb.generator.spec(cohort_id).name)


def list_id(sb, cohort_id: str) -> str | None:
    found = sb.sendgrid.list_by_name(list_name(sb, cohort_id))
    return found["id"] if found else None


def list_emails(sb, cohort_id: str) -> set[str]:
    found = list_id(sb, cohort_id)
    return set() if found is None else set(sb.sendgrid.member_emails(found))


@dataclass
class RunResult:
    """What one target run did."""

    sandbox: object
    report: dict
    error: BaseException | None
    requests: list[dict] = field(default_factory=list)

    def count(self, method: str, path_prefix: str) -> int:
        return sum(
            1 for r in self.requests if r["method"] == method and r["path"].startswith(path_prefix)
        )

    def list_entry(self, name: str) -> dict:
        return next(e for e in self.report["lists"] if e["list_name"] == name)

    def list_entry_or_none(self, name: str) -> dict | None:
        return next((e for e in self.report.get("lists", []) if e["list_name"] == name), None)


class TargetRunner:
    """Runs TargetSendGridContacts on Singer lines against one sandbox, one run at a time."""

    def __init__(self, sb, workdir: Path, **config: object) -> None:
        self.sb = sb
        self.workdir = workdir
        self.config = {
            "api_key": sb.sendgrid_api_key,
            "api_url": sb.sendgrid_url,
            "email_field": "user_properties.email",
            "first_name_field": "user_properties.first_name",
            "last_name_field": "user_properties.last_name",
            "job_poll_interval_seconds": 0.02,
            "job_timeout_seconds": 30,
            **config,
        }
        self.runs = 0

    def run(self, lines: list[str], **config: object) -> RunResult:
        self.runs += 1
        report_path = self.workdir / f"report-{self.runs}.json"
        settings = {
            **self.config,
            "report_path": str(report_path),
            "rejects_path": str(self.workdir / f"rejects-{self.runs}.jsonl"),
            **config,
        }
        before = len(self.sb.requests)
        error: BaseException | None = None
        try:
            target = TargetSendGridContacts(config=settings)
            target.listen(as_file(lines))
        except Exception as exc:  # noqa: BLE001 - some tests check how a run fails
            error = exc
        report = json.loads(report_path.read_text()) if report_path.exists() else {}
        return RunResult(self.sb, report, error, list(self.sb.requests[before:]))

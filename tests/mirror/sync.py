"""Drive the real target in-process against a sandbox with Singer input shaped like the tap's."""

from __future__ import annotations

import io
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from target_sendgrid_contacts.list_names import DEFAULT_TEMPLATE, ListNamer
from target_sendgrid_contacts.target import TargetSendGridContacts

LAST_COMPUTED = "2026-11-26T10:00:00+00:00"
SYNCED_AT = "2026-11-26T12:00:00+00:00"
CUSTOM_FIELDS = {
    "plan": "user_properties.plan",
    "lifetime_value": "user_properties.lifetime_value",
    "signup_date": "user_properties.signup_date",
}
_NULLABLE_TEXT = {"type": ["string", "null"]}
MEMBERS_SCHEMA = {
    "type": "object",
    "properties": {
        "cohort_id": {"type": "string"},
        "cohort_name": {"type": "string"},
        "cohort_last_computed": {"type": ["string", "null"], "format": "date-time"},
        "amplitude_id": {"type": "integer"},
        "user_id": _NULLABLE_TEXT,
        "user_properties": {
            "type": ["object", "null"],
            "properties": {
                "email": _NULLABLE_TEXT,
                "first_name": _NULLABLE_TEXT,
                "last_name": _NULLABLE_TEXT,
                "plan": _NULLABLE_TEXT,
                "lifetime_value": {"type": ["number", "null"]},
                "signup_date": {"type": ["string", "null"], "format": "date"},
            },
        },
    },
}
SYNCS_SCHEMA = {
    "type": "object",
    "properties": {
        "cohort_id": {"type": "string"},
        "cohort_name": {"type": "string"},
        "cohort_last_computed": {"type": ["string", "null"], "format": "date-time"},
        "status": {"type": "string"},
        "member_count": {"type": "integer"},
        "message": _NULLABLE_TEXT,
        "synced_at": {"type": "string", "format": "date-time"},
    },
}


def _message(kind: str, stream: str, **body: object) -> str:
    return json.dumps({"type": kind, "stream": stream, **body})


def member_record(cohort_id: str, cohort_name: str, member: dict) -> dict:
    """A cohort_members record as the tap emits it for a sandbox generator member."""
    value = member.get("lifetime_value")
    return {
        "cohort_id": cohort_id,
        "cohort_name": cohort_name,
        "cohort_last_computed": LAST_COMPUTED,
        "amplitude_id": member["amplitude_id"],
        "user_id": member.get("user_id") or None,
        "user_properties": {
            "email": member.get("email"),
            "first_name": member.get("first_name"),
            "last_name": member.get("last_name"),
            "plan": member.get("plan"),
            "lifetime_value": float(value) if value not in (None, "") else None,
            "signup_date": member.get("signup_date"),
        },
    }


def singer_input(
    sb,
    cohort_ids: Iterable[str],
    *,
    status: dict[str, str] | None = None,
    deliver: dict[str, int] | None = None,
    member_count: dict[str, int] | None = None,
    with_syncs: bool = True,
) -> list[str]:
    """Singer lines in contract order: cohorts, cohort_members, then cohort_syncs.

    Args:
        sb: The sandbox (its generator supplies the members).
        cohort_ids: Cohorts to deliver.
        status: cohort_syncs status per cohort (``complete`` by default). An ``unchanged``
            cohort delivers no member.
        deliver: Deliver only the first N members of a cohort (cut short).
        member_count: member_count to report instead of the number delivered.
        with_syncs: False when the tap died before writing cohort_syncs.
    """
    status, deliver, member_count = status or {}, deliver or {}, member_count or {}
    cohort_ids = list(cohort_ids)
    lines = [_message("SCHEMA", "cohorts", schema={"type": "object", "properties": {
        "id": {"type": "string"}, "name": {"type": "string"}}}, key_properties=["id"])]
    for cid in cohort_ids:
        lines.append(_message("RECORD", "cohorts",
                              record={"id": cid, "name": sb.generator.spec(cid).name}))
    lines.append(_message("SCHEMA", "cohort_members", schema=MEMBERS_SCHEMA,
                          key_properties=["cohort_id", "amplitude_id"]))
    delivered: dict[str, int] = {}
    for cid in cohort_ids:
        name = sb.generator.spec(cid).name
        delivered[cid] = 0
        if status.get(cid, "complete") == "unchanged":
            continue
        for member in sb.generator.members(cid):
            if cid in deliver and delivered[cid] >= deliver[cid]:
                break
            lines.append(_message("RECORD", "cohort_members",
                                  record=member_record(cid, name, member)))
            delivered[cid] += 1
    if with_syncs:
        lines.append(_message("SCHEMA", "cohort_syncs", schema=SYNCS_SCHEMA,
                              key_properties=["cohort_id"]))
        for cid in cohort_ids:
            state = status.get(cid, "complete")
            lines.append(_message("RECORD", "cohort_syncs", record={
                "cohort_id": cid,
                "cohort_name": sb.generator.spec(cid).name,
                "cohort_last_computed": LAST_COMPUTED,
                "status": state,
                "member_count": member_count.get(cid, delivered[cid]),
                "message": None if state == "complete" else f"sandbox test: {state}",
                "synced_at": SYNCED_AT,
            }))
    lines.append(json.dumps({"type": "STATE", "value": {"bookmarks": {"test": True}}}))
    return lines


def list_name(sb, cohort_id: str) -> str:
    """The list name the target gives a cohort's list by default."""
    namer = ListNamer(list_name=None, template=DEFAULT_TEMPLATE, stream="cohort_members",
                      has_cohort_fields=True)
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
        return sum(1 for r in self.requests
                   if r["method"] == method and r["path"].startswith(path_prefix))

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
        settings = {**self.config, "report_path": str(report_path),
                    "rejects_path": str(self.workdir / f"rejects-{self.runs}.jsonl"), **config}
        before = len(self.sb.requests)
        error: BaseException | None = None
        try:
            target = TargetSendGridContacts(config=settings)
            target.listen(io.StringIO("\n".join(lines) + "\n"))
        except Exception as exc:  # noqa: BLE001 - some tests check how a run fails
            error = exc
        report = json.loads(report_path.read_text()) if report_path.exists() else {}
        return RunResult(self.sb, report, error, list(self.sb.requests[before:]))

"""Build Singer input for the target the way tap-amplitude-cohort emits it (contract streams)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterable

from sandbox.generator import PROPERTY_KEYS

MEMBERS_SCHEMA = {
    "type": "object",
    "properties": {
        "cohort_id": {"type": "string"},
        "cohort_name": {"type": "string"},
        "cohort_last_computed": {"type": ["string", "null"], "format": "date-time"},
        "amplitude_id": {"type": "integer"},
        "user_id": {"type": ["string", "null"]},
        "user_properties": {
            "type": ["object", "null"],
            "properties": {
                "email": {"type": ["string", "null"]},
                "first_name": {"type": ["string", "null"]},
                "last_name": {"type": ["string", "null"]},
                "country": {"type": ["string", "null"]},
                "plan": {"type": ["string", "null"]},
                "signup_date": {"type": ["string", "null"], "format": "date"},
                "lifetime_value": {"type": ["number", "null"]},
                "company": {"type": ["string", "null"]},
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
        "message": {"type": ["string", "null"]},
        "synced_at": {"type": "string", "format": "date-time"},
    },
}
COHORTS_SCHEMA = {
    "type": "object",
    "properties": {"id": {"type": "string"}, "name": {"type": "string"}},
}
LAST_COMPUTED = "2026-11-20T10:00:00+00:00"


def schema(stream: str, schema_: dict, keys: list[str]) -> str:
    return json.dumps(
        {"type": "SCHEMA", "stream": stream, "schema": schema_, "key_properties": keys}
    )


def record(stream: str, rec: dict) -> str:
    return json.dumps({"type": "RECORD", "stream": stream, "record": rec})


def member_record(cohort_id: str, cohort_name: str, member: dict) -> dict:
    props = {k: member[k] for k in PROPERTY_KEYS}
    props["lifetime_value"] = float(props["lifetime_value"])
    return {
        "cohort_id": cohort_id,
        "cohort_name": cohort_name,
        "cohort_last_computed": LAST_COMPUTED,
        "amplitude_id": member["amplitude_id"],
        "user_id": member["user_id"] or None,
        "user_properties": props,
    }


def sync_record(cohort_id: str, cohort_name: str, count: int, status: str = "complete") -> dict:
    return {
        "cohort_id": cohort_id,
        "cohort_name": cohort_name,
        "cohort_last_computed": LAST_COMPUTED,
        "status": status,
        "member_count": count,
        "message": None if status == "complete" else "export failed",
        "synced_at": "2026-11-26T12:00:00+00:00",
    }


def cohort_lines(
    generator,
    cohort_ids: Iterable[str],
    *,
    status: dict[str, str] | None = None,
    count_offset: dict[str, int] | None = None,
    with_syncs: bool = True,
) -> list[str]:
    """The three streams in contract order for some sandbox cohorts."""
    status = status or {}
    count_offset = count_offset or {}
    lines = [schema("cohorts", COHORTS_SCHEMA, ["id"])]
    cohort_ids = list(cohort_ids)
    for cid in cohort_ids:
        lines.append(record("cohorts", {"id": cid, "name": generator.spec(cid).name}))
    lines.append(schema("cohort_members", MEMBERS_SCHEMA, ["cohort_id", "amplitude_id"]))
    counts = {}
    for cid in cohort_ids:
        name = generator.spec(cid).name
        counts[cid] = 0
        if status.get(cid, "complete") == "unchanged":
            continue
        for member in generator.members(cid):
            lines.append(record("cohort_members", member_record(cid, name, member)))
            counts[cid] += 1
    if with_syncs:
        lines.append(schema("cohort_syncs", SYNCS_SCHEMA, ["cohort_id"]))
        for cid in cohort_ids:
            name = generator.spec(cid).name
            lines.append(
                record(
                    "cohort_syncs",
                    sync_record(cid, name, counts[cid] + count_offset.get(cid, 0),
                                status.get(cid, "complete")),
                )
            )
    lines.append(json.dumps({"type": "STATE", "value": {"bookmarks": {"done": True}}}))
    return lines


def as_file(lines: list[str]) -> io.StringIO:
    return io.StringIO("\n".join(lines) + "\n")

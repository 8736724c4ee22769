"""Singer input shaped like the output of tap-amplitude-cohort, for tests and benchmarks.

The target and mirror suites feed slightly different inputs (which user properties a member
carries, the cohorts' last-computed time, the failure message, the final STATE); an
``InputShape`` holds those differences so that each suite keeps its exact input.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from sandbox.generator import PROPERTY_KEYS, CohortGenerator

_NULLABLE_TEXT = {"type": ["string", "null"]}
# JSON schema of the user properties that are not nullable text.
_PROPERTY_TYPES = {
    "signup_date": {"type": ["string", "null"], "format": "date"},
    "lifetime_value": {"type": ["number", "null"]},
}
SYNCED_AT = "2026-11-26T12:00:00+00:00"
# The cohort fields every cohort_members and cohort_syncs record starts with.
_COHORT_FIELDS = {
    "cohort_id": {"type": "string"},
    "cohort_name": {"type": "string"},
    "cohort_last_computed": {"type": ["string", "null"], "format": "date-time"},
}
SYNCS_SCHEMA = {
    "type": "object",
    "properties": {
        **_COHORT_FIELDS,
        "status": {"type": "string"},
        "member_count": {"type": "integer"},
        "message": _NULLABLE_TEXT,
        "synced_at": {"type": "string", "format": "date-time"},
    },
}
COHORTS_SCHEMA = {
    "type": "object",
    "properties": {"id": {"type": "string"}, "name": {"type": "string"}},
}


def members_schema(property_keys: Iterable[str]) -> dict:
    """The cohort_members schema for members carrying these user properties (in this order)."""
    return {
        "type": "object",
        "properties": {
            **_COHORT_FIELDS,
            "amplitude_id": {"type": "integer"},
            "user_id": _NULLABLE_TEXT,
            "user_properties": {
                "type": ["object", "null"],
                "properties": {k: _PROPERTY_TYPES.get(k, _NULLABLE_TEXT) for k in property_keys},
            },
        },
    }


def schema(stream: str, schema_: dict, keys: list[str]) -> str:
    """A SCHEMA message line."""
    return json.dumps(
        {"type": "SCHEMA", "stream": stream, "schema": schema_, "key_properties": keys}
    )


def record(stream: str, rec: dict) -> str:
    """A RECORD message line."""
    return json.dumps({"type": "RECORD", "stream": stream, "record": rec})


@dataclass(frozen=True)
class InputShape:
    """What differs between the Singer inputs of two suites.

    Attributes:
        property_keys: User properties a member record carries, in this order.
        last_computed: Every record's ``cohort_last_computed``.
        failure_message: cohort_syncs ``message`` of a cohort not ``complete`` (``{status}``
            is replaced by its status).
        final_bookmarks: The bookmarks of the STATE message that ends the input.
    """

    property_keys: tuple[str, ...]
    last_computed: str
    failure_message: str
    final_bookmarks: dict

    @property
    def members_schema(self) -> dict:
        """The cohort_members schema for these property keys."""
        return members_schema(self.property_keys)

    def member_record(self, cohort_id: str, cohort_name: str, member: dict) -> dict:
        """A cohort_members record as the tap emits it for a sandbox generator member."""
        props = {k: member[k] for k in self.property_keys}
        if "lifetime_value" in props:
            props["lifetime_value"] = float(props["lifetime_value"])
        return {
            "cohort_id": cohort_id,
            "cohort_name": cohort_name,
            "cohort_last_computed": self.last_computed,
            "amplitude_id": member["amplitude_id"],
            "user_id": member["user_id"] or None,
            "user_properties": props,
        }

    def sync_record(self, cohort_id: str, cohort_name: str, count: int, status: str) -> dict:
        """A cohort_syncs record as the tap emits it."""
        return {
            "cohort_id": cohort_id,
            "cohort_name": cohort_name,
            "cohort_last_computed": self.last_computed,
            "status": status,
            "member_count": count,
            "message": None if status == "complete" else self.failure_message.format(status=status),
            "synced_at": SYNCED_AT,
        }


# The target suite's input: every generator property.
TARGET_SHAPE = InputShape(
    property_keys=PROPERTY_KEYS,
    last_computed="2026-11-20T10:00:00+00:00",
    failure_message="export failed",
    final_bookmarks={"done": True},
)
MEMBERS_SCHEMA = TARGET_SHAPE.members_schema
LAST_COMPUTED = TARGET_SHAPE.last_computed
member_record = TARGET_SHAPE.member_record


def singer_lines(
    generator: CohortGenerator,
    cohort_ids: Iterable[str],
    *,
    shape: InputShape = TARGET_SHAPE,
    status: dict[str, str] | None = None,
    deliver: dict[str, int] | None = None,
    member_count: dict[str, int] | None = None,
    count_offset: dict[str, int] | None = None,
    with_syncs: bool = True,
) -> Iterator[str]:
    """Singer lines in contract order: cohorts, cohort_members, then cohort_syncs (streamed).

    Args:
        generator: The sandbox generator (it supplies the cohorts' names and members).
        cohort_ids: Cohorts to deliver.
        shape: What the records carry.
        status: cohort_syncs status per cohort (``complete`` by default). An ``unchanged``
            cohort delivers no member.
        deliver: Deliver only the first N members of a cohort (cut short).
        member_count: member_count to report instead of the number delivered.
        count_offset: Added to the member_count reported (a count that does not match).
        with_syncs: False when the tap died before writing cohort_syncs.

    Yields:
        One Singer message a line, without its line break.
    """
    status, deliver = status or {}, deliver or {}
    member_count, count_offset = member_count or {}, count_offset or {}
    cohort_ids = list(cohort_ids)
    yield schema("cohorts", COHORTS_SCHEMA, ["id"])
    for cid in cohort_ids:
        yield record("cohorts", {"id": cid, "name": generator.spec(cid).name})
    yield schema("cohort_members", shape.members_schema, ["cohort_id", "amplitude_id"])
    delivered: dict[str, int] = {}
    for cid in cohort_ids:
        name = generator.spec(cid).name
        delivered[cid] = 0
        if status.get(cid, "complete") == "unchanged":
            continue
        for member in generator.members(cid):
            if cid in deliver and delivered[cid] >= deliver[cid]:
                break
            yield record("cohort_members", shape.member_record(cid, name, member))
            delivered[cid] += 1
    if with_syncs:
        yield schema("cohort_syncs", SYNCS_SCHEMA, ["cohort_id"])
        for cid in cohort_ids:
            count = member_count.get(cid, delivered[cid] + count_offset.get(cid, 0))
            yield record(
                "cohort_syncs",
                shape.sync_record(
                    cid, generator.spec(cid).name, count, status.get(cid, "complete")
                ),
            )
    yield json.dumps({"type": "STATE", "value": {"bookmarks": shape.final_bookmarks}})


def cohort_lines(
    generator: CohortGenerator, cohort_ids: Iterable[str], **options: Any
) -> list[str]:
    """``singer_lines`` as a list (the target suite's shape unless ``shape`` is given)."""
    return list(singer_lines(generator, cohort_ids, **options))


def as_file(lines: list[str]) -> io.StringIO:
    """The lines as a Singer input file (one message a line)."""
    return io.StringIO("\n".join(lines) + "\n")

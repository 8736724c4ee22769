"""STATE never gets ahead of SendGrid, also when the SDK drains mid-run (old records)."""

from __future__ import annotations

import gzip
import json
import sys
from collections.abc import Callable

import pytest
from target_sendgrid_contacts.target import TargetSendGridContacts

from sandbox.singer_input import (
    MEMBERS_SCHEMA,
    SYNCS_SCHEMA,
    TARGET_SHAPE,
    as_file,
    member_record,
    record,
    schema,
)

pytestmark = pytest.mark.integration

COHORT = "pwrusr1"


class StateWatcher:
    """Stands in for stdout: for each STATE line, notes what the list held when it was written."""

    def __init__(self, list_members: Callable[[], set[str]]) -> None:
        self._list_members = list_members
        self.written: list[tuple[dict, set[str]]] = []

    def write(self, text: str) -> int:
        for line in text.splitlines():
            if line.strip():
                self.written.append((json.loads(line), self._list_members()))
        return len(text)

    def flush(self) -> None:
        """Nothing is buffered."""


def _valid_members(sandbox, count: int) -> list[dict]:
    return [m for m in sandbox.generator.members(COHORT) if m["category"] == "valid"][:count]


def _lines(sandbox, *parts: list[dict] | dict) -> list[str]:
    """Members, and STATE messages (dicts) between them, in the given order."""
    name = sandbox.generator.spec(COHORT).name
    lines = [schema("cohort_members", MEMBERS_SCHEMA, ["cohort_id", "amplitude_id"])]
    for part in parts:
        if isinstance(part, dict):
            lines.append(json.dumps({"type": "STATE", "value": part}))
        else:
            lines += [record("cohort_members", member_record(COHORT, name, m)) for m in part]
    return lines


@pytest.fixture
def watch_states(sandbox, target_config, monkeypatch):
    """``run(lines, **overrides)``: run the target draining after every record; return
    (STATE lines with the list's members at the time each was written, the run's error)."""
    monkeypatch.setattr(TargetSendGridContacts, "_MAX_RECORD_AGE_IN_MINUTES", 0.0)
    list_name = f"[Amplitude] {sandbox.generator.spec(COHORT).name}: {COHORT}"

    def members() -> set[str]:
        found = sandbox.sendgrid.list_by_name(list_name)
        return set() if found is None else set(sandbox.sendgrid.member_emails(found["id"]))

    def run(lines: list[str], **overrides: object) -> tuple[list[tuple[dict, set[str]]], object]:
        watcher = StateWatcher(members)
        error = None
        with monkeypatch.context() as patch:
            patch.setattr(sys, "stdout", watcher)
            try:
                target = TargetSendGridContacts(config={**target_config, **overrides})
                target.listen(as_file(lines))
            except Exception as exc:  # noqa: BLE001 - some tests check that a run fails
                error = exc
        return watcher.written, error

    return run


def _emails(members: list[dict]) -> set[str]:
    return {m["expected_email"] for m in members}


def test_a_mid_run_state_is_written_only_once_its_contacts_are_in_the_list(sandbox, watch_states):
    members = _valid_members(sandbox, 12)
    first, second = members[:6], members[6:]
    lines = _lines(sandbox, first, {"bookmarks": {"part": 1}}, second, {"bookmarks": {"part": 2}})

    written, error = watch_states(lines)

    assert error is None
    states = [state["bookmarks"]["part"] for state, _ in written]
    assert states[0] == 1  # written mid-run, while part 2 was still arriving
    assert states[-1] == 2
    for state, in_list in written:
        received = first if state["bookmarks"]["part"] == 1 else members
        assert _emails(received) <= in_list, f"STATE {state} left before its contacts"


def test_with_on_invalid_email_fail_state_waits_for_the_end(sandbox, watch_states):
    members = _valid_members(sandbox, 12)
    lines = _lines(
        sandbox, members[:6], {"bookmarks": {"part": 1}}, members[6:], {"bookmarks": {"part": 2}}
    )

    written, error = watch_states(lines, on_invalid_email="fail")

    assert error is None
    assert written, "the final STATE is written"
    assert [state for state, _ in written] == [{"bookmarks": {"part": 2}}]
    assert all(_emails(members) <= in_list for _, in_list in written)


def test_with_on_invalid_email_fail_an_invalid_email_lets_no_state_out(sandbox, watch_states):
    members = _valid_members(sandbox, 12)
    invalid = next(
        m
        for m in sandbox.generator.members(COHORT)
        if m["category"] in {"invalid_email", "missing_email"}
    )
    lines = _lines(
        sandbox,
        members[:6],
        {"bookmarks": {"part": 1}},
        members[6:9],
        [invalid],
        members[9:],
        {"bookmarks": {"part": 2}},
    )

    written, error = watch_states(lines, on_invalid_email="fail")

    assert error is not None
    assert written == []


def test_no_state_when_the_end_of_the_run_fails(sandbox, watch_states):
    members = _valid_members(sandbox, 12)
    for member in members[:3]:
        member["email"] = "reject+" + member["email"].strip()  # the sandbox refuses these
    lines = _lines(sandbox, members, {"bookmarks": {"part": 1}})

    written, error = watch_states(lines)

    assert error is not None
    assert "refused 3 contacts" in str(error)
    assert written == []


def test_a_dry_run_writes_no_state(sandbox, watch_states):
    # Nothing reached SendGrid: saved state would make an incremental tap skip these records.
    members = _valid_members(sandbox, 12)
    lines = _lines(
        sandbox, members[:6], {"bookmarks": {"part": 1}}, members[6:], {"bookmarks": {"part": 2}}
    )

    written, error = watch_states(lines, dry_run=True)

    assert error is None
    assert written == []
    assert (
        sandbox.sendgrid.list_by_name(
            f"[Amplitude] {sandbox.generator.spec(COHORT).name}: {COHORT}"
        )
        is None
    )


def _partition_state(last_computed: str, **extra: object) -> dict:
    return {
        "bookmarks": {
            "cohort_members": {
                "partitions": [
                    {
                        "context": {"cohort_id": COHORT},
                        "last_computed": last_computed,
                        "export_options": "props=1",
                        **extra,
                    }
                ]
            }
        }
    }


def test_an_intermediate_state_marks_the_cohort_pending_until_its_list_is_mirrored(
    sandbox, watch_states
):
    # A tap that moves the bookmark before the end: the STATE written mid-run must not let a
    # stop before removal skip the cohort next time.
    members = _valid_members(sandbox, 12)
    name = sandbox.generator.spec(COHORT).name
    bookmark = _partition_state("2026-11-30T10:00:00+00:00")
    lines = [
        *_lines(sandbox, members[:6], bookmark, members[6:]),
        schema("cohort_syncs", SYNCS_SCHEMA, ["cohort_id"]),
        record("cohort_syncs", TARGET_SHAPE.sync_record(COHORT, name, 12, "complete")),
        json.dumps(
            {"type": "STATE", "value": _partition_state("2026-11-30T10:00:00+00:00", other="kept")}
        ),
    ]

    written, error = watch_states(lines)

    assert error is None
    (first, _), *_, (last, _) = written
    (mid,) = first["bookmarks"]["cohort_members"]["partitions"]
    assert mid["pending"]["reason"].endswith("the run had not finished when this STATE was written")
    assert mid["last_computed"] == "2026-11-30T10:00:00+00:00"
    (final,) = last["bookmarks"]["cohort_members"]["partitions"]
    assert "pending" not in final
    assert final["other"] == "kept"


def test_state_without_cohort_partitions_passes_through_unchanged(sandbox, watch_states):
    members = _valid_members(sandbox, 6)
    other_tap = {"bookmarks": {"signups": {"replication_key_value": "2026-11-01"}}}
    written, error = watch_states(_lines(sandbox, members, other_tap))
    assert error is None
    assert [state for state, _ in written] == [other_tap]


def test_a_state_after_a_batch_is_written_only_once_its_contacts_are_in_the_list(
    sandbox, watch_states, tmp_path
):
    members = _valid_members(sandbox, 12)
    name = sandbox.generator.spec(COHORT).name
    lines = [schema("cohort_members", MEMBERS_SCHEMA, ["cohort_id", "amplitude_id"])]
    for part, chunk in enumerate((members[:6], members[6:]), start=1):
        path = tmp_path / f"part-{part}.json.gz"
        path.write_bytes(
            gzip.compress(
                "".join(json.dumps(member_record(COHORT, name, m)) + "\n" for m in chunk).encode()
            )
        )
        lines.append(
            json.dumps(
                {
                    "type": "BATCH",
                    "stream": "cohort_members",
                    "encoding": {"format": "jsonl", "compression": "gzip"},
                    "manifest": [path.as_uri()],
                }
            )
        )
        lines.append(json.dumps({"type": "STATE", "value": {"bookmarks": {"part": part}}}))

    written, error = watch_states(lines)

    assert error is None
    assert [state["bookmarks"]["part"] for state, _ in written][-1] == 2
    for state, in_list in written:
        received = members[:6] if state["bookmarks"]["part"] == 1 else members
        assert _emails(received) <= in_list, f"STATE {state} left before its contacts"
    assert list(tmp_path.glob("part-*")) == []

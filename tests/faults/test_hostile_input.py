"""Hostile input beside the fault matrix: odd records, each accounted for, none logged.

One target run against the sandbox takes every record below (plus a valid neighbour after each,
so that a record that broke the run would show); each case then checks what became of its record:
on the list, or rejected with the expected reason, with the counts adding up and no address, secret
or raw line in the log.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
from target_sendgrid_contacts.target import TargetSendGridContacts

from sandbox import Sandbox
from sandbox.singer_input import MEMBERS_SCHEMA, as_file, record, schema
from tests.conftest import FAST

pytestmark = [pytest.mark.integration, pytest.mark.faults]

COHORT, NAME = "hostile1", "Hostile input"
UPSERTED = "upserted"
LONG = "x" * 300

# (case id, email, first_name, last_name, expected outcome)
CASES: list[tuple[str, object, object, object, str]] = [
    ("plain", "ann.plain@example.com", "Ann", "Plain", UPSERTED),
    ("upper-case", "BOB.UPPER@EXAMPLE.COM", "Bob", "Upper", UPSERTED),
    ("padded", "  carl.padded@example.com\t", "Carl", "Padded", UPSERTED),
    ("case-duplicate", "ANN.PLAIN@example.com", "Ann", "Again", "duplicate_email"),
    ("padded-duplicate", " ann.plain@example.com ", "Ann", "Third", "duplicate_email"),
    ("missing", None, "No", "Email", "missing_email"),
    ("empty", "", "Empty", "Email", "missing_email"),
    ("blank", "   ", "Blank", "Email", "missing_email"),
    ("no-at", "dora.example.com", "Dora", "NoAt", "invalid_email"),
    ("two-ats", "eve@@example.com", "Eve", "TwoAts", "invalid_email"),
    ("no-domain", "fay@", "Fay", "NoDomain", "invalid_email"),
    ("no-tld", "gus@example", "Gus", "NoTld", "invalid_email"),
    ("double-dot", "hal@example..com", "Hal", "DoubleDot", "invalid_email"),
    ("leading-dot", ".ida@example.com", "Ida", "LeadingDot", "invalid_email"),
    ("space-inside", "jo e@example.com", "Joe", "Space", "invalid_email"),
    ("comma", "kim@example.com,", "Kim", "Comma", "invalid_email"),
    ("two-addresses", "lea@example.com, max@example.com", "Lea", "Two", "invalid_email"),
    ("newline", "ned@example.com\nBcc: x@example.com", "Ned", "Newline", "invalid_email"),
    ("nul-byte", "ola\x00@example.com", "Ola", "Nul", "invalid_email"),
    ("local-part-65", "p" * 65 + "@example.com", "Pia", "Long", "invalid_email"),
    ("address-300", LONG + "@example.com", "Quin", "Longer", "invalid_email"),
    ("reserved-tld", "rob@host.test", "Rob", "Test", "invalid_email"),
    ("non-ascii-local", "josé@example.com", "José", "Accent", "invalid_email"),
    ("non-ascii-domain", "sam@münchen.de", "Sam", "Idn", "invalid_email"),
    ("fullwidth", "ＴＯＭ@example.com", "Tom", "Wide", "invalid_email"),
    ("html", "<script>@example.com", "Uma", "Html", "invalid_email"),
    ("sql", "vic'; DROP TABLE contacts;--@example.com", "Vic", "Sql", "invalid_email"),
    ("number", 42, "Wes", "Number", "invalid_email"),
    ("boolean", True, "Xia", "Bool", "invalid_email"),
    ("list", ["yan@example.com"], "Yan", "List", "invalid_email"),
    ("object", {"address": "zed@example.com"}, "Zed", "Object", "invalid_email"),
    ("punycode-domain", "abe@xn--mnchen-3ya.de", "Abe", "Puny", UPSERTED),
    ("plus-tag", "bea+news@example.com", "Bea", "Plus", UPSERTED),
    ("apostrophe", "o'connor@example.com", "Cal", "O'Connor", UPSERTED),
    ("name-60", "dee.long@example.com", "D" * 60, "L" * 60, UPSERTED),
    ("name-none", "eli.nonames@example.com", None, None, UPSERTED),
    ("name-blank", "fin.blank@example.com", "   ", "\t", UPSERTED),
    ("name-emoji", "gia.emoji@example.com", "Gia 🎉", "👩‍💻", UPSERTED),
    ("name-rtl", "hana.rtl@example.com", "هناء", "\u202eevil", UPSERTED),
    ("name-cjk", "ivo.cjk@example.com", "山田", "太郎", UPSERTED),
    ("name-control", "jan.control@example.com", "Jan\x00\x1b[31m", "Del\x7f", UPSERTED),
    ("name-number", "kai.number@example.com", 7, 2.5, UPSERTED),
    ("name-boolean", "lou.bool@example.com", True, False, UPSERTED),
    ("name-list", "mia.list@example.com", ["Ann", "Marie"], {"family": "Smith"}, UPSERTED),
    ("name-html", "noa.html@example.com", "<b>Noa</b>", "&amp;", UPSERTED),
    ("name-newline", "oli.newline@example.com", "Oli\nINFO fake log line", "X", UPSERTED),
]
CASE_IDS = [case[0] for case in CASES]


def _member(n: int, email: object, first: object, last: object) -> dict:
    props: dict = {"email": email, "first_name": first, "last_name": last, "plan": "pro"}
    return {
        "cohort_id": COHORT,
        "cohort_name": NAME,
        "cohort_last_computed": None,
        "amplitude_id": n,
        "user_id": f"u{n}",
        "user_properties": props,
    }


def _lines() -> list[str]:
    lines = [schema("cohort_members", MEMBERS_SCHEMA, ["cohort_id", "amplitude_id"])]
    for n, (case_id, email, first, last, _) in enumerate(CASES):
        lines.append(record("cohort_members", _member(2 * n, email, first, last)))
        # A valid neighbour: a hostile record must not take the next one down with it.
        lines.append(
            record(
                "cohort_members",
                _member(2 * n + 1, f"neighbour.{case_id}@example.org", "Nea", "Bour"),
            )
        )
    return lines


class Outcome:
    """The run's result, shared by every case."""

    def __init__(
        self, sb: Sandbox, report: dict, rejects: list[dict], log: str, error: BaseException | None
    ) -> None:
        self.sb, self.report, self.rejects, self.log, self.error = sb, report, rejects, log, error
        found = sb.sendgrid.list_by_name("Hostile")
        self.members = set(sb.sendgrid.member_emails(found["id"])) if found else set()
        self.by_id = {r["keys"].get("amplitude_id"): r for r in rejects}


@pytest.fixture(scope="module")
def outcome(tmp_path_factory) -> Iterator[Outcome]:
    out = tmp_path_factory.mktemp("hostile")
    with Sandbox(FAST) as sb:
        config = {
            "api_key": sb.sendgrid_api_key,
            "api_url": sb.sendgrid_url,
            "email_field": "user_properties.email",
            "first_name_field": "user_properties.first_name",
            "last_name_field": "user_properties.last_name",
            "list_name": "Hostile",
            "job_poll_interval_seconds": 0.02,
            "report_path": str(out / "report.json"),
            "rejects_path": str(out / "rejects.jsonl"),
        }
        handler = _Lines()
        root = logging.getLogger()
        root.addHandler(handler)
        old = root.level
        root.setLevel(logging.INFO)
        error = None
        try:
            TargetSendGridContacts(config=config).listen(as_file(_lines()))
        except Exception as exc:  # noqa: BLE001 - a case checks that there is none
            error = exc
        finally:
            root.removeHandler(handler)
            root.setLevel(old)
        report = json.loads((out / "report.json").read_text())
        rejects = [
            json.loads(line) for line in (out / "rejects.jsonl").read_text().splitlines() if line
        ]
        yield Outcome(sb, report, rejects, "\n".join(handler.lines), error)


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def test_the_run_succeeds_and_every_record_is_accounted_for(outcome):
    assert outcome.error is None
    totals = outcome.report["totals"]
    assert totals["received"] == 2 * len(CASES)
    assert totals["received"] == totals["upserted"] + totals["unchanged"] + totals["rejected"]
    assert totals["adds_up"] is True
    assert len(outcome.rejects) == totals["rejected"]
    assert all(r["reason"] and r["message"] for r in outcome.rejects)
    want_upserted = sum(1 for c in CASES if c[4] == UPSERTED) + len(CASES)
    assert totals["upserted"] == want_upserted
    assert len(outcome.members) == want_upserted


@pytest.mark.parametrize(("case_id", "email", "first", "last", "expected"), CASES, ids=CASE_IDS)
def test_each_hostile_record_ends_where_it_should(outcome, case_id, email, first, last, expected):
    n = CASE_IDS.index(case_id)
    reject = outcome.by_id.get(2 * n)
    if expected == UPSERTED:
        assert reject is None, reject
        assert str(email).strip().lower() in outcome.members
    else:
        assert reject is not None, f"record {case_id} is neither on the list nor rejected"
        assert reject["reason"] == expected
    assert f"neighbour.{case_id}@example.org" in outcome.members


def test_no_address_secret_or_raw_value_reaches_the_log(outcome):
    log = outcome.log.lower()
    assert outcome.sb.sendgrid_api_key.lower() not in log
    for case_id, email, *_ in CASES:
        if isinstance(email, str) and email.strip():
            assert email.strip().lower() not in log, case_id
        assert f"neighbour.{case_id}@example.org" not in log
    assert "drop table" not in log
    assert "fake log line" not in log

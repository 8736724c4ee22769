"""A bad input line stops the target with its number, stream and problem, never its content."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from sandbox.singer_input import MEMBERS_SCHEMA, schema

pytestmark = pytest.mark.integration

CLI = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "target-sendgrid-contacts"
SECRET_EMAIL = "ann.secret@example.com"
MEMBER = {
    "cohort_id": "c1",
    "cohort_name": "Buyers",
    "amplitude_id": 1,
    "user_properties": {"email": SECRET_EMAIL, "first_name": "Annabel", "city": "Reykjavik"},
}
GOOD = [
    schema("cohort_members", MEMBERS_SCHEMA, ["cohort_id", "amplitude_id"]),
    json.dumps({"type": "RECORD", "stream": "cohort_members", "record": MEMBER}),
    json.dumps({"type": "STATE", "value": {"bookmarks": {"x": 1}}}),
]
BAD_RECORD = json.dumps({"type": "RECORD", "stream": "cohort_members", "record": MEMBER})
BIRTHDAY_SCHEMA = {
    "type": "object",
    "properties": {"email": {"type": "string"}, "born": {"type": "string", "format": "date-time"}},
}

CASES = {
    "not JSON": (
        [*GOOD, BAD_RECORD[:-40] + "}}}} x"],
        "\n",
        "Input line 4 (stream 'cohort_members'): not valid JSON",
    ),
    "truncated last line": (
        [*GOOD, BAD_RECORD[:60]],
        "",
        "Input line 4 (stream 'cohort_members'): the last line is cut short",
    ),
    "a message without its record": (
        [*GOOD, json.dumps({"type": "RECORD", "stream": "cohort_members", "rec": MEMBER})],
        "\n",
        "Input line 4 (stream 'cohort_members'): the RECORD lacks record",
    ),
    "an unknown message type": (
        [*GOOD, json.dumps({"type": "FANCY", "record": MEMBER})],
        "\n",
        "Input line 4: message type 'FANCY' is not a Singer message this target handles",
    ),
    "ACTIVATE_VERSION": (
        [
            *GOOD,
            json.dumps(
                {
                    "type": "ACTIVATE_VERSION",
                    "stream": "cohort_members",
                    "version": 1,
                    "note": SECRET_EMAIL,
                }
            ),
        ],
        "\n",
        "Input line 4 (stream 'cohort_members'): ACTIVATE_VERSION is not supported",
    ),
    "a date-time holding an email": (
        [
            schema("people", BIRTHDAY_SCHEMA, []),
            json.dumps(
                {
                    "type": "RECORD",
                    "stream": "people",
                    "record": {"email": "x@example.com", "born": SECRET_EMAIL},
                }
            ),
        ],
        "\n",
        "Input line 2 (stream 'people'): field 'born' is not a valid date or date-time",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_bad_line_fails_by_number_without_personal_data_and_writes_no_state(
    case, sandbox, tmp_path
):
    lines, ending, expected = CASES[case]
    config = tmp_path / "config.json"
    config.write_text(
        json.dumps(
            {
                "api_key": sandbox.sendgrid_api_key,
                "api_url": sandbox.sendgrid_url,
                "email_field": "user_properties.email",
                "first_name_field": "user_properties.first_name",
                "report_path": str(tmp_path / "report.json"),
            }
        )
    )
    if not CLI.exists():
        pytest.skip("run scripts/setup.sh first")
    done = subprocess.run(
        [str(CLI), "--config", str(config)],
        input="\n".join(lines) + ending,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    assert expected in done.stderr
    for private in (SECRET_EMAIL, "Annabel", "Reykjavik"):
        assert private not in done.stderr
    assert done.stdout == ""  # no STATE
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["error"].startswith(expected.split(":")[0])

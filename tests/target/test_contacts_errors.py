"""Reading what SendGrid refused: whole-request 400s and job errors files (format unverified)."""

from __future__ import annotations

import gzip
import json

import pytest
from target_sendgrid_contacts.sendgrid.contacts import (
    is_field_not_ready,
    parse_errors_file,
    refused_positions,
)
from target_sendgrid_contacts.sendgrid.errors import SendGridAPIError

CSV = b"email,error\nreject+a@x.co,refused\nreject+b@x.co,bad\n"


@pytest.mark.parametrize(
    "raw",
    [
        CSV,
        gzip.compress(CSV),
        json.dumps(
            [
                {"email": "reject+a@x.co", "error": "refused"},
                {"email": "Reject+B@x.co", "message": "bad"},
            ]
        ).encode(),
        json.dumps(
            {
                "errors": [
                    {"email": "reject+a@x.co", "message": "refused"},
                    {"email": "reject+b@x.co", "message": "bad"},
                ]
            }
        ).encode(),
        b'{"email": "reject+a@x.co", "message": "refused"}\n{"email": "reject+b@x.co"}\n',
    ],
)
def test_errors_files_in_any_likely_format_name_the_emails(raw):
    found = parse_errors_file(raw)
    assert [e.email for e in found] == ["reject+a@x.co", "reject+b@x.co"]
    assert found[0].message == "refused"


def test_a_400_names_the_refused_contacts():
    error = SendGridAPIError(
        400,
        ["contacts[3].email: email address is invalid", "contacts[7].email: duplicate"],
        "PUT",
        "/v3/marketing/contacts",
    )
    assert refused_positions(error) == {3: error.messages[0], 7: error.messages[1]}
    assert not is_field_not_ready(error)


def test_a_new_field_not_yet_active_is_recognised():
    error = SendGridAPIError(
        400,
        ["contacts[0].custom_fields: invalid custom field ids supplied"],
        "PUT",
        "/v3/marketing/contacts",
    )
    assert is_field_not_ready(error)

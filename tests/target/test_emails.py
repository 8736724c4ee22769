"""Email checks: trimming, lower-casing, email-validator's verdict, and the fast path."""

from __future__ import annotations

import pytest
from email_validator import EmailNotValidError, validate_email
from target_sendgrid_contacts.emails import INVALID_EMAIL, MISSING_EMAIL, check_email

from sandbox.generator import CohortGenerator


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  Jane.Doe@Gmail.COM ", "jane.doe@gmail.com"),
        ("\tANNA.SMITH.X1@WEB.DE", "anna.smith.x1@web.de"),
        ("o'brien+tag@example.org", "o'brien+tag@example.org"),
        ("user@xn--mnchen-3ya.de", "user@xn--mnchen-3ya.de"),  # IDN already in ASCII form
    ],
)
def test_valid_emails_are_trimmed_and_lower_cased(raw, expected):
    assert check_email(raw).email == expected


@pytest.mark.parametrize("raw", [None, "", "   "])
def test_missing_email(raw):
    check = check_email(raw)
    assert (check.email, check.reason) == (None, MISSING_EMAIL)


@pytest.mark.parametrize(
    "raw",
    [
        "anna@",
        "annaweb.de",
        "anna@@web.de",
        "an na@web.de",
        "anna@web",
        "anna@web..de",
        ".anna@web.de",
        "anna@web.de,",
        "anna@host.test",
        "x" * 65 + "@web.de",
        42,
    ],
)
def test_invalid_email_has_a_reason_without_the_address(raw):
    check = check_email(raw)
    assert (check.email, check.reason) == (None, INVALID_EMAIL)
    assert check.message
    assert not isinstance(raw, str) or raw.strip() not in check.message


@pytest.mark.parametrize(
    "raw", ["josé@example.com", "user@münchen.de", "ＡＢ@example.com", "山田@例え.jp"]
)
def test_internationalised_addresses_are_rejected_though_email_validator_accepts_them(raw):
    validate_email(raw.lower(), check_deliverability=False)  # RFC 6531 allows them
    check = check_email(raw)
    assert (check.email, check.reason) == (None, INVALID_EMAIL)
    assert "non-ASCII" in check.message


def test_validator_messages_do_not_quote_parts_of_the_address():
    check = check_email("john@exa☃mple.com")
    assert check.reason == INVALID_EMAIL
    assert "exa" not in check.message


def _validator_accepts(address: str) -> bool:
    try:
        validate_email(address, check_deliverability=False)
    except EmailNotValidError:
        return False
    return address.isascii() and len(address.rpartition("@")[0].encode()) <= 64


def test_the_fast_path_never_accepts_what_email_validator_refuses():
    generator = CohortGenerator(seed=7)
    samples = [m["email"] for cid in ("pwrusr1", "trlrsk2") for m in generator.members(cid)]
    samples += [
        "a-@b.co",
        "-a@b.co",
        "a@-b.co",
        "a@b-.co",
        "a@b.c",
        "a@b.c0m",
        "a@xn--abc.com",
        "a@localhost",
        "a@b.local",
        "a@b.onion",
        "a_b+c@d-e.fg",
        "a@" + "b" * 64 + ".com",
        "a@" + ("b" * 60 + ".") * 5 + "com",
    ]
    for raw in samples:
        normalised = raw.strip().lower() if isinstance(raw, str) else raw
        ours = check_email(raw).email
        if normalised and _validator_accepts(normalised):
            assert ours == normalised, raw
        else:
            assert ours is None, raw

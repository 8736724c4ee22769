"""Pure email checks: trim, lower-case, syntax-check with email-validator (no DNS), ASCII only."""

from __future__ import annotations

import re
from typing import Final, Literal, NamedTuple

from email_validator import SPECIAL_USE_DOMAIN_NAMES, EmailNotValidError, validate_email

EmailReason = Literal["missing_email", "invalid_email"]
MISSING_EMAIL: Final = "missing_email"
INVALID_EMAIL: Final = "invalid_email"

# A strict ASCII subset that email-validator always accepts; it skips the validator's ~20 µs
# for the common case. Anything outside it (IDN, quoted, odd TLDs) goes through the validator.
_PLAIN_ADDRESS = re.compile(
    r"[a-z0-9_+-]{1,64}(?:\.[a-z0-9_+-]{1,64})*"
    r"@(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}"
)
_FULLMATCH = _PLAIN_ADDRESS.fullmatch
# email-validator quotes the offending domain label in some messages (IDNA errors).
_QUOTED_FRAGMENT = re.compile(r"'[^']{2,}'")
NON_ASCII_MESSAGE = (
    "the address has non-ASCII characters (an internationalised address): SendGrid does not "
    "document accepting them, and one address it refuses fails the whole upsert request"
)
# An address ends with one of these exactly when its domain is, or is under, a special-use name
# (the pattern puts a dot in every domain, so a bare TLD shows as ".tld").
_SPECIAL_ENDINGS = tuple(
    sorted(
        {"." + n for n in SPECIAL_USE_DOMAIN_NAMES} | {"@" + n for n in SPECIAL_USE_DOMAIN_NAMES}
    )
)


class EmailCheck(NamedTuple):
    """Outcome of checking one email value.

    Attributes:
        email: The normalised address, or None when rejected.
        reason: ``missing_email`` or ``invalid_email`` when rejected, else None.
        message: Why it was rejected (never contains the address), else "".
    """

    email: str | None
    reason: EmailReason | None
    message: str


def plain_email(value: object) -> str | None:
    """The normalised address when it is a plain one :func:`check_email` accepts as is.

    The common case in one call, without building an :class:`EmailCheck`.

    Args:
        value: The raw value found at ``email_field``.

    Returns:
        The trimmed, lower-cased address, or None when :func:`check_email` must decide.
    """
    if type(value) is not str:
        return None
    address = value.strip().lower()
    if (
        len(address) <= 254
        and "xn--" not in address
        and _FULLMATCH(address) is not None
        and address.index("@") <= 64
        and not address.endswith(_SPECIAL_ENDINGS)
    ):
        return address
    return None


def check_email(value: object) -> EmailCheck:
    """Trim, lower-case and syntax-check an email value.

    Args:
        value: The raw value found at ``email_field`` (any type; None when absent).

    Returns:
        The normalised address, or the reason it is rejected.
    """
    if value is None:
        return EmailCheck(None, MISSING_EMAIL, "no value at email_field")
    if not isinstance(value, str):
        return EmailCheck(None, INVALID_EMAIL, f"email is a {type(value).__name__}, not text")
    address = value.strip().lower()
    if not address:
        return EmailCheck(None, MISSING_EMAIL, "email is empty")
    if plain_email(address) is not None:  # the common case (idempotent on the address)
        return EmailCheck(address, None, "")
    try:
        validate_email(address, check_deliverability=False)
    except EmailNotValidError as exc:
        return EmailCheck(None, INVALID_EMAIL, _QUOTED_FRAGMENT.sub("'…'", str(exc)))
    if not address.isascii():
        # email-validator accepts SMTPUTF8 local parts and IDN domains; sending one risks a
        # 400 for a whole request, and rewriting an IDN domain as punycode would change the
        # address the user keys on. Rejected visibly instead.
        return EmailCheck(None, INVALID_EMAIL, NON_ASCII_MESSAGE)
    if len(address.rpartition("@")[0].encode()) > 64:
        # email-validator lets this pass; SMTP (RFC 5321) and SendGrid do not.
        return EmailCheck(None, INVALID_EMAIL, "the part before the @-sign is over 64 bytes")
    return EmailCheck(address, None, "")

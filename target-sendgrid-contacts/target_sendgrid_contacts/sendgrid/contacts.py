"""Contact upserts: start a job, read what SendGrid refused (whole request or errors file)."""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
from typing import NamedTuple

from target_sendgrid_contacts.sendgrid.client import SendGridClient
from target_sendgrid_contacts.sendgrid.errors import SendGridAPIError

CONTACTS_PATH = "/v3/marketing/contacts"
_CONTACT_FIELD = re.compile(r"contacts\[(\d+)\]")
_FIELD_NOT_READY = re.compile(r"invalid custom field id", re.IGNORECASE)
_MAX_ERRORS_FILE_BYTES = 200 * 1024 * 1024


class ErroredContact(NamedTuple):
    """A contact SendGrid refused inside an import job.

    Attributes:
        email: Its email when the errors file names it (lower-cased), else None.
        message: SendGrid's reason.
    """

    email: str | None
    message: str


def start_upsert(client: SendGridClient, body: bytes) -> str:
    """Send one upsert body and return its job id.

    Args:
        client: The SendGrid client.
        body: Exact request bytes (``{"list_ids": [...], "contacts": [...]}``).

    Returns:
        The import job id.
    """
    answer = client.request("PUT", CONTACTS_PATH, data=body, ok=(200, 202))
    return str(answer.json()["job_id"])


def refused_positions(error: SendGridAPIError) -> dict[int, str]:
    """Positions of contacts a 400 names (``contacts[12].email``), with SendGrid's message.

    Args:
        error: A 400 from an upsert.

    Returns:
        Contact position to message; empty when the 400 names no contact.
    """
    if error.status != 400:
        return {}
    named: dict[int, str] = {}
    for message in error.messages:
        found = _CONTACT_FIELD.search(message)
        if found:
            named.setdefault(int(found.group(1)), message)
    return named


def is_field_not_ready(error: SendGridAPIError) -> bool:
    """Whether a 400 is SendGrid refusing a custom field id it has not activated yet.

    Args:
        error: An error from an upsert.

    Returns:
        True for "invalid custom field ids supplied" and the like.
    """
    return error.status == 400 and any(_FIELD_NOT_READY.search(m) for m in error.messages)


def _decode(raw: bytes) -> str:
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    return raw.decode("utf-8-sig", errors="replace")


def _from_item(item: object) -> ErroredContact:
    if not isinstance(item, dict):
        return ErroredContact(None, str(item))
    lowered = {str(k).lower(): v for k, v in item.items()}
    email = None
    for key in ("email", "contact_email", "identifier"):
        value = lowered.get(key)
        if isinstance(value, str) and "@" in value:
            email = value.strip().lower()
            break
    message = next(
        (str(lowered[k]) for k in ("message", "error", "errors", "reason") if lowered.get(k)),
        "refused by SendGrid",
    )
    return ErroredContact(email, message)


def parse_errors_file(raw: bytes) -> list[ErroredContact]:
    """Read an import job's errors file (its format is not documented).

    Accepted: a JSON array, a JSON object holding ``errors`` (or another array), JSON lines, or
    CSV with a header; gzip-compressed or not. Rows name an email column when SendGrid gives one.

    Args:
        raw: The downloaded bytes.

    Returns:
        One entry per refused contact found.
    """
    text = _decode(raw).strip()
    if not text:
        return []
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict):
        arrays = [v for v in data.values() if isinstance(v, list)]
        data = (
            data.get("errors")
            if isinstance(data.get("errors"), list)
            else (arrays[0] if arrays else [data])
        )
    if isinstance(data, list):
        return [_from_item(item) for item in data]
    if text.startswith("{"):
        items = []
        for line in text.splitlines():
            try:
                items.append(json.loads(line))
            except ValueError:
                continue
        return [_from_item(item) for item in items]
    return [_from_item(row) for row in csv.DictReader(io.StringIO(text))]


def fetch_errored_contacts(client: SendGridClient, errors_url: str) -> list[ErroredContact]:
    """Download and read an errors file (without the API key).

    Args:
        client: The SendGrid client.
        errors_url: ``results.errors_url`` of an errored job.

    Returns:
        The refused contacts found in it.
    """
    with client.download(errors_url) as answer:
        raw = answer.raw.read(_MAX_ERRORS_FILE_BYTES, decode_content=True)
    return parse_errors_file(raw)

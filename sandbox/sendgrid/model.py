"""What the fake SendGrid stores, its limits, and the request-time rules on contacts (pure).

Email syntax (the real rules are unpublished): one ``@``; a local part of at most 64
characters made of dot-separated atoms of letters, digits (any script) and
``!#$%&'*+/=?^_`{|}~-``; a domain of at least two dot-separated labels (letters, digits,
inner hyphens), the last one alphabetic with 2 to 63 characters or an ``xn--`` label;
at most 254 characters in all. Values are never echoed in error messages (they are
personal data).
"""

from __future__ import annotations

import re
from collections.abc import Container, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

MAX_CONTACTS_PER_UPSERT = 30_000
# SendGrid documents "6 MB"; the smaller reading (6,000,000 bytes, not 6 MiB) is enforced
MAX_BODY_BYTES = 6_000_000
MAX_LISTS = 1_000
MAX_CUSTOM_FIELDS = 500
MAX_SEARCH_EMAILS = 100
# unpublished upstream; a few hundred ids keep the DELETE URL short
MAX_REMOVAL_IDS = 500
FIELD_TYPES = ("Text", "Number", "Date")
RESERVED_FIELDS = (
    ("first_name", "Text", False),
    ("last_name", "Text", False),
    ("email", "Text", False),
    ("alternate_emails", "Text", False),
    ("address_line_1", "Text", False),
    ("address_line_2", "Text", False),
    ("city", "Text", False),
    ("state_province_region", "Text", False),
    ("postal_code", "Text", False),
    ("country", "Text", False),
    ("phone_number_id", "Text", False),
    ("external_id", "Text", False),
    ("anonymous_id", "Text", False),
    ("created_at", "Date", True),
    ("updated_at", "Date", True),
    ("contact_id", "Text", True),
)
# reserved fields a contact may carry beyond email and names (kept in Contact.extra)
EXTRA_FIELDS = (
    "address_line_1",
    "address_line_2",
    "city",
    "state_province_region",
    "postal_code",
    "country",
    "alternate_emails",
    "phone_number_id",
    "external_id",
    "anonymous_id",
)
REJECT_PREFIX = "reject+"  # local parts starting so are accepted, then errored by the job

_ATOM = r"[\w!#$%&'*+/=?^`{|}~-]+"
_LOCAL = re.compile(rf"{_ATOM}(?:\.{_ATOM})*")
_LABEL = r"[^\W_](?:[\w-]{0,61}[^\W_])?"
_DOMAIN = re.compile(rf"(?:{_LABEL}\.)+(?:[^\W\d_]{{2,63}}|xn--[a-zA-Z0-9-]{{1,59}})")


class Contact(NamedTuple):
    """One stored contact: immutable, so an export snapshot can keep references to it.

    Attributes:
        n: Sequence number; the contact id is derived from it.
        email: Lower-cased email, the key.
        first_name: First name, or None when never set.
        last_name: Last name, or None when never set.
        extra: Other reserved fields that were set (``EXTRA_FIELDS``), or None.
        custom: Custom field values keyed by field id, or None.
        created_at: Epoch seconds.
        updated_at: Epoch seconds.
    """

    n: int
    email: str
    first_name: str | None
    last_name: str | None
    extra: dict[str, Any] | None
    custom: dict[str, Any] | None
    created_at: float
    updated_at: float


@dataclass
class FieldDefinition:
    """A custom field: id like ``e1_T``, name, type, and when it was created (epoch s)."""

    id: str
    name: str
    field_type: str
    created_at: float

    def as_json(self) -> dict[str, str]:
        """The field as SendGrid lists it."""
        return {"id": self.id, "name": self.name, "field_type": self.field_type}


class ApiError(Exception):
    """A SendGrid-style error answer: status and ``{"errors": [{"field", "message"}]}``."""

    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.field = field
        self.message = message

    def body(self) -> dict[str, Any]:
        """The JSON body of the answer."""
        return {"errors": [{"field": self.field, "message": self.message}]}


def is_valid_email(email: str) -> bool:
    """Whether SendGrid (as simulated) accepts ``email`` syntactically."""
    if len(email) > 254 or email.count("@") != 1:
        return False
    local, domain = email.split("@")
    return (
        len(local) <= 64
        and _LOCAL.fullmatch(local) is not None
        and _DOMAIN.fullmatch(domain) is not None
    )


def is_rejected(email: str) -> bool:
    """Whether the sandbox errors this (lower-cased) contact inside its import job."""
    return email.startswith(REJECT_PREFIX)


def _value_fits(value: Any, field_type: str) -> bool:
    if field_type == "Number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if not isinstance(value, str):
        return False
    if field_type == "Date":
        try:
            datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            try:
                datetime.strptime(value, "%m/%d/%Y")
            except ValueError:
                return False
    return True


def check_upsert(
    contacts: list[dict[str, Any]],
    list_ids: list[str],
    *,
    known_lists: Container[str],
    fields: Mapping[str, FieldDefinition],
    now: float,
    activation_seconds: float,
) -> list[tuple[str, dict[str, Any]]]:
    """Apply SendGrid's request-time rules to an upsert; return (lower-cased email, contact).

    One bad contact refuses the whole request, as SendGrid does.

    Raises:
        ApiError: 400 naming the first offending field.
    """
    if not contacts:
        raise ApiError(400, "at least one contact is required", "contacts")
    if len(contacts) > MAX_CONTACTS_PER_UPSERT:
        raise ApiError(400, f"at most {MAX_CONTACTS_PER_UPSERT} contacts per request", "contacts")
    for index, list_id in enumerate(list_ids):
        if list_id not in known_lists:
            raise ApiError(400, "list does not exist", f"list_ids[{index}]")
    seen: dict[str, int] = {}
    checked: list[tuple[str, dict[str, Any]]] = []
    for index, contact in enumerate(contacts):
        email = contact.get("email")
        if not isinstance(email, str) or not email:
            # other identifiers exist upstream; the sandbox keys contacts by email only
            raise ApiError(400, "email is required", f"contacts[{index}].email")
        if not is_valid_email(email):
            raise ApiError(400, "email address is invalid", f"contacts[{index}].email")
        key = email.lower()
        if key in seen:
            raise ApiError(
                400,
                f"duplicate email: the same address (ignoring case) as contacts[{seen[key]}]",
                f"contacts[{index}].email",
            )
        seen[key] = index
        custom = contact.get("custom_fields")
        if custom:
            _check_custom(custom, index, fields, now - activation_seconds)
        checked.append((key, contact))
    return checked


def _check_custom(
    custom: dict[str, Any], index: int, fields: Mapping[str, FieldDefinition], active_before: float
) -> None:
    for field_id, value in custom.items():
        field = fields.get(field_id)
        if field is None or field.created_at > active_before:
            raise ApiError(
                400, "invalid custom field ids supplied", f"contacts[{index}].custom_fields"
            )
        if not _value_fits(value, field.field_type):
            raise ApiError(
                400,
                f"value does not match the field type {field.field_type}",
                f"contacts[{index}].custom_fields.{field_id}",
            )

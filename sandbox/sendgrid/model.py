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
from operator import attrgetter
from typing import Any

import msgspec
from msgspec import UNSET, UnsetType

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
_LABEL = r"[^\W_](?:[\w-]{0,61}[^\W_])?"
_DOMAIN = rf"(?:{_LABEL}\.)+(?:[^\W\d_]{{2,63}}|xn--[a-zA-Z0-9-]{{1,59}})"
# One pattern for the whole address: the lookahead bounds the local part to 64 characters, and
# neither part can hold an "@", so a match also means exactly one "@".
_EMAIL = re.compile(rf"(?=[^@]{{1,64}}@){_ATOM}(?:\.{_ATOM})*@{_DOMAIN}")
_NO_EXTRA = (UNSET,) * len(EXTRA_FIELDS)
_extra_values = attrgetter(*EXTRA_FIELDS)


# Contacts and upsert bodies are msgspec structs with gc=False: CPython's cyclic collector never
# tracks them, so two million stored contacts (and the 30,000 of each pending job) cost no full
# or young collection anything. As NamedTuples they were tracked, and full collections walking
# them were more than half the sandbox's CPU per upsert at that size. Neither holds anything
# that could refer back to it, so no cycle can form through them.


class Contact(msgspec.Struct, frozen=True, gc=False):
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


class UpsertContact(msgspec.Struct, gc=False):
    """One contact of an upsert body as sent: any JSON value per field, UNSET when absent.

    Types are checked by ``check_upsert`` (and the OpenAPI validation), not by decoding, so
    that a refusal names the field as SendGrid would.
    """

    email: Any = UNSET
    first_name: Any = UNSET
    last_name: Any = UNSET
    custom_fields: Any = UNSET
    address_line_1: Any = UNSET
    address_line_2: Any = UNSET
    city: Any = UNSET
    state_province_region: Any = UNSET
    postal_code: Any = UNSET
    country: Any = UNSET
    alternate_emails: Any = UNSET
    phone_number_id: Any = UNSET
    external_id: Any = UNSET
    anonymous_id: Any = UNSET

    def extra(self) -> dict[str, Any] | None:
        """The ``EXTRA_FIELDS`` this contact sets, or None."""
        values = _extra_values(self)
        if values == _NO_EXTRA:  # the usual case: one C call and one comparison
            return None
        return {k: v for k, v in zip(EXTRA_FIELDS, values, strict=True) if v is not UNSET}


class UpsertBody(msgspec.Struct, gc=False):
    """A ``PUT /v3/marketing/contacts`` body, decoded straight into structs (the fast path)."""

    contacts: list[UpsertContact] | UnsetType = UNSET
    list_ids: Any = UNSET


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
    return len(email) <= 254 and _EMAIL.fullmatch(email) is not None


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
    contacts: list[UpsertContact],
    list_ids: list[str],
    *,
    known_lists: Container[str],
    fields: Mapping[str, FieldDefinition],
    now: float,
    activation_seconds: float,
) -> list[str]:
    """Apply SendGrid's request-time rules to an upsert; return the lower-cased emails.

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
    active_before = now - activation_seconds
    # field id -> type of the fields usable now, so each value costs one lookup
    active = {fid: f.field_type for fid, f in fields.items() if f.created_at <= active_before}
    seen: dict[str, int] = {}  # lower-cased email -> index, in order
    for index, contact in enumerate(contacts):
        email = contact.email
        if not isinstance(email, str) or not email:
            # other identifiers exist upstream; the sandbox keys contacts by email only
            raise ApiError(400, "email is required", f"contacts[{index}].email")
        if len(email) > 254 or _EMAIL.fullmatch(email) is None:
            raise ApiError(400, "email address is invalid", f"contacts[{index}].email")
        key = email.lower()
        if key in seen:
            raise ApiError(
                400,
                f"duplicate email: the same address (ignoring case) as contacts[{seen[key]}]",
                f"contacts[{index}].email",
            )
        seen[key] = index
        custom = contact.custom_fields
        if custom:
            _check_custom(custom, index, active)
    return list(seen)


def _check_custom(custom: dict[str, Any], index: int, active: Mapping[str, str]) -> None:
    for field_id, value in custom.items():
        field_type = active.get(field_id)
        if field_type is None:
            raise ApiError(
                400, "invalid custom field ids supplied", f"contacts[{index}].custom_fields"
            )
        if field_type == "Text" and isinstance(value, str):
            continue  # the usual case, without the call
        if not _value_fits(value, field_type):
            raise ApiError(
                400,
                f"value does not match the field type {field_type}",
                f"contacts[{index}].custom_fields.{field_id}",
            )

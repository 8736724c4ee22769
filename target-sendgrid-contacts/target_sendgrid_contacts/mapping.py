"""Pure mapping of a Singer record to the SendGrid contact we would send, or a rejection."""

from __future__ import annotations

import datetime as dt
import decimal
import math
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import NamedTuple

from target_sendgrid_contacts.emails import EmailReason, check_email, plain_email
from target_sendgrid_contacts.text_values import text_value

# SendGrid's limits for the reserved fields we write (contacts spec, ContactRequest maxLength).
NAME_MAX_LENGTH = 50
TEXT = "Text"
NUMBER = "Number"
DATE = "Date"


def split_path(path: str) -> tuple[str, ...]:
    """Split a dotted record path (``user_properties.email``) into its keys.

    Args:
        path: Dotted path.

    Returns:
        The keys, outermost first.
    """
    return tuple(part for part in path.split(".") if part)


def get_path(record: Mapping, keys: tuple[str, ...]) -> object:
    """Read a nested value, None when any step is absent or not an object.

    Args:
        record: The record.
        keys: Keys from :func:`split_path`.

    Returns:
        The value or None.
    """
    value: object = record
    for key in keys:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
        if value is None:
            return None
    return value


def compile_path(keys: tuple[str, ...]) -> Callable[[Mapping], object]:
    """Return a fast reader of one dotted path (same answers as :func:`get_path`).

    Args:
        keys: Keys from :func:`split_path`.

    Returns:
        A function of the record.
    """
    if len(keys) == 1:
        (only,) = keys

        def read_one(record: Mapping) -> object:
            return record.get(only)

        return read_one
    if len(keys) == 2:
        outer, inner = keys

        def read_two(record: Mapping) -> object:
            value = record.get(outer)
            if type(value) is dict:
                return value.get(inner)
            return get_path(record, keys)

        return read_two
    return lambda record: get_path(record, keys)


def path_values(paths: list[tuple[str, ...]]) -> Callable[[Mapping], list]:
    """Return a reader of several dotted paths at once (each as :func:`get_path` reads it).

    Args:
        paths: Keys from :func:`split_path`, one tuple a path.

    Returns:
        A function of the record giving the values in ``paths`` order. When every path is
        one key, or two keys under the same object (``user_properties.*``), it is one C-level
        pass over that object.
    """
    readers = [compile_path(keys) for keys in paths]

    def each(record: Mapping) -> list:
        return [read(record) for read in readers]

    if paths and all(len(keys) == 1 for keys in paths):
        tops = [keys[0] for keys in paths]

        def top(record: Mapping) -> list:
            return list(map(record.get, tops)) if type(record) is dict else each(record)

        return top
    outers = {keys[0] for keys in paths}
    if len(outers) == 1 and all(len(keys) == 2 for keys in paths):
        (outer,) = outers
        leaves = [keys[1] for keys in paths]

        def under(record: Mapping) -> list:
            inner = record.get(outer)
            return list(map(inner.get, leaves)) if type(inner) is dict else each(record)

        return under
    return each


def schema_at(schema: Mapping, keys: tuple[str, ...]) -> Mapping:
    """Return the JSON schema of a dotted path in a stream schema ({} when unknown).

    Args:
        schema: Stream schema.
        keys: Keys from :func:`split_path`.

    Returns:
        The property schema.
    """
    node: Mapping = schema
    for key in keys:
        props = node.get("properties")
        if not isinstance(props, Mapping) or key not in props:
            return {}
        node = props[key]
    return node


def field_type_for(prop_schema: Mapping) -> str:
    """SendGrid custom field type for a property schema: Number, Date or Text.

    Args:
        prop_schema: JSON schema of the property.

    Returns:
        ``Number`` for integer/number, ``Date`` for date/date-time strings, else ``Text``.
    """
    types = prop_schema.get("type", [])
    types = {types} if isinstance(types, str) else set(types)
    for option in prop_schema.get("anyOf", []) or []:
        if isinstance(option, Mapping):
            types |= {option.get("type")} if isinstance(option.get("type"), str) else set()
            if option.get("format") in {"date", "date-time"}:
                return DATE
    types.discard("null")
    if types and types <= {"integer", "number"}:
        return NUMBER
    if prop_schema.get("format") in {"date", "date-time"}:
        return DATE
    return TEXT


def _parse_date(value: str) -> dt.date | None:
    text = value.strip()
    try:
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).date()
    except ValueError:
        pass
    try:
        return dt.date.fromisoformat(text[:10])
    except ValueError:
        return None


def convert_value(value: object, field_type: str) -> str | int | float | None:
    """Convert a record value to what SendGrid takes for a custom field type.

    Text as :func:`text_value` makes it (a list or object is not text), Number an int or
    float, Date ``MM/DD/YYYY``.

    Args:
        value: Record value (datetimes arrive as ``datetime`` objects).
        field_type: ``Text``, ``Number`` or ``Date``.

    Returns:
        The converted value, or None when it is empty or cannot be converted.
    """
    if value is None:
        return None
    if field_type == NUMBER:
        if isinstance(value, bool):
            return int(value)
        if isinstance(value, (int, float, decimal.Decimal)):
            number = value
        else:
            try:
                number = decimal.Decimal(str(value).strip())
            except decimal.InvalidOperation:
                return None
        if isinstance(number, int):
            return number
        as_float = float(number)
        if not math.isfinite(as_float):
            return None
        return int(as_float) if as_float.is_integer() and abs(as_float) < 2**53 else as_float
    if field_type == DATE:
        day: dt.date | None
        if isinstance(value, dt.datetime):
            day = value.date()
        elif isinstance(value, dt.date):
            day = value
        else:
            day = _parse_date(str(value))
        return day.strftime("%m/%d/%Y") if day else None
    return text_value(value).text


@dataclass(frozen=True)
class CustomFieldSpec:
    """One configured custom field.

    Attributes:
        name: SendGrid custom field name.
        keys: Record path of its value.
        field_type: Text, Number or Date.
        key: What the contact's ``custom_fields`` are keyed by: the field id when the field
            already exists (what SendGrid wants, no copy later), else its name.
    """

    name: str
    keys: tuple[str, ...]
    field_type: str
    key: str = ""


class Mapped(NamedTuple):
    """A record mapped to a contact, or the reason it cannot be.

    Attributes:
        email: Normalised email, None when rejected.
        contact: ``email``, ``first_name``, ``last_name`` and ``custom_fields`` keyed by
            each spec's ``key`` (the field id when known), None when rejected.
        reason: Rejection reason code, None when accepted.
        message: Rejection detail.
    """

    email: str | None
    contact: dict | None
    reason: EmailReason | None
    message: str


class ContactMapper:
    """Maps records of one stream using the configured record paths."""

    def __init__(
        self,
        *,
        email_field: str,
        first_name_field: str | None,
        last_name_field: str | None,
        custom_fields: list[CustomFieldSpec],
    ) -> None:
        """Create a mapper.

        Args:
            email_field: Dotted path of the email.
            first_name_field: Dotted path of the first name, if mapped.
            last_name_field: Dotted path of the last name, if mapped.
            custom_fields: Custom fields to fill.
        """
        names = [
            (field, split_path(path))
            for field, path in (("first_name", first_name_field), ("last_name", last_name_field))
            if path
        ]
        paths = [split_path(email_field)] + [keys for _, keys in names]
        paths += [spec.keys for spec in custom_fields]
        self._fetch = path_values(paths)  # every mapped value of a record, in this order
        # What each value of _fetch is called in the rejects file.
        self._value_names = ["email", *(field for field, _ in names)]
        self._value_names += [spec.name for spec in custom_fields]
        # Each with its position in what _fetch returns.
        self._names = [(field, index) for index, (field, _) in enumerate(names, 1)]
        self._custom = [
            (spec.key or spec.name, spec.field_type, spec.name, index)
            for index, spec in enumerate(custom_fields, 1 + len(names))
        ]

    def key_fields_by(self, keys: Mapping[str, str]) -> None:
        """Key custom fields by id from now on (the run just created the missing fields).

        Args:
            keys: Field name to field id, for every configured field.
        """
        self._custom = [
            (keys.get(name, key), field_type, name, index)
            for key, field_type, name, index in self._custom
        ]

    def raw_values(self, record: Mapping) -> dict:
        """The values at the mapped paths, as found (for the rejects file).

        Args:
            record: The record.

        Returns:
            ``email``, names and custom fields by name, absent ones left out.
        """
        found = dict(zip(self._value_names, self._fetch(record), strict=True))
        return {k: v for k, v in found.items() if v is not None}

    def map(self, record: Mapping, truncated: Counter[str], unconvertible: Counter[str]) -> Mapped:
        """Map one record.

        Args:
            record: The record (after the SDK's parsing).
            truncated: Receives a count per field cut to SendGrid's limit.
            unconvertible: Receives a count per field (name or custom) whose value was left
                out because it did not fit (a list or object as text, a word as a number).

        Returns:
            The contact, or a rejection with its reason.
        """
        contact = self.map_contact(record, truncated, unconvertible)
        if isinstance(contact, Mapped):
            return contact
        return Mapped(contact["email"], contact, None, "")

    def map_contact(
        self, record: Mapping, truncated: Counter[str], unconvertible: Counter[str]
    ) -> dict | Mapped:
        """Map one record as :meth:`map` does, without wrapping an accepted contact.

        Args:
            record: The record (after the SDK's parsing).
            truncated: As in :meth:`map`.
            unconvertible: As in :meth:`map`.

        Returns:
            The contact (its ``email`` normalised), or the rejection.
        """
        values = self._fetch(record)
        raw = values[0]
        email = plain_email(raw)
        if email is None:
            check = check_email(raw)
            if check.email is None:
                return Mapped(None, None, check.reason, check.message)
            email = check.email
        contact: dict = {"email": email}
        for field, index in self._names:
            value = values[index]
            if value is None:
                continue
            if type(value) is str and value.isprintable():
                text, dropped = value.strip() or None, None  # text_value's common case
            else:
                text, dropped = text_value(value)
            if text is None:
                if dropped:
                    unconvertible[field] += 1
                continue
            if len(text) > NAME_MAX_LENGTH:
                text = text[:NAME_MAX_LENGTH].rstrip()
                truncated[field] += 1
            contact[field] = text
        if self._custom:
            custom = {}
            for key, field_type, name, index in self._custom:
                raw = values[index]
                if field_type == TEXT and type(raw) is str and raw.isprintable():
                    value = raw.strip() or None  # text_value's common case, without its calls
                else:
                    value = convert_value(raw, field_type)
                if value is None:
                    if raw is not None and raw != "":
                        unconvertible[name] += 1
                    continue
                custom[key] = value
            if custom:
                contact["custom_fields"] = custom
        return contact

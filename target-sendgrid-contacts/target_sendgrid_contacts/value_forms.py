"""Pure: the comparison forms of a contact value, as exported by SendGrid and as it would be sent.

Two spellings of one number or date compare equal; everything else compares as exact text.
"""

from __future__ import annotations

import datetime as dt
import math
import re

_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_DATE_LIKE = re.compile(r"\d{4}-\d{2}-\d{2}|\d{1,2}/\d{1,2}/\d{4}")


def _number_form(value: float) -> str:
    if math.isfinite(value) and value.is_integer() and abs(value) < 1e15:
        return f"n:{int(value)}"
    return f"n:{value!r}"


def _date_form(value: dt.date) -> str:
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.timezone.utc).replace(tzinfo=None)
        if value.time() != dt.time():
            return f"d:{value.isoformat()}"
        value = value.date()
    return f"d:{value.isoformat()}"


def _parse_date(text: str) -> dt.date | None:
    if not _DATE_LIKE.match(text):
        return None
    iso = text[:-1] + "+00:00" if text.endswith("Z") else text  # Python 3.10 reads no "Z"
    try:
        return dt.datetime.fromisoformat(iso)
    except ValueError:
        pass
    try:
        return dt.datetime.strptime(text, "%m/%d/%Y")
    except ValueError:
        return None


def stored_forms(text: str | None) -> tuple[str, str]:
    """Return the raw and canonical comparison forms of a value read from an export.

    Args:
        text: The CSV cell, or None when the export has no column for the field.

    Returns:
        ``(raw, canonical)``; canonical reads numbers and dates as such, else equals raw.
    """
    if text is None:
        return "absent", "absent"  # no "s:" prefix, so no sent value ever matches
    raw = f"s:{text}"
    if _NUMBER.fullmatch(text):
        return raw, _number_form(float(text))
    parsed = _parse_date(text)
    return raw, (_date_form(parsed) if parsed is not None else raw)


def sent_forms(value: object) -> tuple[str, str | None]:
    """Return the raw and canonical comparison forms of a value the target would send.

    Text is compared exactly, except that two spellings of one date are equal; JSON numbers
    compare as numbers ("42" in the export equals 42 sent); None equals an empty cell.

    Args:
        value: A contact field value.

    Returns:
        ``(raw, canonical)``; canonical is None when only the raw form may match.
    """
    if value is None:
        return "s:", None
    if isinstance(value, bool):
        return f"s:{str(value).lower()}", None
    if isinstance(value, (int, float)):
        return f"s:{value}", _number_form(float(value))
    if isinstance(value, dt.date):
        return f"s:{value.isoformat()}", _date_form(value)
    text = str(value)
    parsed = _parse_date(text)
    return f"s:{text}", (_date_form(parsed) if parsed is not None else None)

"""Pure: a record value as the text SendGrid stores in a name or a text custom field."""

from __future__ import annotations

import datetime as dt
import decimal
import math
import re
from typing import NamedTuple

# Line breaks and tabs become a space, so "Ann\nMarie" stays two words.
_SPACING_CONTROLS = re.compile(r"[\t\n\v\f\r\x1c-\x1f\x85\u2028\u2029]+")
# Other C0 controls, DEL, C1 controls, and lone surrogates (which cannot be sent as UTF-8).
# Format characters (zero-width joiners, direction marks) stay: scripts need them.
_OTHER_CONTROLS = re.compile(r"[\x00-\x08\x0e-\x1b\x7f-\x84\x86-\x9f\ud800-\udfff]+")
UNCONVERTIBLE = "list_or_object"


class TextValue(NamedTuple):
    """What became of a value meant for a text field.

    Attributes:
        text: The text to store, None when there is nothing to store.
        dropped: Why a value present in the record is not stored (``list_or_object``),
            None otherwise.
    """

    text: str | None
    dropped: str | None


def strip_controls(text: str) -> str:
    """Remove control characters; tabs and line breaks become a space; trim the ends.

    Args:
        text: Any text.

    Returns:
        The text without C0/C1 controls, DEL or lone surrogates; letters of every script,
        ordinary spaces and format characters are kept.
    """
    if text.isprintable():  # the common case: nothing to remove
        return text.strip()
    return _OTHER_CONTROLS.sub("", _SPACING_CONTROLS.sub(" ", text)).strip()


def _number_text(value: float | decimal.Decimal) -> str | None:
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else None
    if not value.is_finite():
        return None
    text = str(value)
    # Decimal keeps the JSON's digits ("2.50" stays "2.50"); only an exponent is spelled out.
    return format(value, "f") if "E" in text else text


def text_value(value: object) -> TextValue:
    """Turn a record value into the text of a name or text custom field.

    Strings lose control characters; booleans become ``true``/``false`` and numbers their
    plain JSON text (``3``, ``2.5``); datetimes their ISO text; a list or object cannot be
    text, so it is dropped (and the caller counts it).

    Args:
        value: The value at the mapped record path.

    Returns:
        The text (None when empty or dropped) and why it was dropped.
    """
    if value is None:
        return TextValue(None, None)
    if type(value) is str:
        text = strip_controls(value)
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, int):
        text = str(value)
    elif isinstance(value, (float, decimal.Decimal)):
        number = _number_text(value)
        if number is None:
            return TextValue(None, "not_finite")
        text = number
    elif isinstance(value, (dict, list, tuple, set)):
        return TextValue(None, UNCONVERTIBLE)
    elif isinstance(value, (dt.datetime, dt.date)):
        text = value.isoformat()
    else:
        text = strip_controls(str(value))
    return TextValue(text or None, None)

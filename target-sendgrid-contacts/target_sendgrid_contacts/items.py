"""A valid contact on its way to a list, with what identifies its record (pure)."""

from __future__ import annotations

import functools
from typing import NamedTuple


class Item(NamedTuple):
    """A valid contact on its way to a list.

    Attributes:
        email: Normalised email.
        contact: Contact with ``custom_fields`` keyed by field name.
        stream: Stream of the record.
        record_number: Position of the record in its stream (1-based).
        keys: The record's key properties.
    """

    email: str
    contact: dict
    stream: str
    record_number: int
    keys: dict

    def origin(self) -> str:
        """Describe the record for a ``duplicate_email`` rejection.

        Returns:
            E.g. ``cohort_members record #12 (cohort_id=abc, amplitude_id=7)``.
        """
        return describe(self.stream, self.record_number, self.keys)


def describe(stream: str, record_number: int, keys: dict) -> str:
    """Describe a record as :meth:`Item.origin` does (from its parts, e.g. read back from disk).

    Args:
        stream: Stream of the record.
        record_number: Position of the record in its stream.
        keys: The record's key properties.

    Returns:
        E.g. ``cohort_members record #12 (cohort_id=abc, amplitude_id=7)``.
    """
    if not keys:
        return f"{stream} record #{record_number}"
    return _template(tuple(keys)).format(stream, record_number, *keys.values())


@functools.lru_cache(maxsize=64)
def _template(names: tuple[str, ...]) -> str:
    """``{} record #{} (name={}, ...)``: one format call per item instead of a join."""
    shown = ", ".join(name.replace("{", "{{").replace("}", "}}") + "={}" for name in names)
    return "{} record #{} (" + shown + ")"

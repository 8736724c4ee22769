"""A valid contact on its way to a list, with what identifies its record (pure)."""

from __future__ import annotations

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
        keys = ", ".join(f"{k}={v}" for k, v in self.keys.items())
        return f"{self.stream} record #{self.record_number}" + (f" ({keys})" if keys else "")

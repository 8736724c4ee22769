"""Custom field definitions of the fake SendGrid account.

Not thread-safe on its own: ``SendGridState`` holds the lock.
"""

from __future__ import annotations

import itertools
import re

from sandbox.sendgrid.model import (
    FIELD_TYPES,
    MAX_CUSTOM_FIELDS,
    RESERVED_FIELDS,
    ApiError,
    FieldDefinition,
)

_FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class CustomFields:
    """Definitions keyed by id (``e1_T``, ``e2_N``, ``e3_D``: sequence and type initial)."""

    def __init__(self) -> None:
        self.by_id: dict[str, FieldDefinition] = {}
        self._seq = itertools.count(1)

    def create(self, name: str, field_type: str, created_at: float) -> FieldDefinition:
        """Define a field.

        Raises:
            ApiError: 400 for an unknown type, a bad or taken name, or past 500 fields.
        """
        if field_type not in FIELD_TYPES:
            raise ApiError(400, "field_type must be Text, Number or Date", "field_type")
        self._check_name(name, exclude=None)
        if len(self.by_id) >= MAX_CUSTOM_FIELDS:
            raise ApiError(400, f"an account may have at most {MAX_CUSTOM_FIELDS} custom fields")
        definition = FieldDefinition(
            f"e{next(self._seq)}_{field_type[0]}", name, field_type, created_at
        )
        self.by_id[definition.id] = definition
        return definition

    def rename(self, field_id: str, name: str) -> FieldDefinition:
        """Rename a field.

        Raises:
            ApiError: 404 for an unknown field, 400 for a bad or taken name.
        """
        definition = self._get(field_id)
        self._check_name(name, exclude=field_id)
        definition.name = name
        return definition

    def delete(self, field_id: str) -> None:
        """Forget a field (stored values stay, but are no longer shown).

        Raises:
            ApiError: 404 for an unknown field.
        """
        del self.by_id[self._get(field_id).id]

    def names(self) -> dict[str, str]:
        """Field id -> name."""
        return {fid: definition.name for fid, definition in self.by_id.items()}

    def _get(self, field_id: str) -> FieldDefinition:
        definition = self.by_id.get(field_id)
        if definition is None:
            raise ApiError(404, "custom field not found", "custom_field_id")
        return definition

    def _check_name(self, name: str, exclude: str | None) -> None:
        if not _FIELD_NAME.fullmatch(name):
            raise ApiError(
                400,
                "field names may contain only letters, digits and underscores "
                "and may not start with a digit",
                "name",
            )
        taken = {d.name.lower() for fid, d in self.by_id.items() if fid != exclude}
        if name.lower() in taken | {reserved[0] for reserved in RESERVED_FIELDS}:
            raise ApiError(400, "a field with this name already exists", "name")

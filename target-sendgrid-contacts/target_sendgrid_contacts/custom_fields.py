"""Custom fields of a run: names to ids, types, and creation just before first use."""

from __future__ import annotations

import time
from collections.abc import Mapping

from target_sendgrid_contacts.mapping import (
    ContactMapper,
    CustomFieldSpec,
    field_type_for,
    schema_at,
    split_path,
)
from target_sendgrid_contacts.sendgrid.client import SendGridClient
from target_sendgrid_contacts.sendgrid.errors import SendGridUnavailableError
from target_sendgrid_contacts.sendgrid.fields import (
    FieldDefinition,
    create_custom_field,
    fetch_custom_fields,
)

_CREATE_TRIES = 3


class CustomFields:
    """The configured custom fields, resolved against the account's definitions.

    Attributes:
        created_at: When this run created fields (monotonic clock), else None.
        mapped_by_id: Every contact is mapped with its custom fields keyed by id (all fields
            existed before the run, or none is configured): :meth:`with_ids` returns it as is.
    """

    def __init__(
        self, client: SendGridClient, configured: Mapping[str, str], *, create: bool, dry_run: bool
    ) -> None:
        """Read the definitions (when any field is configured).

        Args:
            client: The SendGrid client.
            configured: ``custom_fields``: field name to record path.
            create: ``create_missing_custom_fields``.
            dry_run: Never create anything.

        Raises:
            ValueError: A configured field does not exist and may not be created.
        """
        self._client = client
        self._configured = dict(configured)
        self._create = create
        self._dry_run = dry_run
        self._defined: dict[str, FieldDefinition] = (
            fetch_custom_fields(client) if self._configured else {}
        )
        self._types: dict[str, str] = {}
        self._mappers: list[ContactMapper] = []
        self.created_at: float | None = None
        missing = sorted(set(self._configured) - set(self._defined))
        if missing and not create:
            raise ValueError(
                f"SendGrid has no custom field {', '.join(map(repr, missing))}: create it, or "
                "set create_missing_custom_fields"
            )
        first = next(iter(self._configured), None)
        # Every contact is then mapped with its fields keyed by id: with_ids has nothing to do.
        self.mapped_by_id = first is None or (not missing and self._key_for(first) != first)

    def keyed_for(self, mapper: ContactMapper) -> ContactMapper:
        """Have a mapper key fields by id as soon as this run created the missing ones.

        Args:
            mapper: A mapper built from :meth:`specs_for`.

        Returns:
            The mapper.
        """
        self._mappers.append(mapper)
        return mapper

    def specs_for(self, schema: Mapping) -> list[CustomFieldSpec]:
        """Resolve the configured fields for a stream schema.

        Existing fields keep SendGrid's type; missing ones take the type of the stream
        property and are created before the first upsert (when allowed).

        Args:
            schema: The stream schema.

        Returns:
            One spec per configured field.
        """
        specs = []
        for name, path in self._configured.items():
            keys = split_path(path)
            existing = self._defined.get(name)
            field_type = (
                existing.field_type if existing else field_type_for(schema_at(schema, keys))
            )
            self._types.setdefault(name, field_type)
            specs.append(CustomFieldSpec(name, keys, field_type, self._key_for(name)))
        return specs

    def _key_for(self, name: str) -> str:
        """Key a field by id from the mapping on when its id is known (no copy per contact)."""
        # All by id or all by name (with_ids looks at one key); an id that is also a configured
        # name would be ambiguous.
        found = [self._defined.get(n) for n in self._configured]
        if any(d is None or d.id in self._configured for d in found):
            return name
        return self._defined[name].id

    def ensure_created(self) -> None:
        """Create missing fields once, just before the first contact needs them."""
        missing = [n for n in self._configured if n not in self._defined]
        if not missing or self._dry_run or not self._create:
            return
        for name in missing:
            self._defined[name] = self._create_once(name)
        self.created_at = time.monotonic()
        if self._key_for(next(iter(self._configured))) != next(iter(self._configured)):
            keys = {name: self._key_for(name) for name in self._configured}
            for mapper in self._mappers:
                mapper.key_fields_by(keys)

    def _create_once(self, name: str) -> FieldDefinition:
        """Create a field; a creation whose answer was lost is checked before trying again.

        Raises:
            SendGridUnavailableError: Three tries could not create it.
        """
        for attempt in range(_CREATE_TRIES):
            try:
                return create_custom_field(self._client, name, self._types.get(name, "Text"))
            except SendGridUnavailableError:
                if attempt == _CREATE_TRIES - 1:
                    raise
                # Did it get created before the connection or the server failed?
                found = fetch_custom_fields(self._client).get(name)
                if found is not None:
                    return found
        msg = f"could not create custom field {name!r}"  # pragma: no cover
        raise SendGridUnavailableError(msg)  # pragma: no cover

    def with_ids(self, contact: dict) -> dict:
        """Return the contact with ``custom_fields`` keyed by field id, as SendGrid wants.

        Args:
            contact: Contact with custom fields keyed by name, or already by id (mapped
                after the fields existed).

        Returns:
            The same dict when it has no custom fields keyed by name, else a copy.
        """
        custom = contact.get("custom_fields")
        if not custom or next(iter(custom)) not in self._configured:
            return contact
        sent = dict(contact)
        sent["custom_fields"] = {
            (self._id(key) if key in self._configured else key): value
            for key, value in custom.items()
        }
        return sent

    def with_names(self, contact: dict) -> dict:
        """Return the contact with ``custom_fields`` keyed by field name (for the rejects file).

        Args:
            contact: Contact with custom fields keyed by name or by id.

        Returns:
            The same dict when nothing is keyed by id, else a copy.
        """
        custom = contact.get("custom_fields")
        if not custom:
            return contact
        names = {d.id: d.name for d in self._defined.values() if d.name in self._configured}
        if not any(key in names for key in custom):
            return contact
        shown = dict(contact)
        shown["custom_fields"] = {names.get(key, key): value for key, value in custom.items()}
        return shown

    def _id(self, name: str) -> str:
        definition = self._defined.get(name)
        return definition.id if definition else f"(new field {name})"  # dry run only

    def names_by_id(self) -> dict[str, str]:
        """Field id to name for the configured fields that exist (for list exports).

        Returns:
            The mapping.
        """
        return {d.id: d.name for d in self._defined.values() if d.name in self._configured}

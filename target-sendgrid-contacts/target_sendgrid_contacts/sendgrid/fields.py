"""Custom field definitions: names to ids, and creation of missing fields."""

from __future__ import annotations

import logging
from typing import NamedTuple

from target_sendgrid_contacts.sendgrid.client import SendGridClient

LOGGER = logging.getLogger("target_sendgrid_contacts.sendgrid.fields")

FIELDS_PATH = "/v3/marketing/field_definitions"


class FieldDefinition(NamedTuple):
    """A SendGrid custom field.

    Attributes:
        id: Field id (``e1_T``, ``w2``): the key used in contacts.
        name: Field name.
        field_type: Text, Number or Date.
    """

    id: str
    name: str
    field_type: str


def fetch_custom_fields(client: SendGridClient) -> dict[str, FieldDefinition]:
    """Read the account's custom field definitions.

    Args:
        client: The SendGrid client.

    Returns:
        Field name to definition.
    """
    body = client.request("GET", FIELDS_PATH, ok=(200,)).json()
    return {
        item["name"]: FieldDefinition(item["id"], item["name"], item.get("field_type", "Text"))
        for item in body.get("custom_fields") or []
        if item.get("name") and item.get("id")
    }


def create_custom_field(client: SendGridClient, name: str, field_type: str) -> FieldDefinition:
    """Create a custom field.

    Args:
        client: The SendGrid client.
        name: Field name (letters, digits, underscore; not starting with a digit).
        field_type: Text, Number or Date.

    Returns:
        The new definition.
    """
    body = client.request(
        "POST",
        FIELDS_PATH,
        json={"name": name, "field_type": field_type},
        ok=(200, 201),
        idempotent=False,
    ).json()
    LOGGER.info("Created custom field %s (%s, id %s)", name, field_type, body["id"])
    return FieldDefinition(body["id"], body.get("name", name), body.get("field_type", field_type))

"""Pure splitting of encoded contacts into upsert request bodies (30,000 contacts / 6 MB)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

MAX_CONTACTS_PER_REQUEST = 30_000
# SendGrid says 6 MB; counted in decimal megabytes so either reading of "MB" is honoured.
MAX_BODY_BYTES = 6_000_000


@dataclass(frozen=True)
class UpsertBody:
    """One ``PUT /v3/marketing/contacts`` body.

    Attributes:
        first: Position of its first contact in the input.
        count: Number of contacts in it.
        body: The exact bytes to send.
    """

    first: int
    count: int
    body: bytes


def _head(list_ids: list[str]) -> bytes:
    return b'{"list_ids":' + json.dumps(list_ids).encode() + b',"contacts":['


def single_body(
    list_ids: list[str], encoded_array: bytes, *, max_bytes: int = MAX_BODY_BYTES
) -> bytes | None:
    """The one body carrying a JSON array of contacts, when it fits in ``max_bytes``.

    The same bytes :func:`upsert_bodies` makes of the array's contacts, for one encoder call
    instead of one a contact.

    Args:
        list_ids: Lists every contact of the body is added to.
        encoded_array: The contacts encoded as one compact JSON array (``[{...},{...}]``).
        max_bytes: Bytes per body at most.

    Returns:
        The body, or None when it would be too large (or the array is empty).
    """
    if len(encoded_array) <= 2 or not encoded_array.startswith(b"["):
        return None
    body = b"".join((_head(list_ids), memoryview(encoded_array)[1:-1], b"]}"))  # one copy
    return body if len(body) <= max_bytes else None


def upsert_bodies(
    list_ids: list[str],
    encoded_contacts: Iterable[bytes],
    *,
    max_contacts: int = MAX_CONTACTS_PER_REQUEST,
    max_bytes: int = MAX_BODY_BYTES,
) -> Iterator[UpsertBody]:
    """Group JSON-encoded contacts into request bodies within both limits.

    Args:
        list_ids: Lists every contact of the body is added to.
        encoded_contacts: Each contact already encoded as a JSON object.
        max_contacts: Contacts per body at most.
        max_bytes: Bytes per body at most (measured on the exact bytes sent).

    Yields:
        Bodies in input order.

    Raises:
        ValueError: A single contact does not fit in ``max_bytes``.
    """
    head = _head(list_ids)
    tail = b"]}"
    fixed = len(head) + len(tail)
    chunk: list[bytes] = []
    size = fixed
    first = 0
    for position, contact in enumerate(encoded_contacts):
        added = len(contact) + (1 if chunk else 0)
        if chunk and (len(chunk) >= max_contacts or size + added > max_bytes):
            yield UpsertBody(first, len(chunk), head + b",".join(chunk) + tail)
            chunk, size, first = [], fixed, position
            added = len(contact)
        if fixed + len(contact) > max_bytes:
            raise ValueError(f"contact {position} alone is larger than {max_bytes} bytes")
        chunk.append(contact)
        size += added
    if chunk:
        yield UpsertBody(first, len(chunk), head + b",".join(chunk) + tail)

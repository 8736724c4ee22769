"""Contacts of import jobs still pending, set aside until SendGrid says what it did with them."""

from __future__ import annotations

import itertools
from array import array
from operator import itemgetter
from pathlib import Path

import msgspec

from target_sendgrid_contacts.items import Item

# Beyond this, parts go to disk (~9 ms to write 30,000): 67 pending bodies are ~2 GB in RAM.
IN_MEMORY_CONTACTS = 1_000
Sent = list[tuple[Item, dict]]

_ENCODER = msgspec.msgpack.Encoder()
# A part is spilled with its request body: the body holds the contacts exactly as sent, so only
# what names each record is encoded (the contacts are not walked a second time).
_Named = tuple[list[str], bytes, list[dict]]  # streams, record numbers ("q" array), keys
_NAMED_DECODER = msgspec.msgpack.Decoder(_Named)
_BODY_DECODER = msgspec.json.Decoder()
_HEADER_BYTES = 8
_ITEM, _STREAM, _NUMBER, _KEYS = itemgetter(0), itemgetter(2), itemgetter(3), itemgetter(4)


class KeptPart:
    """One request's contacts, in memory or in a file of the run's private work folder.

    Attributes:
        count: How many contacts the request carried.
    """

    def __init__(self, count: int, part: Sent | None, path: Path | None) -> None:
        self.count = count
        self._part = part
        self._path = path  # what names each record, then the request body (SentParts.keep)

    @property
    def in_memory(self) -> bool:
        """Whether the contacts are held in memory."""
        return self._part is not None


class SentParts:
    """Keeps what each pending job carried, so an errored job can name the records it refused.

    Small parts stay in memory; past ``IN_MEMORY_CONTACTS`` in all they are written to files that
    hold personal data, in the run's private work folder, each deleted once its job is accounted.
    """

    def __init__(self, directory: Path | None) -> None:
        """Create the store.

        Args:
            directory: Private folder (0700, removed with the run) for spilled parts.
        """
        self._directory = directory
        self._in_memory = 0
        self._numbers = itertools.count(1)

    def keep(self, part: Sent, body: bytes) -> KeptPart:
        """Set a request's contacts aside until its job ends.

        Args:
            part: Items with the exact contact dict sent.
            body: The request body that carries exactly these contacts, in this order (a
                spilled part stores the body and what names each record).

        Returns:
            The handle to :meth:`load` or :meth:`drop` them by.
        """
        if self._directory is None or self._in_memory + len(part) <= IN_MEMORY_CONTACTS:
            self._in_memory += len(part)
            return KeptPart(len(part), part, None)
        path = self._directory / f"pending-{next(self._numbers)}.msgpack"
        # C-level passes over the items only (map with itemgetter): no Python frame a contact.
        items = list(map(_ITEM, part))
        named = _ENCODER.encode(
            (
                list(map(_STREAM, items)),
                array("q", map(_NUMBER, items)).tobytes(),
                list(map(_KEYS, items)),
            )
        )
        with path.open("wb") as spilled:
            spilled.write(len(named).to_bytes(_HEADER_BYTES, "little"))
            spilled.write(named)
            spilled.write(body)
        return KeptPart(len(part), None, path)

    def load(self, kept: KeptPart) -> Sent:
        """The contacts set aside (read back from disk when they were spilled).

        Args:
            kept: The handle.

        Returns:
            Items with the exact contact dict sent, in request order.
        """
        if kept._part is not None:
            return kept._part
        if kept._path is None:
            return []
        data = kept._path.read_bytes()
        size = int.from_bytes(data[:_HEADER_BYTES], "little")
        streams, numbers, keys = _NAMED_DECODER.decode(data[_HEADER_BYTES : _HEADER_BYTES + size])
        contacts = _BODY_DECODER.decode(data[_HEADER_BYTES + size :])["contacts"]
        # The item's own contact is the one sent (the same values; ids for field names).
        return [
            (Item(contact["email"], contact, stream, number, key), contact)
            for contact, stream, number, key in zip(
                contacts, streams, array("q", numbers), keys, strict=True
            )
        ]

    def drop(self, kept: KeptPart) -> None:
        """Forget the contacts (their job ended and was accounted for).

        Args:
            kept: The handle.
        """
        if kept._part is not None:
            self._in_memory -= kept.count
            kept._part = None
        elif kept._path is not None:
            kept._path.unlink(missing_ok=True)
            kept._path = None

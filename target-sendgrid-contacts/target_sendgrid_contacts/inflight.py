"""Contacts of import jobs still pending, set aside until SendGrid says what it did with them."""

from __future__ import annotations

import itertools
from pathlib import Path

import msgspec

from target_sendgrid_contacts.items import Item

# Beyond this, parts go to disk (~9 ms to write 30,000): 67 pending bodies are ~2 GB in RAM.
IN_MEMORY_CONTACTS = 1_000
Sent = list[tuple[Item, dict]]

_ENCODER = msgspec.msgpack.Encoder()
# Items are NamedTuples: msgspec writes and reads them as arrays in C, with no Python loop.
_DECODER = msgspec.msgpack.Decoder(Sent)


class KeptPart:
    """One request's contacts, in memory or in a file of the run's private work folder.

    Attributes:
        count: How many contacts the request carried.
    """

    def __init__(self, count: int, part: Sent | None, path: Path | None) -> None:
        self.count = count
        self._part = part
        self._path = path

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

    def keep(self, part: Sent) -> KeptPart:
        """Set a request's contacts aside until its job ends.

        Args:
            part: Items with the exact contact dict sent.

        Returns:
            The handle to :meth:`load` or :meth:`drop` them by.
        """
        if self._directory is None or self._in_memory + len(part) <= IN_MEMORY_CONTACTS:
            self._in_memory += len(part)
            return KeptPart(len(part), part, None)
        path = self._directory / f"pending-{next(self._numbers)}.msgpack"
        path.write_bytes(_ENCODER.encode(part))
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
        return _DECODER.decode(kept._path.read_bytes()) if kept._path else []

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

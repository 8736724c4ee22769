"""Contacts that wait for their list's snapshot: in memory up to a bound, then in private files.

While a list's export is read in the background the run keeps taking input; the contacts of
that list wait here, already hashed for the comparison, and are compared once the snapshot is
there. On disk the hashes go to one file and the contacts to another, so the many unchanged
contacts are never decoded again. The files hold personal data: they live in the run's private
folder (0700), are created 0600 and deleted once read back.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, cast

import msgspec

from target_sendgrid_contacts.items import Item
from target_sendgrid_contacts.snapshot import Prehashed

MEMORY_LIMIT = 5_000  # contacts kept in memory across all lists; more go to disk

Pair = tuple[Item, dict]  # the item, the contact to send
Payload = Pair | bytes  # in memory, or still encoded (see :func:`decode`)

_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder()
_HEADER_BYTES = 16  # per part on disk: contacts, then bytes of their encoded lines


def decode(payload: Payload) -> Pair:
    """The item and contact of a waiting payload.

    Args:
        payload: From :meth:`WaitingContacts.take`.

    Returns:
        ``(item, contact)``.
    """
    if isinstance(payload, bytes):
        fields, contact = _DECODER.decode(payload)
        return Item(*fields), contact
    return payload


class _Spill:
    """One list's waiting contacts on disk: hashes in one file, contacts in another.

    Each part added is written with one C call per file (the hashes as arrays, the contacts as
    JSON lines) and read back whole; only the lines of contacts to send are ever decoded.
    """

    def __init__(self, stem: Path) -> None:
        self.paths = (stem.with_suffix(".hashes"), stem.with_suffix(".jsonl"))
        self.files: list[BinaryIO] = [
            os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb")
            for path in self.paths
        ]

    def add(self, prehashed: Prehashed, pairs: list[Pair]) -> None:
        # A NamedTuple item encodes as a JSON array: decode() builds it back from the fields.
        lines = _ENCODER.encode_lines(pairs)
        hashes = self.files[0]
        hashes.write(len(pairs).to_bytes(8, "little") + len(lines).to_bytes(8, "little"))
        prehashed.email_keys.tofile(hashes)
        prehashed.row_keys.tofile(hashes)
        hashes.write(prehashed.kinds)
        self.files[1].write(lines)

    def read(self) -> Iterator[tuple[Prehashed, list[Payload]]]:
        self.close()
        with self.paths[0].open("rb") as hashes, self.paths[1].open("rb") as contacts:
            while header := hashes.read(_HEADER_BYTES):
                count = int.from_bytes(header[:8], "little")
                size = int.from_bytes(header[8:], "little")
                prehashed = Prehashed.new()
                prehashed.email_keys.fromfile(hashes, count)
                prehashed.row_keys.fromfile(hashes, count)
                prehashed.kinds.extend(hashes.read(count))
                payloads = cast("list[Payload]", contacts.read(size).split(b"\n")[:count])
                if len(prehashed.kinds) != count or len(payloads) != count:
                    raise OSError("a waiting contacts file was cut short")
                yield prehashed, payloads

    def close(self) -> None:
        for file in self.files:
            file.close()

    def delete(self) -> None:
        self.close()
        for path in self.paths:
            path.unlink(missing_ok=True)


class WaitingContacts:
    """Per list, the contacts read before the list's snapshot was ready, in arrival order."""

    def __init__(self, workdir: Path, *, memory_limit: int | None = None) -> None:
        """Prepare (no file is created until the memory bound is reached).

        Args:
            workdir: The run's private folder.
            memory_limit: Contacts kept in memory before they go to disk (default
                ``MEMORY_LIMIT``).
        """
        self._workdir = Path(workdir)
        self._memory_limit = MEMORY_LIMIT if memory_limit is None else memory_limit
        self._in_memory: dict[str, tuple[Prehashed, list[Pair]]] = {}
        self._held = 0
        self._spills: dict[str, _Spill] = {}
        self._made = 0
        self.counts: dict[str, int] = {}

    def __contains__(self, list_name: object) -> bool:
        """Whether contacts of the list wait."""
        return isinstance(list_name, str) and bool(self.counts.get(list_name))

    def add(self, list_name: str, prehashed: Prehashed, pairs: list[Pair]) -> None:
        """Let contacts wait.

        Args:
            list_name: Their list.
            prehashed: Their hashes for the comparison (one entry per pair).
            pairs: ``(item, contact)`` per contact.
        """
        self.counts[list_name] = self.counts.get(list_name, 0) + len(pairs)
        if list_name in self._spills or self._held + len(pairs) > self._memory_limit:
            spill = self._spills.get(list_name)
            if spill is None:
                self._made += 1
                spill = _Spill(self._workdir / f"waiting-{self._made}-{os.getpid()}")
                self._spills[list_name] = spill
            spill.add(prehashed, pairs)
            return
        held = self._in_memory.setdefault(list_name, (Prehashed.new(), []))
        held[0].extend(prehashed)
        held[1].extend(pairs)
        self._held += len(pairs)

    def take(self, list_name: str) -> Iterator[tuple[Prehashed, list[Payload]]]:
        """Hand the list's contacts back, in arrival order, in batches; forget them.

        Args:
            list_name: The list.

        Yields:
            Batches: the contacts' hashes, and their payloads (see :func:`decode`).
        """
        self.counts.pop(list_name, None)
        held = self._in_memory.pop(list_name, None)
        if held is not None:
            self._held -= len(held[1])
            yield held[0], list(held[1])
        spill = self._spills.pop(list_name, None)
        if spill is None:
            return
        try:
            yield from spill.read()
        finally:
            spill.delete()

    def lists(self) -> list[str]:
        """The lists with waiting contacts.

        Returns:
            List names, in the order their first contact waited.
        """
        return [name for name, count in self.counts.items() if count]

    def close(self) -> None:
        """Drop every waiting contact and delete the files (safe to call twice)."""
        for spill in self._spills.values():
            spill.delete()
        self._spills.clear()
        self._in_memory.clear()
        self.counts.clear()
        self._held = 0

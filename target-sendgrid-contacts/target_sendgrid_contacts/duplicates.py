"""Case-insensitive duplicate detection within a run, with memory bounded per contact.

Each list keeps an open-addressing table of 64-bit hashes of the emails it received (12 bytes
a slot, at most 70% full, doubled when full: 48 MB at 2,000,000 contacts, plus 8 bytes a
contact of file offsets); what describes each record kept (stream, number, keys) is appended to
a file on disk and made into text only when a duplicate names it. Hashes are Python's
per-process keyed string hash, so nothing stored outlives the run or reveals an address; a
collision (odds about 1e-7 at 2,000,000 emails) would reject one valid contact as a
duplicate, which the rejects file shows.
"""

from __future__ import annotations

import itertools
from array import array
from collections.abc import Sequence
from operator import itemgetter, methodcaller
from pathlib import Path

import msgspec

from target_sendgrid_contacts.items import Item, describe

_INITIAL_SLOTS = 1 << 15
_MAX_LOAD = 0.7
_GROWTH = 2
# Key values whose text is the same after a msgpack round trip (a datetime's or a Decimal's
# would not be): other records are described as text at once.
_ROUND_TRIP = frozenset({str, int, bool, type(None)})
_ENCODER = msgspec.msgpack.Encoder()
_DECODER = msgspec.msgpack.Decoder()
_EMAIL, _KEYS = itemgetter(0), itemgetter(4)  # Item.email, Item.keys
_VALUES = methodcaller("values")
_chain = itertools.chain.from_iterable


class _HashTable:
    """Maps a non-zero 64-bit hash to a row number; linear probing in two flat arrays."""

    def __init__(self, slots: int = _INITIAL_SLOTS) -> None:
        self._empty(slots)

    def _empty(self, slots: int) -> None:
        self.keys = array("q", bytes(8 * slots))
        self.rows = array("I", bytes(4 * slots))
        self.mask = slots - 1
        self._used = 0
        self._limit = int(slots * _MAX_LOAD)

    def add_all(self, keys: list[int], row: int) -> dict[int, int]:
        """Store each new key with the next row number after ``row``; report the repeats.

        Linear probing for a whole batch in one call (not one call a key).

        Args:
            keys: Non-zero hashes in arrival order.
            row: The last row number used so far.

        Returns:
            Position in ``keys`` of each key already stored, mapped to its row.
        """
        repeats: dict[int, int] = {}
        table, rows, mask = self.keys, self.rows, self.mask
        used, limit = self._used, self._limit
        for position, key in enumerate(keys):
            slot = key & mask
            while (found := table[slot]) and found != key:
                slot = (slot + 1) & mask
            if found:
                repeats[position] = rows[slot]
                continue
            row += 1
            table[slot] = key
            rows[slot] = row
            used += 1
            if used > limit:
                self._used = used
                self._grow()
                table, rows, mask = self.keys, self.rows, self.mask
                used, limit = self._used, self._limit
        self._used = used
        return repeats

    def find(self, key: int) -> int:
        """Return the row stored for ``key``, or 0."""
        keys = self.keys
        slot = key & self.mask
        while keys[slot]:
            if keys[slot] == key:
                return self.rows[slot]
            slot = (slot + 1) & self.mask
        return 0

    def _grow(self) -> None:
        old_keys, old_rows, used = self.keys, self.rows, self._used
        self._empty(len(old_keys) * _GROWTH)
        table, rows, mask = self.keys, self.rows, self.mask
        # Stored keys are distinct: each needs only an empty slot (no comparison, no call).
        live = zip(
            itertools.compress(old_keys, old_keys),
            itertools.compress(old_rows, old_keys),
            strict=True,
        )
        for key, row in live:
            slot = key & mask
            while table[slot]:
                slot = (slot + 1) & mask
            table[slot] = key
            rows[slot] = row
        self._used = used


def _key(email: str) -> int:
    h = hash(email)
    return h if h else 1  # 0 marks an empty slot


class SeenEmails:
    """Remembers which email each list already received in this run, and from which record."""

    def __init__(self, path: Path) -> None:
        """Create the store.

        Args:
            path: File for record descriptions (inside the run's temporary directory).
        """
        self.path = path
        self._tables: dict[str, _HashTable] = {}
        self._file = path.open("w+b")
        self._offsets = array("Q", [0])  # row n's description spans offsets[n-1]..offsets[n]

    def first_seen(self, list_name: str, items: Sequence[Item]) -> dict[int, str]:
        """Record a batch of items for a list and report the repeats.

        The first occurrence (in this batch or an earlier one) is kept; later ones are repeats.
        What describes each kept record is written as data (stream, number, keys), and made
        into text only when a repeat names it: most records are never named.

        Args:
            list_name: Destination list.
            items: Items (normalised email first) in arrival order.

        Returns:
            Position in ``items`` of each repeat, mapped to the description of the record kept.
        """
        table = self._tables.get(list_name)
        if table is None:
            table = self._tables[list_name] = _HashTable()
        offsets = self._offsets
        end = offsets[-1]
        keys = list(map(hash, map(_EMAIL, items)))
        if 0 in keys:  # 0 marks an empty slot
            keys = [key or 1 for key in keys]
        repeats = table.add_all(keys, len(offsets) - 1)
        buffer = bytearray()
        encode = _ENCODER.encode_into
        mark = offsets.append
        # One C-level pass over every key value: usually all round-trip, and no item needs
        # checking on its own.
        plain = _ROUND_TRIP.issuperset(map(type, _chain(map(_VALUES, map(_KEYS, items)))))
        for position, item in enumerate(items):
            if position in repeats:
                continue
            if not plain and not _ROUND_TRIP.issuperset(map(type, item[4].values())):
                encode(item.origin(), buffer, -1)  # its text, as written, for odd keys
            else:
                try:
                    encode(item[2:], buffer, -1)  # stream, record number, keys
                except OverflowError:  # an integer key beyond 64 bits
                    del buffer[offsets[-1] - end :]  # what the encoder wrote before it failed
                    encode(item.origin(), buffer, -1)
            mark(end + len(buffer))
        self._file.seek(0, 2)
        self._file.write(buffer)
        return {position: self._origin(kept) for position, kept in repeats.items()}

    def _origin(self, row: int) -> str:
        start, end = self._offsets[row - 1], self._offsets[row]
        self._file.seek(start)
        found = _DECODER.decode(self._file.read(end - start))
        return found if type(found) is str else describe(*found)

    def origin_of(self, list_name: str, email: str) -> str | None:
        """Return the description of the record that brought an email to a list.

        Args:
            list_name: Destination list.
            email: Normalised email.

        Returns:
            The description, or None when this run did not send that email to that list.
        """
        table = self._tables.get(list_name)
        row = table.find(_key(email)) if table is not None else 0
        return self._origin(row) if row else None

    def close(self) -> None:
        """Close and delete the store (safe to call twice)."""
        self._file.close()
        self._tables.clear()
        self.path.unlink(missing_ok=True)

"""Case-insensitive duplicate detection within a run, with memory bounded per contact.

Each list keeps the 64-bit hashes of the emails it received in sorted numpy runs (12 bytes a
contact: hash and row; runs of similar size are merged, so there are at most ~log2(n / batch)
of them: 24 MB at 2,000,000 contacts, plus 8 bytes a contact of file offsets); what describes
each record kept (stream, number, keys) is appended to a file on disk and made into text only
when a duplicate names it. Hashes are Python's per-process keyed string hash, so nothing
stored outlives the run or reveals an address; a collision (odds about 1e-7 at 2,000,000
emails) would reject one valid contact as a duplicate, which the rejects file shows.
"""

from __future__ import annotations

import itertools
from array import array
from collections.abc import Sequence
from operator import itemgetter, methodcaller
from pathlib import Path

import msgspec
import numpy as np

from target_sendgrid_contacts.items import Item, describe

# Key values whose text is the same after a msgpack round trip (a datetime's or a Decimal's
# would not be): other records are described as text at once.
_ROUND_TRIP = frozenset({str, int, bool, type(None)})
_ENCODER = msgspec.msgpack.Encoder()
_DECODER = msgspec.msgpack.Decoder()
_EMAIL, _KEYS = itemgetter(0), itemgetter(4)  # Item.email, Item.keys
_VALUES = methodcaller("values")
_chain = itertools.chain.from_iterable


class _SortedRuns:
    """Maps a 64-bit hash to a row number (from 1): sorted runs searched a batch at a time.

    A whole batch is sorted, found and stored in numpy calls, with no Python step a key (a
    Python hash table's probing loop cost ~1 us a key, a fifth of the intake's duplicates
    check at 2,000,000 contacts).
    """

    def __init__(self) -> None:
        self._keys: list[np.ndarray] = []  # sorted int64, largest run first
        self._rows: list[np.ndarray] = []  # uint32, in the order of their run's keys

    def add_all(self, keys: np.ndarray, row: int) -> dict[int, int]:
        """Store each new key with the next row number after ``row``; report the repeats.

        Rows go to new keys in arrival order, as if the keys were added one by one.

        Args:
            keys: Hashes (int64) in arrival order.
            row: The last row number used so far.

        Returns:
            Position in ``keys`` of each repeat (a key stored before, or earlier in this
            batch), mapped to the row of its first occurrence.
        """
        count = len(keys)
        if not count:
            return {}
        order = np.argsort(keys, kind="stable")  # equal keys keep arrival order
        ordered = keys[order]
        starts = np.empty(count, dtype=bool)  # the first of each run of equal keys
        starts[0] = True
        np.not_equal(ordered[1:], ordered[:-1], out=starts[1:])
        distinct = ordered[starts]  # sorted
        earliest = order[starts]  # its first position in the batch
        found = np.zeros(len(distinct), dtype=np.int64)  # 0: not stored before
        for run_keys, run_rows in zip(self._keys, self._rows, strict=True):
            at = np.searchsorted(run_keys, distinct)
            np.minimum(at, len(run_keys) - 1, out=at)
            hit = run_keys[at] == distinct
            found[hit] = run_rows[at[hit]]
        new = found == 0
        new_earliest = earliest[new]
        rows = np.empty(len(new_earliest), dtype=np.int64)
        rows[np.argsort(new_earliest)] = np.arange(row + 1, row + 1 + len(new_earliest))
        found[new] = rows
        kept = np.zeros(count, dtype=bool)
        kept[new_earliest] = True
        repeats_at = np.flatnonzero(~kept)
        repeats: dict[int, int] = {}
        if len(repeats_at):
            group = np.empty(count, dtype=np.int64)  # position -> index in distinct
            group[order] = np.cumsum(starts) - 1
            repeats = dict(zip(repeats_at.tolist(), found[group[repeats_at]].tolist(), strict=True))
        if len(rows):
            self._push(distinct[new], rows.astype(np.uint32))
        return repeats

    def _push(self, keys: np.ndarray, rows: np.ndarray) -> None:
        self._keys.append(keys)
        self._rows.append(rows)
        # Merged while the older run is at most twice the newer: sizes at least halve along
        # the list, so a lookup searches few runs and each key is merged ~log2 times in all.
        while len(self._keys) > 1 and len(self._keys[-2]) <= 2 * len(self._keys[-1]):
            merged = np.concatenate(self._keys[-2:])
            merged_rows = np.concatenate(self._rows[-2:])
            order = np.argsort(merged, kind="stable")  # two sorted runs: a linear merge
            del self._keys[-2:], self._rows[-2:]
            self._keys.append(merged[order])
            self._rows.append(merged_rows[order])

    def find(self, key: int) -> int:
        """Return the row stored for ``key``, or 0."""
        for run_keys, run_rows in zip(self._keys, self._rows, strict=True):
            at = int(np.searchsorted(run_keys, key))
            if at < len(run_keys) and run_keys[at] == key:
                return int(run_rows[at])
        return 0


class SeenEmails:
    """Remembers which email each list already received in this run, and from which record."""

    def __init__(self, path: Path) -> None:
        """Create the store.

        Args:
            path: File for record descriptions (inside the run's temporary directory).
        """
        self.path = path
        self._tables: dict[str, _SortedRuns] = {}
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
            table = self._tables[list_name] = _SortedRuns()
        offsets = self._offsets
        end = offsets[-1]
        keys = np.fromiter(map(hash, map(_EMAIL, items)), dtype=np.int64, count=len(items))
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
        row = table.find(hash(email)) if table is not None else 0
        return self._origin(row) if row else None

    def close(self) -> None:
        """Close and delete the store (safe to call twice)."""
        self._file.close()
        self._tables.clear()
        self.path.unlink(missing_ok=True)

"""The list snapshot store: a list's members as exported at the start of the run.

The members live in SQLite in the run's work directory: per member a keyed 8-byte hash of the
email, the SendGrid contact id, keyed hashes of each field (raw and canonical form) and one
8-byte digest of the whole row. Memory holds only three sorted arrays of 8-byte integers (email
key, row digest, row id; ~40 MB at 2,000,000 members) and a seen flag per member: most contacts
are decided with one bisect and one hash, the store is read only for those that differ. No
email address or name is stored anywhere, and the key exists only in the run's memory (a
builder process gets it through its start-up pipe). Whether anybody is removed is decided in
``removal.py``, never here.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import sqlite3
import uuid
from array import array
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Literal

from target_sendgrid_contacts.sendgrid.exports import ExportDownloadError
from target_sendgrid_contacts.value_forms import sent_forms, stored_forms

LOGGER = logging.getLogger("target_sendgrid_contacts.snapshot")

Comparison = Literal["new", "changed", "unchanged"]

RESERVED_COLUMNS = {"first_name": "FIRST_NAME", "last_name": "LAST_NAME"}
_HASH_BYTES = 8
_SLOT_BYTES = 2 * _HASH_BYTES  # raw-text hash, then canonical-form hash
_INSERT_BATCH = 20_000
_CACHE_KIB = 16 * 1024  # SQLite page cache (and sort memory); the rest stays on disk
_LOOKUP_BATCH = 500  # emails per SELECT ... IN (...): well under SQLite's variable limit
_ROWID_TYPE = "i"  # 4 bytes: a list's row ids stay far below 2**31
_CACHE_ENTRIES = 100_000  # distinct values whose hashes are kept, per side


Prehash = tuple[int, int, int]  # (email key, row key, kind): what comparing a contact needs
NO_EMAIL, NOT_COMPARABLE, SOME_FIELDS, ALL_FIELDS = 0, 1, 2, 3  # the kinds


class ContactHashes:
    """The keyed hashes of one snapshot, so contacts can be hashed before it is read.

    Not safe for concurrent use from several threads.
    """

    def __init__(self, key: bytes, slots: dict[str, int]) -> None:
        """Key the hashes.

        Args:
            key: The run's secret for this snapshot (never written anywhere).
            slots: Comparable field key (``first_name``, ``custom:<field id>``) to slot number.
        """
        self.slots = slots
        self._hasher = hashlib.blake2b(digest_size=_HASH_BYTES, key=key)
        # Names and property values repeat a lot: hash each distinct form once.
        self._stored_cache: dict[str, tuple[bytes, bytes]] = {}
        self._sent_cache: dict[tuple[type, object], tuple[bytes, bytes | None]] = {}

    def hash(self, text: str) -> bytes:
        """Keyed 8-byte hash of a text.

        Args:
            text: The text.

        Returns:
            The hash.
        """
        hasher = self._hasher.copy()  # cheaper than keying a new hasher for every value
        hasher.update(text.encode())
        return hasher.digest()

    def email_key(self, email: str) -> int:
        """The email's key (trimmed, lower-cased, hashed) as a signed 64-bit integer.

        Args:
            email: An email address.

        Returns:
            The key.
        """
        return int.from_bytes(self.hash(email.strip().lower()), "big", signed=True)

    def row_key(self, hashes: list[bytes]) -> int:
        """One 8-byte digest of a row's per-field hashes, as a signed 64-bit integer.

        Args:
            hashes: One hash per slot, in slot order.

        Returns:
            The digest.
        """
        hasher = self._hasher.copy()
        hasher.update(b"".join(hashes))
        return int.from_bytes(hasher.digest(), "big", signed=True)

    def stored_hashes(self, cell: str | None) -> tuple[bytes, bytes]:
        """Raw and canonical hashes of an export cell.

        Args:
            cell: The cell, or None without a column.

        Returns:
            ``(raw hash, canonical hash)``.
        """
        cache = self._stored_cache
        if cell is not None:
            found = cache.get(cell)
            if found is not None:
                return found
        raw, canonical = stored_forms(cell)
        raw_hash = self.hash(raw)
        hashes = (raw_hash, raw_hash if canonical == raw else self.hash(canonical))
        if cell is not None:
            if len(cache) >= _CACHE_ENTRIES:
                cache.clear()  # bounded memory; the next values refill it
            cache[cell] = hashes
        return hashes

    def sent_hashes(self, value: object) -> tuple[bytes, bytes | None]:
        """Raw and canonical (or None) hashes of a value the target would send.

        Args:
            value: A contact field value.

        Returns:
            ``(raw hash, canonical hash or None)``.
        """
        # Keyed by type too: True, 1 and 1.0 are one dict key but three spellings.
        cache_key: tuple[type, object] | None = (type(value), value)
        cache = self._sent_cache
        try:
            found = cache.get(cache_key)  # type: ignore[arg-type]
        except TypeError:  # an unhashable value: compared without the cache
            found, cache_key = None, None
        if found is not None:
            return found
        raw, canonical = sent_forms(value)
        hashes = (self.hash(raw), None if canonical is None else self.hash(canonical))
        if cache_key is not None:
            if len(cache) >= _CACHE_ENTRIES:
                cache.clear()
            cache[cache_key] = hashes
        return hashes

    def sent_fields(self, contact: dict) -> list[tuple[int, object]] | None:
        """Pair each sent comparable field with its slot; None if one cannot be compared.

        Args:
            contact: A SendGrid contact (custom fields keyed by id).

        Returns:
            ``(slot, value)`` pairs, or None.
        """
        sent: list[tuple[int, object]] = []
        for key, value in contact.items():
            if key == "email":
                continue
            if key == "custom_fields":
                for field_id, field_value in (value or {}).items():
                    slot = self.slots.get(f"custom:{field_id}")
                    if slot is None:
                        return None
                    sent.append((slot, field_value))
                continue
            slot = self.slots.get(key)
            if slot is None:
                return None  # a field the export was not read for: sending it is the safe side
            sent.append((slot, value))
        return sent

    def prehash(self, contact: dict) -> Prehash:
        """What comparing the contact needs, computed before the snapshot is there.

        Args:
            contact: A SendGrid contact (custom fields keyed by id).

        Returns:
            ``(email key, row key, kind)``; the row key only when every slot is sent.
        """
        email = contact.get("email")
        if not email:
            return 0, 0, NO_EMAIL
        email_key = self.email_key(str(email))
        sent = self.sent_fields(contact)
        if sent is None:
            return email_key, 0, NOT_COMPARABLE
        if len(sent) != len(self.slots):
            return email_key, 0, SOME_FIELDS
        preferred: list[bytes] = [b""] * len(self.slots)
        for slot, value in sent:
            raw_hash, canonical_hash = self.sent_hashes(value)
            preferred[slot] = raw_hash if canonical_hash is None else canonical_hash
        return email_key, self.row_key(preferred), ALL_FIELDS

    def clear(self) -> None:
        """Drop the caches."""
        self._stored_cache.clear()
        self._sent_cache.clear()


class ListSnapshot:
    """A list's members at export time, compared one cohort contact at a time.

    Not safe for concurrent use from several threads.

    Attributes:
        size: Members in the export.
    """

    def __init__(
        self, path: Path, slots: dict[str, int], *, key: bytes | None = None, create: bool = True
    ) -> None:
        """Open an empty snapshot store (use :meth:`load`, :meth:`attach` or :meth:`empty`).

        Args:
            path: SQLite file to create (or, with ``create=False``, to open).
            slots: Comparable field key (``first_name``, ``custom:<field id>``) to slot number.
            key: Hash key (a builder process gets the run's key this way); new if None.
            create: Create the table (False: the file was filled by a builder process).
        """
        self.path = path
        self.size = 0
        self.absent: set[str] = set()  # export columns missing for a mapped field
        self._slots = slots
        # Keyed with a secret that lives only in this run's memory: the file alone reveals nothing.
        self.hashes = ContactHashes(key or os.urandom(16), slots)
        self._conn: sqlite3.Connection | None = sqlite3.connect(path, check_same_thread=False)
        for pragma in (
            "journal_mode = OFF",
            "synchronous = OFF",
            "locking_mode = EXCLUSIVE",
            f"cache_size = -{_CACHE_KIB}",
        ):
            self._conn.execute(f"PRAGMA {pragma}")
        if create:
            self._conn.execute(
                "CREATE TABLE members (email_key INTEGER NOT NULL, contact_id TEXT NOT NULL, "
                "digest BLOB NOT NULL, row_key INTEGER NOT NULL)"
            )
        self._set_lookup(array("q"), array("q"), array(_ROWID_TYPE))

    @classmethod
    def attach(cls, path: Path, slots: dict[str, int], key: bytes, size: int) -> ListSnapshot:
        """Open a store a builder process filled and indexed with this run's key.

        Args:
            path: The filled SQLite file (deleted on :meth:`close`).
            slots: The slots it was filled with.
            key: The key it was filled with.
            size: Members it holds.

        Returns:
            The snapshot.
        """
        snapshot = cls(path, slots, key=key, create=False)
        snapshot.size = size
        snapshot._load_lookup()
        return snapshot

    @staticmethod
    def layout(custom_field_names: dict[str, str]) -> tuple[dict[str, int], list[str]]:
        """Slots and export columns for the mapped fields.

        Args:
            custom_field_names: Custom field id to field name.

        Returns:
            ``(slots, columns)``: field key to slot number, and the column of each slot.
        """
        slots = {key: number for number, key in enumerate(RESERVED_COLUMNS)}
        columns = list(RESERVED_COLUMNS.values())
        for field_id, name in custom_field_names.items():
            slots[f"custom:{field_id}"] = len(columns)
            columns.append(name.strip().upper())
        return slots, columns

    @classmethod
    def empty(cls, workdir: Path) -> ListSnapshot:
        """Return a snapshot of a list with no members (just created, or absent in a dry run).

        Args:
            workdir: Directory for the SQLite file.

        Returns:
            A snapshot in which every contact is new and nobody leaves.
        """
        snapshot = cls(snapshot_path(workdir, "new"), {})
        snapshot._index()
        return snapshot

    def log_absent(self) -> None:
        """Say which mapped fields the export has no column for (column names only)."""
        if self.absent:
            LOGGER.info(
                "The export has no column for %s: contacts carrying it count as changed",
                ", ".join(sorted(self.absent)),
            )

    def fill(self, rows: Iterable[dict[str, str]], columns: list[str]) -> None:
        """Store every exported row, then index (raises what the rows raise).

        Args:
            rows: Export rows keyed by upper-cased header.
            columns: Export column of each slot (see :meth:`layout`).
        """
        conn = self._require()
        batch: list[tuple[int, str, bytes, int]] = []
        absent = self.absent
        stored_hashes = self.hashes.stored_hashes
        for row in rows:
            contact_id = row.get("CONTACT_ID", "").strip()
            if not contact_id:
                raise ExportDownloadError("export row without a CONTACT_ID")
            parts = []
            preferred = []
            for column in columns:
                cell = row.get(column)
                if cell is None:
                    absent.add(column)
                raw_hash, canonical_hash = stored_hashes(cell)
                parts.append(raw_hash)
                parts.append(canonical_hash)
                preferred.append(canonical_hash)
            # An empty EMAIL (contact known only by phone or external id) never matches: a leaver.
            batch.append(
                (
                    self.hashes.email_key(row.get("EMAIL", "")),
                    contact_id,
                    b"".join(parts),
                    self.hashes.row_key(preferred),
                )
            )
            if len(batch) >= _INSERT_BATCH:
                conn.executemany("INSERT INTO members VALUES (?, ?, ?, ?)", batch)
                self.size += len(batch)
                batch.clear()
        if batch:
            conn.executemany("INSERT INTO members VALUES (?, ?, ?, ?)", batch)
            self.size += len(batch)
        self.hashes.clear()
        self._index()

    def _index(self) -> None:
        conn = self._require()
        # Built after the bulk insert: one sort instead of 2,000,000 random B-tree inserts.
        # It covers the lookup columns, so reading them in key order never visits the table.
        conn.execute("CREATE INDEX members_email ON members (email_key, row_key)")
        conn.commit()
        self._read_lookup()

    def _read_lookup(self) -> None:
        """Load the sorted email keys, row keys and row ids into compact arrays."""
        keys, row_keys, rowids = array("q"), array("q"), array(_ROWID_TYPE)
        cursor = self._require().execute(
            "SELECT email_key, row_key, rowid FROM members ORDER BY email_key, row_key"
        )
        while chunk := cursor.fetchmany(_INSERT_BATCH):
            for email_key, row_key, rowid in chunk:
                keys.append(email_key)
                row_keys.append(row_key)
                rowids.append(rowid)
        self._set_lookup(keys, row_keys, rowids)

    def _set_lookup(self, keys: array, row_keys: array, rowids: array) -> None:
        self._keys, self._row_keys, self._rowids = keys, row_keys, rowids
        self._seen = bytearray(max(rowids, default=0) + 1)

    def dump_lookup(self) -> None:
        """Write the lookup arrays next to the store (a builder process hands them over)."""
        with _lookup_path(self.path).open("wb") as out:
            out.write(len(self._keys).to_bytes(8, "little"))
            for values in (self._keys, self._row_keys, self._rowids):
                values.tofile(out)

    def _load_lookup(self) -> None:
        path = _lookup_path(self.path)
        try:
            with path.open("rb") as source:
                count = int.from_bytes(source.read(8), "little")
                arrays = []
                for typecode in ("q", "q", _ROWID_TYPE):
                    values = array(typecode)
                    values.fromfile(source, count)
                    arrays.append(values)
        finally:
            path.unlink(missing_ok=True)
        self._set_lookup(*arrays)

    def _require(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError("the snapshot is closed")
        return self._conn

    def compare(self, contact: dict) -> Comparison:
        """Classify a cohort contact against the list and mark its email as seen.

        Args:
            contact: The SendGrid contact the target would send: ``email`` (lower-cased),
                optionally ``first_name``, ``last_name`` and ``custom_fields`` keyed by field
                id. A field absent from the contact is not compared (SendGrid keeps it).

        Returns:
            ``new`` (not on the list), ``changed`` (on the list, a sent field differs) or
            ``unchanged``.
        """
        return self.compare_many([contact])[0]

    def compare_many(self, contacts: list[dict]) -> list[Comparison]:
        """Classify many contacts at once and mark their emails as seen; see :meth:`compare`.

        Most contacts are decided in memory: one 8-byte digest of all of a member's fields.
        Only those whose digest differs are compared field by field, from the store.

        Args:
            contacts: SendGrid contacts, as for :meth:`compare`.

        Returns:
            One comparison per contact, in order.
        """
        return self.compare_prehashed(
            [self.hashes.prehash(contact) for contact in contacts], contacts.__getitem__
        )

    def compare_prehashed(
        self, prehashes: list[Prehash], contact_at: Callable[[int], dict]
    ) -> list[Comparison]:
        """Classify contacts hashed beforehand (by :attr:`hashes`); see :meth:`compare_many`.

        Args:
            prehashes: One :meth:`ContactHashes.prehash` per contact.
            contact_at: The contact at a position, asked only for the few compared field by
                field.

        Returns:
            One comparison per contact, in order.
        """
        keys, row_keys, rowids, seen = self._keys, self._row_keys, self._rowids, self._seen
        count = len(keys)
        verdicts: list[Comparison] = []
        closer: dict[int, list[int]] = {}  # position -> its rows' ids
        for position, (email_key, row_key, kind) in enumerate(prehashes):
            if kind == NO_EMAIL or not count:
                verdicts.append("new")
                continue
            index = bisect_left(keys, email_key)
            if index == count or keys[index] != email_key:
                verdicts.append("new")
                continue
            found = []
            while index < count and keys[index] == email_key:
                found.append(index)
                index += 1
            for at in found:
                seen[rowids[at]] = 1
            if kind == NOT_COMPARABLE:
                verdicts.append("changed")
                continue
            if kind == ALL_FIELDS and all(row_keys[at] == row_key for at in found):
                verdicts.append("unchanged")
                continue
            verdicts.append("changed")  # unless every field matches in another spelling
            closer[position] = [rowids[at] for at in found]
        if closer:
            self._compare_closer(closer, contact_at, verdicts)
        return verdicts

    def _compare_closer(
        self,
        closer: dict[int, list[int]],
        contact_at: Callable[[int], dict],
        verdicts: list[Comparison],
    ) -> None:
        conn = self._require()
        wanted = list({rowid for ids in closer.values() for rowid in ids})
        digests: dict[int, bytes] = {}
        for start in range(0, len(wanted), _LOOKUP_BATCH):
            chunk = wanted[start : start + _LOOKUP_BATCH]
            marks = ",".join("?" * len(chunk))
            # Only "?" markers are formatted in; the row ids are bound parameters.
            digests.update(
                conn.execute(
                    f"SELECT rowid, digest FROM members WHERE rowid IN ({marks})",  # noqa: S608
                    chunk,
                ).fetchall()
            )
        for position, ids in closer.items():
            sent = self.hashes.sent_fields(contact_at(position)) or []
            if all(
                all(self._slot_equal(digests[rowid], slot, value) for slot, value in sent)
                for rowid in ids
            ):
                verdicts[position] = "unchanged"

    def _slot_equal(self, digest: bytes, slot: int, value: object) -> bool:
        start = slot * _SLOT_BYTES
        raw_hash, canonical_hash = self.hashes.sent_hashes(value)
        if raw_hash == digest[start : start + _HASH_BYTES]:
            return True
        return canonical_hash is not None and (
            canonical_hash == digest[start + _HASH_BYTES : start + _SLOT_BYTES]
        )

    def leavers(self) -> Iterator[str]:
        """Yield the contact ids of members not seen in this run (read lazily from disk).

        Yields:
            SendGrid contact ids.
        """
        seen = self._seen
        cursor = self._require().execute("SELECT rowid, contact_id FROM members")
        for rowid, contact_id in cursor:
            if not seen[rowid]:
                yield contact_id

    def count_leavers(self) -> int:
        """Return how many members were not seen in this run.

        Returns:
            The number of leavers.
        """
        return self.size - self._seen.count(1)

    def close(self) -> None:
        """Close the store and delete its file (safe to call twice)."""
        self.detach()
        self._set_lookup(array("q"), array("q"), array(_ROWID_TYPE))
        self.path.unlink(missing_ok=True)
        _lookup_path(self.path).unlink(missing_ok=True)

    def detach(self) -> None:
        """Close the connection and keep the file (a builder process hands it over)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        self.hashes.clear()


def _lookup_path(path: Path) -> Path:
    return path.with_name(path.name + ".lookup")


def snapshot_path(workdir: Path, list_id: str) -> Path:
    """A new SQLite file name in the run's folder for one list's snapshot.

    Args:
        workdir: The run's private folder.
        list_id: The list.

    Returns:
        A path no other snapshot uses.
    """
    safe = re.sub(r"[^A-Za-z0-9_-]", "_", list_id)[:64]
    return Path(workdir) / f"snapshot-{safe}-{uuid.uuid4().hex[:8]}.sqlite"

"""Mirror sync: a list's members as exported at the start of the run, and what to change.

The snapshot lives in SQLite in a work directory, so 2,000,000 members cost disk, not memory. It
holds no email addresses or names: only keyed 8-byte hashes of them (the key exists only in this
process), the SendGrid contact id and a seen flag. Removal is decided only from a whole snapshot
and a cohort delivered whole in this run.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import math
import os
import re
import sqlite3
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from target_sendgrid_contacts.sendgrid.exports import (
    ExportDownloadError,
    read_export,
    start_export,
    wait_for_export,
)

if TYPE_CHECKING:
    from target_sendgrid_contacts.sendgrid.client import SendGridClient

LOGGER = logging.getLogger("target_sendgrid_contacts.mirror")

Comparison = Literal["new", "changed", "unchanged"]

RESERVED_COLUMNS = {"first_name": "FIRST_NAME", "last_name": "LAST_NAME"}
_HASH_BYTES = 8
_SLOT_BYTES = 2 * _HASH_BYTES  # raw-text hash, then canonical-form hash
_INSERT_BATCH = 20_000
_MARK_BATCH = 10_000
_CACHE_KIB = 16 * 1024  # SQLite page cache (and sort memory); the rest stays on disk
_DOWNLOAD_ATTEMPTS = 2  # a file cut off mid-stream is read once more, from the start
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_DATE_LIKE = re.compile(r"\d{4}-\d{2}-\d{2}|\d{1,2}/\d{1,2}/\d{4}")


@dataclass(frozen=True)
class RemovalDecision:
    """Whether leavers may be taken off a list in this run, and why.

    Attributes:
        allowed: True when removal may go ahead.
        reason: A sentence for the report and the log.
    """

    allowed: bool
    reason: str


def removal_decision(
    *, list_size: int, leavers: int, cohort_complete: bool, max_removal_ratio: float | None
) -> RemovalDecision:
    """Decide whether a mirror run may remove a list's leavers.

    Args:
        list_size: Members of the list at export time.
        leavers: Members not in the cohort.
        cohort_complete: The tap delivered the whole cohort in this run.
        max_removal_ratio: Largest share of the list one run may remove (0-1), or None.

    Returns:
        The decision with a reason naming the numbers.
    """
    if not cohort_complete:
        return RemovalDecision(
            False,
            f"cohort not delivered whole in this run: nobody removed ({leavers} of {list_size} "
            "members would have left)",
        )
    if leavers == 0:
        return RemovalDecision(True, "nobody left the cohort")
    if max_removal_ratio is not None and list_size > 0:
        share = leavers / list_size
        if share > max_removal_ratio:
            return RemovalDecision(
                False,
                f"would remove {leavers} of {list_size} members ({share:.1%}), more than "
                f"max_removal_ratio {max_removal_ratio:g} ({max_removal_ratio:.1%}): "
                "nobody removed",
            )
    return RemovalDecision(True, f"{leavers} of {list_size} members left the cohort")


def _number_form(value: float) -> str:
    if math.isfinite(value) and value.is_integer() and abs(value) < 1e15:
        return f"n:{int(value)}"
    return f"n:{value!r}"


def _date_form(value: dt.date) -> str:
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.timezone.utc).replace(tzinfo=None)
        if value.time() != dt.time():
            return f"d:{value.isoformat()}"
        value = value.date()
    return f"d:{value.isoformat()}"


def _parse_date(text: str) -> dt.date | None:
    if not _DATE_LIKE.match(text):
        return None
    iso = text[:-1] + "+00:00" if text.endswith("Z") else text  # Python 3.10 reads no "Z"
    try:
        return dt.datetime.fromisoformat(iso)
    except ValueError:
        pass
    try:
        return dt.datetime.strptime(text, "%m/%d/%Y")
    except ValueError:
        return None


def stored_forms(text: str | None) -> tuple[str, str]:
    """Return the raw and canonical comparison forms of a value read from an export.

    Args:
        text: The CSV cell, or None when the export has no column for the field.

    Returns:
        ``(raw, canonical)``; canonical reads numbers and dates as such, else equals raw.
    """
    if text is None:
        return "absent", "absent"  # no "s:" prefix, so no sent value ever matches
    raw = f"s:{text}"
    if _NUMBER.fullmatch(text):
        return raw, _number_form(float(text))
    parsed = _parse_date(text)
    return raw, (_date_form(parsed) if parsed is not None else raw)


def sent_forms(value: object) -> tuple[str, str | None]:
    """Return the raw and canonical comparison forms of a value the target would send.

    Text is compared exactly, except that two spellings of one date are equal; JSON numbers
    compare as numbers ("42" in the export equals 42 sent); None equals an empty cell.

    Args:
        value: A contact field value.

    Returns:
        ``(raw, canonical)``; canonical is None when only the raw form may match.
    """
    if value is None:
        return "s:", None
    if isinstance(value, bool):
        return f"s:{str(value).lower()}", None
    if isinstance(value, (int, float)):
        return f"s:{value}", _number_form(float(value))
    if isinstance(value, dt.date):
        return f"s:{value.isoformat()}", _date_form(value)
    text = str(value)
    parsed = _parse_date(text)
    return f"s:{text}", (_date_form(parsed) if parsed is not None else None)


class ListSnapshot:
    """A list's members at export time, compared one cohort contact at a time.

    Not safe for concurrent use from several threads.

    Attributes:
        size: Members in the export.
    """

    def __init__(self, path: Path, slots: dict[str, int]) -> None:
        """Open an empty snapshot store (use :meth:`load` or :meth:`empty`).

        Args:
            path: SQLite file to create.
            slots: Comparable field key (``first_name``, ``custom:<field id>``) to slot number.
        """
        self.path = path
        self.size = 0
        self._slots = slots
        # Keyed with a secret that lives only in this process: the file alone reveals nothing.
        self._hasher = hashlib.blake2b(digest_size=_HASH_BYTES, key=os.urandom(16))
        self._pending: list[int] = []
        self._conn: sqlite3.Connection | None = sqlite3.connect(path, check_same_thread=False)
        for pragma in (
            "journal_mode = OFF",
            "synchronous = OFF",
            "locking_mode = EXCLUSIVE",
            f"cache_size = -{_CACHE_KIB}",
        ):
            self._conn.execute(f"PRAGMA {pragma}")
        self._conn.execute(
            "CREATE TABLE members (email_key INTEGER NOT NULL, contact_id TEXT NOT NULL, "
            "digest BLOB NOT NULL, seen INTEGER NOT NULL DEFAULT 0)"
        )

    @classmethod
    def load(
        cls,
        client: SendGridClient,
        list_id: str,
        *,
        custom_field_names: dict[str, str],
        workdir: Path,
        poll_interval: float,
        timeout: float,
    ) -> ListSnapshot:
        """Export a list and store its members, whole or not at all.

        A file that arrives truncated or corrupt is read once more from the start; rows from a
        broken reading never stay in the snapshot.

        Args:
            client: The SendGrid client.
            list_id: The list to read.
            custom_field_names: Custom field id to field name, for every custom field the target
                maps (the export names columns by field name, contacts key them by id).
            workdir: Directory for the SQLite file (a temporary directory of the run).
            poll_interval: First wait between export status polls.
            timeout: Bound on the wait for the export.

        Returns:
            The snapshot.

        Raises:
            ExportError: The export failed or timed out, or a file was truncated or corrupt
                in both readings.
            SendGridError: SendGrid refused a request.
        """
        slots = {key: number for number, key in enumerate(RESERVED_COLUMNS)}
        columns = list(RESERVED_COLUMNS.values())
        for field_id, name in custom_field_names.items():
            slots[f"custom:{field_id}"] = len(columns)
            columns.append(name.strip().upper())
        snapshot = cls(_snapshot_path(workdir, list_id), slots)
        try:
            export_id = start_export(client, list_id)
            for attempt in range(1, _DOWNLOAD_ATTEMPTS + 1):
                # Polled again on a retry: the answer carries freshly signed file URLs.
                status = wait_for_export(
                    client, export_id, poll_interval=poll_interval, timeout=timeout
                )
                try:
                    snapshot._fill(read_export(client, list_id, status), columns)
                    break
                except ExportDownloadError as exc:
                    if attempt == _DOWNLOAD_ATTEMPTS:
                        raise
                    LOGGER.warning("%s; reading the export again from the start", exc)
                    snapshot._clear()
        except BaseException:
            snapshot.close()
            raise
        LOGGER.info("Snapshot of list %s: %d members", list_id, snapshot.size)
        return snapshot

    @classmethod
    def empty(cls, workdir: Path) -> ListSnapshot:
        """Return a snapshot of a list with no members (just created, or absent in a dry run).

        Args:
            workdir: Directory for the SQLite file.

        Returns:
            A snapshot in which every contact is new and nobody leaves.
        """
        snapshot = cls(_snapshot_path(workdir, "new"), {})
        snapshot._index()
        return snapshot

    def _hash(self, text: str) -> bytes:
        hasher = self._hasher.copy()  # cheaper than keying a new hasher for every value
        hasher.update(text.encode())
        return hasher.digest()

    def _email_key(self, email: str) -> int:
        return int.from_bytes(self._hash(email.strip().lower()), "big", signed=True)

    def _fill(self, rows: Iterable[dict[str, str]], columns: list[str]) -> None:
        conn = self._require()
        batch: list[tuple[int, str, bytes]] = []
        absent: set[str] = set()
        for row in rows:
            contact_id = row.get("CONTACT_ID", "").strip()
            if not contact_id:
                raise ExportDownloadError("export row without a CONTACT_ID")
            parts = []
            for column in columns:
                cell = row.get(column)
                if cell is None:
                    absent.add(column)
                raw, canonical = stored_forms(cell)
                raw_hash = self._hash(raw)
                parts.append(raw_hash)
                parts.append(raw_hash if canonical == raw else self._hash(canonical))
            # An empty EMAIL (contact known only by phone or external id) never matches: a leaver.
            batch.append((self._email_key(row.get("EMAIL", "")), contact_id, b"".join(parts)))
            if len(batch) >= _INSERT_BATCH:
                conn.executemany("INSERT INTO members VALUES (?, ?, ?, 0)", batch)
                self.size += len(batch)
                batch.clear()
        if batch:
            conn.executemany("INSERT INTO members VALUES (?, ?, ?, 0)", batch)
            self.size += len(batch)
        if absent:
            LOGGER.info(
                "The export has no column for %s: contacts carrying it count as changed",
                ", ".join(sorted(absent)),
            )
        self._index()

    def _clear(self) -> None:
        conn = self._require()
        conn.execute("DELETE FROM members")
        conn.commit()
        self.size = 0

    def _index(self) -> None:
        conn = self._require()
        # Built after the bulk insert: one sort instead of 2,000,000 random B-tree inserts.
        conn.execute("CREATE INDEX members_email ON members (email_key)")
        conn.commit()

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
        conn = self._require()
        email = str(contact.get("email") or "")
        if not email:
            return "new"
        found = conn.execute(
            "SELECT rowid, digest FROM members WHERE email_key = ?", (self._email_key(email),)
        ).fetchall()
        if not found:
            return "new"
        self._pending.extend(rowid for rowid, _ in found)
        if len(self._pending) >= _MARK_BATCH:
            self._flush()
        sent = self._sent_fields(contact)
        if sent is None:
            return "changed"
        for _, digest in found:
            if not all(self._slot_equal(digest, slot, value) for slot, value in sent):
                return "changed"
        return "unchanged"

    def _sent_fields(self, contact: dict) -> list[tuple[int, object]] | None:
        """Pair each sent comparable field with its slot; None if one cannot be compared."""
        sent: list[tuple[int, object]] = []
        for key, value in contact.items():
            if key == "email":
                continue
            if key == "custom_fields":
                for field_id, field_value in (value or {}).items():
                    slot = self._slots.get(f"custom:{field_id}")
                    if slot is None:
                        return None
                    sent.append((slot, field_value))
                continue
            slot = self._slots.get(key)
            if slot is None:
                return None  # a field the export was not read for: sending it is the safe side
            sent.append((slot, value))
        return sent

    def _slot_equal(self, digest: bytes, slot: int, value: object) -> bool:
        start = slot * _SLOT_BYTES
        raw, canonical = sent_forms(value)
        if self._hash(raw) == digest[start : start + _HASH_BYTES]:
            return True
        return canonical is not None and (
            self._hash(canonical) == digest[start + _HASH_BYTES : start + _SLOT_BYTES]
        )

    def _flush(self) -> None:
        if self._pending and self._conn is not None:
            self._conn.executemany(
                "UPDATE members SET seen = 1 WHERE rowid = ?", ((r,) for r in self._pending)
            )
            self._conn.commit()
        self._pending.clear()

    def leavers(self) -> Iterator[str]:
        """Yield the contact ids of members not seen in this run (read lazily from disk).

        Yields:
            SendGrid contact ids.
        """
        self._flush()
        cursor = self._require().execute("SELECT contact_id FROM members WHERE seen = 0")
        for (contact_id,) in cursor:
            yield contact_id

    def count_leavers(self) -> int:
        """Return how many members were not seen in this run.

        Returns:
            The number of leavers.
        """
        self._flush()
        return self._require().execute("SELECT count(*) FROM members WHERE seen = 0").fetchone()[0]

    def close(self) -> None:
        """Close the store and delete its file (safe to call twice)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        self._pending.clear()
        self.path.unlink(missing_ok=True)


def _snapshot_path(workdir: Path, list_id: str) -> Path:
    safe = re.sub(r"[^A-Za-z0-9_-]", "_", list_id)[:64]
    return Path(workdir) / f"snapshot-{safe}-{uuid.uuid4().hex[:8]}.sqlite"

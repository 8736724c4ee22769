"""Files the fake SendGrid serves through storage: contact exports and import error reports.

All files are gzip files (served as ``application/gzip`` without ``Content-Encoding``, as an
object store serves a ``.csv.gz``), generated lazily, chunk by chunk, when fetched.

Export CSV (every value quoted): a header row of upper-case reserved columns
(``EXPORT_COLUMNS``), then one column per custom field under the field's name as defined;
values empty when unset; list-valued fields (alternate emails) joined with commas;
timestamps ISO 8601 UTC (``...Z``).
Export JSON: one JSON object per line with the same keys as the CSV header, custom fields
as top-level keys by name, unset values omitted.
Errors file (``errors_url`` of an import job; the upstream format is unverified): CSV with
the header ``email,error`` and one row per contact the job could not import.
"""

from __future__ import annotations

import csv
import io
import json
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any

from sandbox.sendgrid.model import EXTRA_FIELDS, Contact

EXPORT_COLUMNS = (
    "CONTACT_ID",
    "EMAIL",
    "FIRST_NAME",
    "LAST_NAME",
    *(name.upper() for name in EXTRA_FIELDS),
    "CREATED_AT",
    "UPDATED_AT",
)
_ROWS_PER_CHUNK = 2_000
_NO_EXTRA = (None,) * len(EXTRA_FIELDS)
_EMPTY = ['""']
_EMPTY_EXTRA = ",".join(_EMPTY * len(EXTRA_FIELDS))
# Level 1: the files only cross the loopback, and level 6 cost the sandbox about 3 CPU-s
# more on a 2,000,000-contact export for files about a quarter smaller.
GZIP_LEVEL = 1


@lru_cache(maxsize=4096)
def iso(epoch: float) -> str:
    """Format epoch seconds as SendGrid does: ISO 8601, UTC, ``Z`` suffix."""
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def gzip_chunks(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Gzip a stream of byte chunks into a stream of compressed chunks."""
    compressor = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 31)  # wbits 31: gzip container
    for chunk in chunks:
        out = compressor.compress(chunk)
        if out:
            yield out
    yield compressor.flush()


def export_record(contact: Contact, contact_id: str, field_names: dict[str, str]) -> dict[str, Any]:
    """One contact as an export row: export column -> value (unset values absent).

    Args:
        contact: The stored contact.
        contact_id: Its public id.
        field_names: Custom field id -> name, for the fields that exist.
    """
    row: dict[str, Any] = {"CONTACT_ID": contact_id, "EMAIL": contact.email}
    if contact.first_name is not None:
        row["FIRST_NAME"] = contact.first_name
    if contact.last_name is not None:
        row["LAST_NAME"] = contact.last_name
    for key, value in (contact.extra or {}).items():
        row[key.upper()] = value
    row["CREATED_AT"] = iso(contact.created_at)
    row["UPDATED_AT"] = iso(contact.updated_at)
    for field_id, value in (contact.custom or {}).items():
        name = field_names.get(field_id)
        if name is not None:  # a deleted field is not exported
            row[name] = value
    return row


def _flat(value: Any) -> Any:
    return ",".join(value) if isinstance(value, list) else value


def csv_row(contact: Contact, contact_id: str, field_ids: Sequence[str]) -> tuple[Any, ...]:
    """One contact as an export CSV row, in the order of ``EXPORT_COLUMNS`` then ``field_ids``."""
    extra, custom = contact.extra, contact.custom
    return (
        contact_id,
        contact.email,
        contact.first_name,
        contact.last_name,
        *(_NO_EXTRA if extra is None else [_flat(extra.get(name)) for name in EXTRA_FIELDS]),
        iso(contact.created_at),
        iso(contact.updated_at),
        *(map(custom.get, field_ids) if custom else [None] * len(field_ids)),
    )


def _quoted(value: Any) -> str:
    """A CSV field as ``csv.QUOTE_ALL`` writes it (None as an empty field)."""
    if value is None:
        return '""'
    text = value if isinstance(value, str) else str(value)
    return '"' + text.replace('"', '""') + '"'


def csv_line(contact: Contact, contact_id: str, field_ids: Sequence[str]) -> str:
    """``csv_row`` of a contact without extra fields as one written line, without the csv module.

    The same text as ``csv.writer(QUOTE_ALL)`` writes for that row, in about half the time: the
    ten empty extra columns are one constant.
    """
    custom = contact.custom
    line = (
        f'"{contact_id}",{_quoted(contact.email)},{_quoted(contact.first_name)},'
        f'{_quoted(contact.last_name)},{_EMPTY_EXTRA},"{iso(contact.created_at)}",'
        f'"{iso(contact.updated_at)}"'
    )
    if field_ids:
        values = [_quoted(custom.get(f)) for f in field_ids] if custom else _EMPTY * len(field_ids)
        line += "," + ",".join(values)
    return line + "\n"


def export_body(
    contacts: Sequence[Contact],
    contact_id: Callable[[int], str],
    field_names: dict[str, str],
    file_type: str,
) -> Callable[[], Iterator[bytes]]:
    """A storage body that renders ``contacts`` as a gzip CSV or JSON-lines export when fetched."""
    field_ids = list(field_names)

    def render() -> Iterator[bytes]:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n", quoting=csv.QUOTE_ALL)
        if file_type == "csv":
            writer.writerow([*EXPORT_COLUMNS, *field_names.values()])
        for start in range(0, len(contacts), _ROWS_PER_CHUNK):
            chunk = contacts[start : start + _ROWS_PER_CHUNK]
            if file_type == "csv":  # None is written as an empty field
                for c in chunk:
                    if c.extra is None:  # nearly every contact
                        buffer.write(csv_line(c, contact_id(c.n), field_ids))
                    else:
                        writer.writerow(csv_row(c, contact_id(c.n), field_ids))
            else:
                for contact in chunk:
                    row = export_record(contact, contact_id(contact.n), field_names)
                    buffer.write(json.dumps(row, separators=(",", ":")) + "\n")
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
        yield buffer.getvalue().encode()

    return lambda: gzip_chunks(render())


def errors_file(rows: Iterable[tuple[str, str]]) -> bytes:
    """The gzip CSV behind an import job's ``errors_url``: ``email,error`` rows."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["email", "error"])
    writer.writerows(rows)
    return b"".join(gzip_chunks([buffer.getvalue().encode()]))

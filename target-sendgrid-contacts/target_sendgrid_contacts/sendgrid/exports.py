"""Whole-list reads: contacts exports, polled until ready, saved to private files, then parsed.

Removal jobs live in ``removals.py``; both use :func:`poll_until`. Nothing here imports singer_sdk.
"""

from __future__ import annotations

import csv
import io
import itertools
import logging
import operator
import os
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import requests
import urllib3

from target_sendgrid_contacts.sendgrid.errors import SendGridError

if TYPE_CHECKING:
    from target_sendgrid_contacts.sendgrid.client import SendGridClient

LOGGER = logging.getLogger("target_sendgrid_contacts.sendgrid.exports")

EXPORTS_PATH = "/v3/marketing/contacts/exports"
EXPORT_PATH = "/v3/marketing/contacts/exports/{export_id}"
_POLL_CAP_SECONDS = 30.0
_EXPORT_POLL_GROWTH = 1.2
DOWNLOAD_ATTEMPTS = 2  # a file cut off mid-stream is read once more, from the start
_READ_CHUNK_BYTES = 256 * 1024
_COLUMN_BATCH = 20_000
_GZIP_MAGIC = b"\x1f\x8b"
_DOWNLOAD_ERRORS = (
    requests.RequestException,
    urllib3.exceptions.HTTPError,
    zlib.error,
    EOFError,
    OSError,
    UnicodeDecodeError,
    csv.Error,
)


class ExportError(SendGridError):
    """A contacts export could not be read whole; no snapshot may be built from it."""


class ExportFailedError(ExportError):
    """SendGrid reported the export as ``failure``."""


class ExportTimeoutError(ExportError):
    """The export was not ready within the wait bound."""


class ExportDownloadError(ExportError):
    """An export file was truncated, corrupt or not the CSV we expect."""


def poll_until(
    check: Callable[[], dict | None],
    *,
    poll_interval: float,
    timeout: float,
    on_timeout: Callable[[], Exception],
    sleep: Callable[[float], None] = time.sleep,
    growth: float = 1.5,
) -> dict:
    """Call ``check`` until it returns a dict, waiting longer each time, within ``timeout``.

    Args:
        check: Returns the finished job's JSON, or None while it runs.
        poll_interval: First wait between calls.
        timeout: Bound on the whole wait.
        on_timeout: Builds the error raised when the bound is reached.
        sleep: The wait (tests pass a fake).
        growth: Each wait is this many times the last (up to a cap): the job's end is seen
            at most ``growth - 1`` of its duration late.

    Returns:
        What ``check`` returned.

    Raises:
        Exception: ``on_timeout()`` once ``timeout`` has passed.
    """
    deadline = time.monotonic() + timeout
    wait = max(poll_interval, 0.01)
    while True:
        result = check()
        if result is not None:
            return result
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise on_timeout()
        sleep(min(wait, remaining))
        wait = min(wait * growth, _POLL_CAP_SECONDS)


def start_export(client: SendGridClient, list_id: str) -> str:
    """Ask SendGrid for a CSV export of one list's members.

    Args:
        client: The SendGrid client.
        list_id: The list to export.

    Returns:
        The export id to poll.

    Raises:
        ExportError: The answer carries no export id.
    """
    body = client.request(
        "POST", EXPORTS_PATH, json={"list_ids": [list_id], "file_type": "csv"}, ok=(200, 202)
    ).json()
    export_id = body.get("id") if isinstance(body, dict) else None
    if not export_id:
        raise ExportError(f"SendGrid started an export of list {list_id} without an export id.")
    return str(export_id)


def wait_for_export(
    client: SendGridClient, export_id: str, *, poll_interval: float, timeout: float
) -> dict:
    """Poll an export until it is ``ready``.

    Args:
        client: The SendGrid client.
        export_id: Id from :func:`start_export`.
        poll_interval: First wait between polls (it grows by a fifth each poll).
        timeout: Bound on the whole wait, in seconds.

    Returns:
        The export status JSON (``status`` is ``ready``; ``urls`` lists the files).

    Raises:
        ExportFailedError: SendGrid reported ``failure``.
        ExportTimeoutError: Still not ready at the bound.
    """

    def check() -> dict | None:
        status = client.request("GET", EXPORT_PATH.format(export_id=export_id)).json()
        state = status.get("status")
        if state == "ready":
            return status
        if state == "failure":
            detail = status.get("message") or "no message"
            raise ExportFailedError(f"SendGrid contacts export {export_id} failed: {detail}")
        return None  # pending, or a state the spec does not name: keep waiting until the bound

    return poll_until(
        check,
        poll_interval=poll_interval,
        timeout=timeout,
        # Contacts wait for the snapshot (and at 30 s job latency so may the whole run):
        # seen at most a fifth of its wait late, for a few more cheap polls.
        growth=_EXPORT_POLL_GROWTH,
        on_timeout=lambda: ExportTimeoutError(
            f"SendGrid contacts export {export_id} was not ready after {timeout:g} s "
            "(job_timeout_seconds)."
        ),
    )


def _gunzip(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Decompress a gzip stream (several members allowed); pass plain bytes through.

    Raises:
        ExportDownloadError: The gzip stream ends before its end marker.
        zlib.error: The bytes are not gzip after all (corrupt file).
    """
    it = iter(chunks)
    head = b""
    for chunk in it:
        head += chunk
        if len(head) >= len(_GZIP_MAGIC):
            break
    if not head.startswith(_GZIP_MAGIC):
        # Already decoded (a host that applied Content-Encoding for us) or plain CSV.
        if head:
            yield head
        yield from it
        return
    decoder = zlib.decompressobj(wbits=31)
    for chunk in itertools.chain((head,), it):
        data = chunk
        while data:
            if decoder.eof:  # the next gzip member starts here
                decoder = zlib.decompressobj(wbits=31)
            out = decoder.decompress(data)
            if out:
                yield out
            data = decoder.unused_data if decoder.eof else b""
    if not decoder.eof:
        raise ExportDownloadError("export file is truncated (gzip stream ends early)")


class _ChunkReader(io.RawIOBase):
    """A read-only file over an iterator of byte chunks (feeds TextIOWrapper)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buffer = memoryview(b"")  # a view: handing out a part copies nothing twice

    def readable(self) -> bool:
        return True

    def readinto(self, target: bytearray | memoryview) -> int:  # type: ignore[override]
        while not self._buffer:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._buffer = memoryview(chunk)
        size = min(len(target), len(self._buffer))
        target[:size] = self._buffer[:size]
        self._buffer = self._buffer[size:]
        return size


def _csv_parts(chunks: Iterable[bytes]) -> tuple[list[str], Iterator[list[list[str]]]] | None:
    """The header (upper-cased) of one export file, and its non-empty rows in width-checked parts.

    Returns:
        ``(names, parts)``, or None for an empty file (a list with no members).

    Raises:
        ExportDownloadError: Truncated or corrupt gzip, a row with the wrong number of cells,
            or a header without ``CONTACT_ID`` and ``EMAIL``.
    """
    raw = io.BufferedReader(_ChunkReader(_gunzip(chunks)), buffer_size=_READ_CHUNK_BYTES)
    text = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
    reader = csv.reader(text)
    header = next(reader, None)
    if header is None:
        return None
    names = [name.strip().upper() for name in header]
    missing = {"CONTACT_ID", "EMAIL"} - set(names)
    if missing:
        raise ExportDownloadError(f"export file lacks column(s) {', '.join(sorted(missing))}")
    width = len(names)

    def parts() -> Iterator[list[list[str]]]:
        while part := list(itertools.islice(reader, _COLUMN_BATCH)):
            if set(map(len, part)) != {width}:  # in C; the row by row check only if needed
                part = [row for row in part if row]
                wrong = next((row for row in part if len(row) != width), None)
                if wrong is not None:
                    raise ExportDownloadError(
                        f"export file has a row of {len(wrong)} cells, header has {width}"
                    )
            yield part

    return names, parts()


def download_export(client: SendGridClient, list_id: str, status: dict, folder: Path) -> list[Path]:
    """Save a ready export's files, as served (gzip), into a private folder.

    The files hold members' emails: the caller deletes them once read. Nothing is parsed here,
    so a file cut off inside its gzip stream is noticed by :func:`read_export_columns`.

    Args:
        client: The SendGrid client.
        list_id: The exported list (for messages).
        status: The ready export's status JSON (``id``, ``urls``).
        folder: A folder only this run can read.

    Returns:
        One path per export file, in order.

    Raises:
        ExportDownloadError: A download broke off.
    """
    export_id = status.get("id")
    urls = status.get("urls") or []
    paths = []
    for number, url in enumerate(urls, start=1):
        label = f"contacts export {export_id} of list {list_id}, file {number} of {len(urls)}"
        path = folder / f"export-{number}.csv.part"
        response = client.download(url)
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "wb") as out:
                for chunk in response.raw.stream(_READ_CHUNK_BYTES, decode_content=False):
                    out.write(chunk)
        except _DOWNLOAD_ERRORS as exc:
            raise ExportDownloadError(
                f"{label}: download broke off ({type(exc).__name__})"
            ) from exc
        finally:
            response.close()
        paths.append(path)
    return paths


def _file_chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as source:
        while chunk := source.read(_READ_CHUNK_BYTES):
            yield chunk


ExportBatch = tuple[list[str], list[tuple]]  # (absent columns, rows) of one file's part


def read_export_columns(
    paths: list[Path], list_id: str, status: dict, columns: list[str]
) -> Iterator[ExportBatch]:
    """Stream the cells a snapshot needs from export files saved by :func:`download_export`.

    File after file, in batches; every row comes as a tuple ``(CONTACT_ID, EMAIL, cell of
    columns[0], ...)``; a column the file lacks gives None cells (and is named in the batch's
    absent columns). Building no dict per row is most of what reading a 2,000,000-member
    export costs.

    Args:
        paths: The saved files, in order.
        list_id: The exported list (for messages).
        status: The ready export's status JSON (``id``, maybe ``contact_count``).
        columns: Upper-cased export columns wanted after the id and email.

    Yields:
        ``(absent columns, rows)``, at most ``_COLUMN_BATCH`` rows at a time.

    Raises:
        ExportDownloadError: A file was truncated or corrupt, a row has the wrong number of
            cells, a header lacks ``CONTACT_ID`` or ``EMAIL``, or the rows read differ from the
            ``contact_count`` SendGrid announced.
    """
    export_id = status.get("id")
    count = 0
    for number, path in enumerate(paths, start=1):
        label = f"contacts export {export_id} of list {list_id}, file {number} of {len(paths)}"
        try:
            table = _csv_parts(_file_chunks(path))
            if table is None:
                continue
            names, parts = table
            position = {name: at for at, name in enumerate(names)}  # the last of a repeated name
            absent = [column for column in columns if column not in position]
            wanted = [position["CONTACT_ID"], position["EMAIL"]]
            wanted += [position.get(column, -1) for column in columns]
            pick = operator.itemgetter(*wanted)
            for part in parts:
                if absent:  # a cell of None stands for the missing column, last in the row
                    part = [[*row, None] for row in part]  # type: ignore[list-item]  # noqa: PLW2901
                batch = list(map(pick, part))
                count += len(batch)
                yield absent, batch
        except ExportError as exc:
            raise ExportDownloadError(f"{label}: {exc}") from exc
        except _DOWNLOAD_ERRORS as exc:
            raise ExportDownloadError(f"{label}: unreadable ({type(exc).__name__})") from exc
    _check_count(status, list_id, count)


def _check_count(status: dict, list_id: str, rows: int) -> None:
    announced = status.get("contact_count")
    if isinstance(announced, int) and announced != rows:
        raise ExportDownloadError(
            f"contacts export {status.get('id')} of list {list_id} announced {announced} "
            f"contacts but its files hold {rows}."
        )

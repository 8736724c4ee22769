"""Whole-list reads (contacts exports) and list-membership removal jobs.

Both are asynchronous on SendGrid's side: an export is polled until its files are ready, a removal
answers 202 with a job id that is followed to its end. Nothing here imports singer_sdk.
"""

from __future__ import annotations

import csv
import io
import itertools
import logging
import time
import zlib
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING
from urllib.parse import quote

import requests
import urllib3

from target_sendgrid_contacts.sendgrid.errors import SendGridAPIError, SendGridError

if TYPE_CHECKING:
    from target_sendgrid_contacts.sendgrid.client import SendGridClient

LOGGER = logging.getLogger("target_sendgrid_contacts.sendgrid.exports")

EXPORTS_PATH = "/v3/marketing/contacts/exports"
EXPORT_PATH = "/v3/marketing/contacts/exports/{export_id}"
LIST_CONTACTS_PATH = "/v3/marketing/lists/{list_id}/contacts"
LIST_COUNT_PATH = "/v3/marketing/lists/{list_id}/contacts/count"

# A contact id is a UUID (36 characters): 200 of them with commas make a ~7.4 kB query, under
# the 8 kB request line many servers accept.
DEFAULT_REMOVAL_CHUNK = 200
MAX_IDS_CHARS = 7_400
# Removal jobs allowed in flight before waiting on the oldest one.
MAX_PENDING_REMOVALS = 4
_POLL_CAP_SECONDS = 30.0
_READ_CHUNK_BYTES = 256 * 1024
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


class RemovalError(SendGridError):
    """Removing contacts from a list did not complete."""


def _poll(
    check: Callable[[], dict | None],
    *,
    poll_interval: float,
    timeout: float,
    on_timeout: Callable[[], Exception],
    sleep: Callable[[float], None] = time.sleep,
) -> dict:
    """Call ``check`` until it returns a dict, waiting longer each time, within ``timeout``."""
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
        wait = min(wait * 1.5, _POLL_CAP_SECONDS)


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
        poll_interval: First wait between polls (it grows by half each poll).
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

    return _poll(
        check,
        poll_interval=poll_interval,
        timeout=timeout,
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
        self._buffer = b""

    def readable(self) -> bool:
        return True

    def readinto(self, target: bytearray | memoryview) -> int:  # type: ignore[override]
        while not self._buffer:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._buffer = chunk
        size = min(len(target), len(self._buffer))
        target[:size] = self._buffer[:size]
        self._buffer = self._buffer[size:]
        return size


def parse_export_csv(chunks: Iterable[bytes]) -> Iterator[dict[str, str]]:
    """Parse one export file, gzip or plain, as a stream of rows.

    Args:
        chunks: The file's bytes as they arrive.

    Yields:
        One dict per contact, keyed by the header upper-cased (``CONTACT_ID``, ``EMAIL``, ...;
        custom fields under their upper-cased names).

    Raises:
        ExportDownloadError: Truncated or corrupt gzip, a row with the wrong number of cells,
            or a header without ``CONTACT_ID`` and ``EMAIL``.
    """
    raw = io.BufferedReader(_ChunkReader(_gunzip(chunks)), buffer_size=_READ_CHUNK_BYTES)
    text = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
    reader = csv.reader(text)
    header = next(reader, None)
    if header is None:
        return  # an empty file: a list with no members
    names = [name.strip().upper() for name in header]
    missing = {"CONTACT_ID", "EMAIL"} - set(names)
    if missing:
        raise ExportDownloadError(f"export file lacks column(s) {', '.join(sorted(missing))}")
    width = len(names)
    for row in reader:
        if not row:
            continue
        if len(row) != width:
            raise ExportDownloadError(
                f"export file line {reader.line_num} has {len(row)} cells, header has {width}"
            )
        yield dict(zip(names, row, strict=True))


def _download_rows(client: SendGridClient, url: str, label: str) -> Iterator[dict[str, str]]:
    response = client.download(url)
    try:
        # Raw bytes, not requests' decoding: only our own gunzip notices a stream cut short.
        chunks = response.raw.stream(_READ_CHUNK_BYTES, decode_content=False)
        yield from parse_export_csv(chunks)
    except ExportError as exc:
        raise ExportDownloadError(f"{label}: {exc}") from exc
    except _DOWNLOAD_ERRORS as exc:
        raise ExportDownloadError(f"{label}: download broke off ({type(exc).__name__})") from exc
    finally:
        response.close()


def export_list(
    client: SendGridClient, list_id: str, *, poll_interval: float, timeout: float
) -> Iterator[dict[str, str]]:
    """Export a list's members and stream them, row by row, from every export file.

    The caller must treat an exception at any point as "no snapshot": rows already yielded are
    only part of the list.

    Args:
        client: The SendGrid client.
        list_id: The list to read.
        poll_interval: First wait between export status polls.
        timeout: Bound on the wait for the export to be ready.

    Yields:
        Member rows keyed by upper-cased CSV header (see :func:`parse_export_csv`).

    Raises:
        ExportError: The export failed, timed out, or a file was truncated or corrupt, or the
            rows read differ from the ``contact_count`` SendGrid announced.
    """
    export_id = start_export(client, list_id)
    status = wait_for_export(client, export_id, poll_interval=poll_interval, timeout=timeout)
    yield from read_export(client, list_id, status)


def read_export(client: SendGridClient, list_id: str, status: dict) -> Iterator[dict[str, str]]:
    """Stream the rows of a ready export, file after file.

    Args:
        client: The SendGrid client.
        list_id: The exported list (for messages).
        status: The ready export's status JSON (``id``, ``urls``, maybe ``contact_count``).

    Yields:
        Member rows keyed by upper-cased CSV header (see :func:`parse_export_csv`).

    Raises:
        ExportDownloadError: A file was truncated or corrupt, or the rows read differ from the
            ``contact_count`` SendGrid announced.
    """
    export_id = status.get("id")
    urls = status.get("urls") or []
    rows = 0
    for number, url in enumerate(urls, start=1):
        label = f"contacts export {export_id} of list {list_id}, file {number} of {len(urls)}"
        for row in _download_rows(client, url, label):
            rows += 1
            yield row
    announced = status.get("contact_count")
    if isinstance(announced, int) and announced != rows:
        raise ExportDownloadError(
            f"contacts export {export_id} of list {list_id} announced {announced} contacts "
            f"but its files hold {rows}."
        )
    LOGGER.info("Read %d members of list %s from export %s", rows, list_id, export_id)


def _id_chunks(contact_ids: Iterable[str], chunk_size: int) -> Iterator[list[str]]:
    chunk: list[str] = []
    chars = 0
    for contact_id in contact_ids:
        cost = len(contact_id) + 1
        if chunk and (len(chunk) >= chunk_size or chars + cost > MAX_IDS_CHARS):
            yield chunk
            chunk, chars = [], 0
        chunk.append(contact_id)
        chars += cost
    if chunk:
        yield chunk


def list_count(client: SendGridClient, list_id: str) -> int:
    """Return the number of contacts SendGrid counts on a list.

    Args:
        client: The SendGrid client.
        list_id: The list.

    Returns:
        ``contact_count`` from ``GET /v3/marketing/lists/{id}/contacts/count``.
    """
    body = client.request("GET", LIST_COUNT_PATH.format(list_id=list_id)).json()
    return int(body.get("contact_count") or 0)


class _RemovalJobs:
    """Follows removal jobs; switches to count confirmation when jobs cannot be polled."""

    def __init__(
        self, client: SendGridClient, list_id: str, *, poll_interval: float, timeout: float
    ) -> None:
        self.client = client
        self.list_id = list_id
        self.poll_interval = poll_interval
        self.timeout = timeout
        self.count_before = list_count(client, list_id)
        self.by_count = False  # True once the import-status endpoint answered 404
        self.pending: deque[str] = deque()
        self.submitted = 0

    def submit(self, ids: list[str]) -> None:
        joined = ",".join(quote(i, safe="") for i in ids)
        path = f"{LIST_CONTACTS_PATH.format(list_id=self.list_id)}?contact_ids={joined}"
        body = self.client.request("DELETE", path, ok=(200, 202, 204)).json()
        job_id = body.get("job_id") if isinstance(body, dict) else None
        self.submitted += len(ids)
        if job_id and not self.by_count:
            self.pending.append(str(job_id))
        else:
            self.by_count = True
        while len(self.pending) >= MAX_PENDING_REMOVALS:
            self._wait_oldest()

    def finish(self) -> int:
        while self.pending:
            self._wait_oldest()
        if self.by_count and self.submitted:
            self._confirm_by_count()
        return self.submitted

    def _wait_oldest(self) -> None:
        job_id = self.pending.popleft()
        if self.by_count:
            return
        try:
            job = self.client.wait_for_job(
                job_id, poll_interval=self.poll_interval, timeout=self.timeout
            )
        except SendGridAPIError as exc:
            if exc.status != 404:
                raise
            # Removal job ids are not documented as pollable at the import-status endpoint.
            LOGGER.info(
                "Removal job %s of list %s cannot be polled (404); confirming by list count",
                job_id, self.list_id,
            )
            self.by_count = True
            self.pending.clear()
            return
        if job.get("status") != "completed":
            results = job.get("results") or {}
            raise RemovalError(
                f"SendGrid removal job {job_id} on list {self.list_id} ended "
                f"{job.get('status')!r} (errored_count={results.get('errored_count')})."
            )

    def _confirm_by_count(self) -> None:
        target = max(self.count_before - self.submitted, 0)

        def check() -> dict | None:
            count = list_count(self.client, self.list_id)
            return {"count": count} if count <= target else None

        _poll(
            check,
            poll_interval=self.poll_interval,
            timeout=self.timeout,
            on_timeout=lambda: RemovalError(
                f"List {self.list_id} still counts more than {target} contacts {self.timeout:g} s "
                f"after removing {self.submitted} (it had {self.count_before})."
            ),
        )


def remove_from_list(
    client: SendGridClient,
    list_id: str,
    contact_ids: Iterable[str],
    *,
    poll_interval: float,
    timeout: float,
    chunk_size: int = DEFAULT_REMOVAL_CHUNK,
) -> int:
    """Take contacts off a list (they stay in SendGrid and on their other lists).

    Sends ``DELETE /v3/marketing/lists/{id}/contacts?contact_ids=...`` in chunks and follows each
    job at ``GET /v3/marketing/contacts/imports/{job_id}``. If that endpoint answers 404 (removal
    jobs there are unverified upstream), the end is confirmed instead by the list's contact count
    falling by the number removed; so call this after the list's upsert jobs have finished.

    Args:
        client: The SendGrid client.
        list_id: The list.
        contact_ids: SendGrid contact ids to take off (consumed lazily).
        poll_interval: First wait between job polls.
        timeout: Bound on each wait.
        chunk_size: Ids per request at most (also capped by URL length).

    Returns:
        How many contact ids were taken off the list.

    Raises:
        RemovalError: A job did not end ``completed``, or the count did not fall in time.
        SendGridError: SendGrid refused a request.
    """
    chunks = _id_chunks(contact_ids, max(chunk_size, 1))
    first = next(chunks, None)
    if first is None:
        return 0
    jobs = _RemovalJobs(client, list_id, poll_interval=poll_interval, timeout=timeout)
    jobs.submit(first)
    for chunk in chunks:
        jobs.submit(chunk)
    removed = jobs.finish()
    LOGGER.info("Removed %d contacts from list %s", removed, list_id)
    return removed

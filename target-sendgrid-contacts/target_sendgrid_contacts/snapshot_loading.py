"""A list's snapshot read in the background while the run keeps taking input.

A thread starts the export, polls it and saves its files in the run's private folder; a big
export is then parsed, hashed and stored by a builder process (``snapshot_builder.py``, on the
machine's other core), a small one in the thread. The hash key goes to the builder through its
stdin only.
Whatever goes wrong ends as an error that :meth:`SnapshotLoad.result` raises: the caller never
sees part of a list.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import threading
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec
import requests

from target_sendgrid_contacts.sendgrid.exports import (
    DOWNLOAD_ATTEMPTS,
    ExportDownloadError,
    ExportError,
    download_export,
    read_export_columns,
    start_export,
    wait_for_export,
)
from target_sendgrid_contacts.snapshot import (
    ContactHashes,
    ListSnapshot,
    delete_snapshot_files,
    snapshot_path,
)
from target_sendgrid_contacts.snapshot_builder import BuildRequest

if TYPE_CHECKING:
    from target_sendgrid_contacts.sendgrid.client import SendGridClient

LOGGER = logging.getLogger("target_sendgrid_contacts.snapshot")

BUILDER_MIN_CONTACTS = 50_000  # below this a process start-up costs more than it saves


class LoadCancelledError(ExportError):
    """The run stopped before the snapshot was read."""


def load_snapshot(
    client: SendGridClient,
    list_id: str,
    *,
    custom_field_names: dict[str, str],
    workdir: Path,
    poll_interval: float,
    timeout: float,
) -> ListSnapshot:
    """Read a list's export into a snapshot and wait for it (what a run does, in the foreground).

    Args:
        client: The SendGrid client.
        list_id: The list to read.
        custom_field_names: Custom field id to name, for every mapped custom field.
        workdir: A private folder.
        poll_interval: First wait between export polls.
        timeout: Bound on the wait for the export.

    Returns:
        The whole snapshot (the caller closes it).

    Raises:
        ExportError: The export could not be read whole.
        SendGridError: SendGrid refused a request.
    """
    return SnapshotLoad(
        client,
        list_id,
        custom_field_names=custom_field_names,
        workdir=workdir,
        poll_interval=poll_interval,
        timeout=timeout,
    ).result()


class SnapshotLoad:
    """One list's export, read in the background; :meth:`result` waits for it."""

    def __init__(
        self,
        client: SendGridClient,
        list_id: str,
        *,
        custom_field_names: dict[str, str],
        workdir: Path,
        poll_interval: float,
        timeout: float,
    ) -> None:
        """Start reading the export now.

        Args:
            client: The SendGrid client (the thread uses a twin with its own session).
            list_id: The list to read.
            custom_field_names: Custom field id to name, for every mapped custom field.
            workdir: The run's private folder.
            poll_interval: First wait between export polls.
            timeout: Bound on the wait for the export.
        """
        self._client = client.with_session(requests.Session())
        self._list_id = list_id
        self._slots, self._columns = ListSnapshot.layout(custom_field_names)
        self._key = os.urandom(16)
        # For the main thread: contacts that wait are hashed already, the snapshot uses the key.
        self.hashes = ContactHashes(self._key, self._slots)
        self._workdir = Path(workdir)
        self._poll_interval = poll_interval
        self._timeout = timeout
        self._snapshot: ListSnapshot | None = None
        self._error: BaseException | None = None
        self._cancelled = threading.Event()
        self._builder: subprocess.Popen | None = None
        self._thread = threading.Thread(target=self._run, name=f"snapshot-{list_id}", daemon=True)
        self._thread.start()

    @property
    def ready(self) -> bool:
        """Whether the snapshot (or its error) is there; :meth:`result` would not wait."""
        return not self._thread.is_alive()

    def result(self) -> ListSnapshot:
        """Wait for the snapshot.

        Returns:
            The whole snapshot (the caller closes it).

        Raises:
            ExportError: The export could not be read whole.
            SendGridError: SendGrid refused a request.
        """
        self._thread.join()
        if self._error is not None:
            raise self._error
        assert self._snapshot is not None  # the thread sets one of the two
        snapshot, self._snapshot = self._snapshot, None
        return snapshot

    def cancel(self) -> None:
        """Stop the builder process and drop whatever was read (safe to call twice)."""
        self._cancelled.set()
        builder = self._builder
        if builder is not None and builder.poll() is None:
            builder.terminate()
        self._thread.join(timeout=5)
        if self._snapshot is not None:
            self._snapshot.close()
            self._snapshot = None

    def _run(self) -> None:
        try:
            self._snapshot = self._read()
        except BaseException as exc:  # noqa: BLE001  (handed to the main thread by result())
            self._error = exc

    def _read(self) -> ListSnapshot:
        export_id = start_export(self._client, self._list_id)
        for attempt in range(1, DOWNLOAD_ATTEMPTS + 1):
            # Polled again on a retry: the answer carries freshly signed file URLs.
            status = wait_for_export(
                self._client, export_id, poll_interval=self._poll_interval, timeout=self._timeout
            )
            folder = self._workdir / f"export-{uuid.uuid4().hex[:12]}"
            folder.mkdir(mode=0o700)
            try:
                paths = download_export(self._client, self._list_id, status, folder)
                self._check_cancelled()
                return self._build(paths, status)
            except ExportDownloadError as exc:
                if attempt == DOWNLOAD_ATTEMPTS:
                    raise
                LOGGER.warning("%s; reading the export again from the start", exc)
            finally:
                shutil.rmtree(folder, ignore_errors=True)  # the files hold emails
        raise AssertionError("unreachable")  # pragma: no cover

    def _check_cancelled(self) -> None:
        if self._cancelled.is_set():
            raise LoadCancelledError("the run stopped before the export was read")

    def _build(self, paths: list[Path], status: dict) -> ListSnapshot:
        path = snapshot_path(self._workdir, self._list_id)
        key = self._key
        announced = status.get("contact_count")
        if isinstance(announced, int) and announced < BUILDER_MIN_CONTACTS:
            snapshot = ListSnapshot(path, self._slots, key=key)
            try:
                snapshot.fill(read_export_columns(paths, self._list_id, status, self._columns))
            except BaseException:
                snapshot.close()
                raise
        else:
            size, absent = self._build_in_process(paths, status, path, key)
            snapshot = ListSnapshot.attach(path, self._slots, key, size)
            snapshot.absent.update(absent)
        if self._cancelled.is_set():
            snapshot.close()
            self._check_cancelled()
        return snapshot

    def _build_in_process(
        self, paths: list[Path], status: dict, path: Path, key: bytes
    ) -> tuple[int, list[str]]:
        request = msgspec.msgpack.encode(
            BuildRequest(
                paths=[str(p) for p in paths],
                list_id=self._list_id,
                status=status,
                slots=self._slots,
                columns=self._columns,
                path=str(path),
                key=key,
            )
        )
        try:
            builder = subprocess.Popen(
                [sys.executable, "-m", "target_sendgrid_contacts.snapshot_builder"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,  # a traceback could quote a cell
                # The installed package, never a same-named folder where the run was started.
                env={**os.environ, "PYTHONSAFEPATH": "1"},
            )
            self._builder = builder
            if self._cancelled.is_set():  # cancel() ran before the builder was known
                builder.terminate()
            output, _ = builder.communicate(request)
            try:
                answer = msgspec.msgpack.decode(output) if output else None
            except msgspec.DecodeError:
                answer = None
            if not isinstance(answer, list) or not answer:
                ended = f"the snapshot builder process ended (exit {builder.returncode})"
                answer = ["error", ended]
        except BaseException:
            delete_snapshot_files(path)
            raise
        finally:
            self._builder = None
        kind = answer[0]
        if kind == "ok":
            return answer[1], answer[2]
        delete_snapshot_files(path)
        if kind == "download":
            raise ExportDownloadError(answer[1])
        self._check_cancelled()
        raise ExportError(f"list {self._list_id}: the snapshot could not be built ({answer[1]})")

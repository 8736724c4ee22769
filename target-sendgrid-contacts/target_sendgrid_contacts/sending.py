"""BodySender: one thread PUTs request bodies in order while the caller maps the next ones."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future

_STOP = object()


class BodySender:
    """Sends bodies one at a time on a thread of its own; each answer comes back as a Future.

    SendGrid takes a while to accept a 6 MB body; meanwhile the caller reads and maps input.
    The caller bounds how many bodies wait here (each holds its bytes in memory).
    """

    def __init__(self, send: Callable[[bytes], str]) -> None:
        """Create the sender (its thread starts with the first body).

        Args:
            send: Sends one body and returns its job id (raises what the client raises); it
                must use a client no other thread uses.
        """
        self._send = send
        self._queue: queue.Queue = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def submit(self, body: bytes) -> Future:
        """Queue a body.

        Args:
            body: Exact request bytes.

        Returns:
            A Future of the job id (or of the error that refused the body).
        """
        future: Future = Future()
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="sendgrid-body-sender", daemon=True
                )
                self._thread.start()
        self._queue.put((body, future))
        return future

    def stop(self) -> None:
        """Send nothing more: bodies still queued are cancelled (a rerun sends them again)."""
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not _STOP:
                item[1].cancel()
        self._queue.put(_STOP)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            body, future = item
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(self._send(body))
            except BaseException as exc:  # noqa: BLE001 - the caller's thread decides
                future.set_exception(exc)

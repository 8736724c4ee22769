"""The Sandbox: fake Amplitude, SendGrid and file storage served by three threaded werkzeug servers.

Each service is wrapped the same way: ``/_sandbox/...`` inspection first (never logged, never
faulted), then the request log, then (Amplitude only) the concurrency limit, then fault rules,
then the service itself.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from sandbox.amplitude import AmplitudeApp, AmplitudeState, limit_concurrency
from sandbox.config import (
    AMPLITUDE_API_KEY,
    AMPLITUDE_SECRET_KEY,
    SENDGRID_API_KEY,
    SENDGRID_RESTRICTED_KEY,
    SandboxConfig,
)
from sandbox.faults import FaultRegistry
from sandbox.generator import CohortGenerator
from sandbox.inspection import Inspection
from sandbox.sendgrid import SendGridApp, SendGridState
from sandbox.storage import Storage

SERVICES = ("amplitude", "sendgrid", "storage")
_POLL_INTERVAL = 0.05  # how quickly a server notices shutdown


class Sandbox:
    """A running (once started) sandbox of both APIs and their file storage.

    Attributes:
        config: The settings it was built with.
        generator: The cohort generator (knows every member's category and the expected lists).
        storage: Signed-URL file storage (Amplitude exports, SendGrid export files).
        amplitude: The fake Amplitude's state.
        faults: Fault rules applied to every service request.
        requests: Log of service requests (never inspection ones, never credentials).
    """

    def __init__(self, config: SandboxConfig | None = None) -> None:
        self.config = config or SandboxConfig()
        self.generator = CohortGenerator(self.config.seed, self.config.extra_cohorts)
        self.storage = Storage(self.config.storage_url_ttl_seconds)
        self.amplitude = AmplitudeState(self.config, self.generator, self.storage)
        self.faults = FaultRegistry()
        self.requests: list[dict] = []
        self.sendgrid_app = SendGridApp(self.config, self.storage)
        self.amplitude_api_key = AMPLITUDE_API_KEY
        self.amplitude_secret_key = AMPLITUDE_SECRET_KEY
        self.sendgrid_api_key = SENDGRID_API_KEY
        self.sendgrid_restricted_key = SENDGRID_RESTRICTED_KEY
        self.amplitude_url = self.sendgrid_url = self.storage_url = ""
        self._inspection = Inspection(self)
        self._servers: list[BaseWSGIServer] = []
        self._threads: list[threading.Thread] = []

    @property
    def sendgrid(self) -> SendGridState:
        """The fake SendGrid's state."""
        return self.sendgrid_app.state

    @property
    def running(self) -> bool:
        """Whether the servers are up."""
        return bool(self._servers)

    def start(self) -> Sandbox:
        """Bind the three ports and serve them in background threads; return self."""
        if self._servers:
            return self
        apps: dict[str, Callable] = {
            "amplitude": limit_concurrency(
                self.faults.wrap("amplitude", AmplitudeApp(self.amplitude)), self.amplitude
            ),
            "sendgrid": self.faults.wrap("sendgrid", self.sendgrid_app),
            "storage": self.faults.wrap("storage", self.storage),
        }
        ports = {
            "amplitude": self.config.amplitude_port,
            "sendgrid": self.config.sendgrid_port,
            "storage": self.config.storage_port,
        }
        try:
            for service in SERVICES:
                server = make_server(
                    self.config.host,
                    ports[service],
                    self._front(service, apps[service]),
                    threaded=True,
                    request_handler=_QuietHandler,
                )
                self._servers.append(server)
                setattr(self, f"{service}_url", f"http://{self.config.host}:{server.server_port}")
        except BaseException:
            self._close_servers()
            raise
        self.storage.base_url = self.storage_url
        for service, server in zip(SERVICES, self._servers, strict=True):
            thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": _POLL_INTERVAL},
                name=f"sandbox-{service}",
                daemon=True,
            )
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        """Stop serving and release the ports (idempotent)."""
        # Shut the servers down together: each waits up to one poll interval.
        stoppers = [threading.Thread(target=server.shutdown) for server in self._servers]
        for stopper in stoppers:
            stopper.start()
        for stopper in stoppers:
            stopper.join()
        for thread in self._threads:
            thread.join(timeout=5)
        self._close_servers()
        self._threads.clear()

    def reset(self) -> None:
        """Forget everything: churn, downloads, SendGrid data, faults and the request log."""
        self.amplitude.reset()
        self.faults.clear()
        self.sendgrid_app.reset()
        self.requests.clear()

    def summary(self) -> dict:
        """Cohorts, downloads used and the SendGrid lists with member counts."""
        return {**self.amplitude.summary(), "sendgrid": self.sendgrid.summary()}

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _close_servers(self) -> None:
        for server in self._servers:
            server.server_close()
        self._servers.clear()

    def _front(self, service: str, app: Callable) -> Callable:
        """Inspection paths first, everything else logged and passed to the service pipeline."""

        def front(environ: dict, start_response: Callable) -> Iterable[bytes]:
            if environ.get("PATH_INFO", "").startswith("/_sandbox/"):
                return self._inspection(environ, start_response)
            return self._logged(service, app, environ, start_response)

        return front

    def _logged(
        self, service: str, app: Callable, environ: dict, start_response: Callable
    ) -> Iterable[bytes]:
        try:
            body_bytes = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            body_bytes = 0
        entry: dict = {
            "service": service,
            "method": environ["REQUEST_METHOD"],
            "path": environ.get("PATH_INFO", ""),
            "query": parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True),
            "status": None,
            "body_bytes": body_bytes,
            "violation": None,
            "fault": None,
            "ts": time.time(),
        }
        self.requests.append(entry)

        def recording_start_response(status: str, headers: list, exc_info: Any = None) -> Any:
            entry["status"] = int(status.split(None, 1)[0])
            return start_response(status, headers, exc_info)

        try:
            return app(environ, recording_start_response)
        finally:
            entry["violation"] = environ.get("sandbox.violation")
            entry["fault"] = environ.get("sandbox.fault")
            if entry["fault"] == "drop":
                entry["status"] = None  # nothing was answered


class _QuietHandler(WSGIRequestHandler):
    """No access log on stderr: URLs carry storage signatures, and tests stay readable."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Log nothing (``sb.requests`` is the request log)."""

"""Test support for the fake SendGrid: the app in-process, with a clock moved by hand.

So tests of job lifecycles need no sleeping and no sockets::

    clock = Clock()
    api = Api(make_app(clock, import_delay_seconds=1))
    job_id = api.upsert([{"email": "a@example.com"}]).json["job_id"]
    clock.advance(1)
    assert api.job(job_id)["status"] == "completed"
"""

from __future__ import annotations

import csv
import gzip
import io
from typing import Any
from urllib.parse import urlsplit

from werkzeug.test import Client, EnvironBuilder, TestResponse, run_wsgi_app

from sandbox.config import SENDGRID_API_KEY, SandboxConfig
from sandbox.sendgrid import SendGridApp
from sandbox.storage import Storage

START = 1_800_000_000.0


class Clock:
    """A clock the test moves by hand, so job delays need no sleeping."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        """The current (fake) time, epoch seconds."""
        return self.now

    def advance(self, seconds: float) -> None:
        """Move time forward."""
        self.now += seconds


class Api:
    """A SendGrid client for the in-process app: JSON in, ``TestResponse`` out.

    Args:
        app: The app to call.
        key: The Bearer key to send (the full-access key by default).
    """

    def __init__(self, app: SendGridApp, key: str = SENDGRID_API_KEY) -> None:
        self.app = app
        self.client = Client(app)
        self.key = key

    def call(self, method: str, path: str, **kwargs: Any) -> TestResponse:
        """Send a request (``werkzeug.test.Client.open`` arguments); auth unless ``headers``."""
        headers = kwargs.pop("headers", {"Authorization": f"Bearer {self.key}"})
        return self.client.open(path, method=method, headers=headers, **kwargs)

    def get(self, path: str, **kwargs: Any) -> TestResponse:
        """GET ``path``."""
        return self.call("GET", path, **kwargs)

    def post(self, path: str, json: Any = None, **kwargs: Any) -> TestResponse:
        """POST ``json`` to ``path``."""
        return self.call("POST", path, json=json, **kwargs)

    def put(self, path: str, json: Any = None, **kwargs: Any) -> TestResponse:
        """PUT ``json`` to ``path``."""
        return self.call("PUT", path, json=json, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> TestResponse:
        """DELETE ``path``."""
        return self.call("DELETE", path, **kwargs)

    def create_list(self, name: str) -> str:
        """Create a list over the API; return its id."""
        response = self.post("/v3/marketing/lists", {"name": name})
        assert response.status_code == 201, response.json
        return str(_body(response)["id"])

    def upsert(self, contacts: list[dict], list_ids: list[str] | None = None) -> TestResponse:
        """PUT contacts (and list ids) to ``/v3/marketing/contacts``."""
        body: dict[str, Any] = {"contacts": contacts}
        if list_ids is not None:
            body["list_ids"] = list_ids
        return self.put("/v3/marketing/contacts", body)

    def job(self, job_id: str) -> dict:
        """The status of a job, as ``GET .../contacts/imports/{id}`` answers it."""
        response = self.get(f"/v3/marketing/contacts/imports/{job_id}")
        assert response.status_code == 200, response.json
        return dict(_body(response))


def make_app(clock: Clock, **config: Any) -> SendGridApp:
    """A SendGridApp on ``SandboxConfig(**config)`` whose state reads ``clock``."""
    storage = Storage()
    storage.base_url = "http://storage.test"
    app = SendGridApp(SandboxConfig(**config), storage)
    app.state.clock = clock
    return app


def fetch_file(app: SendGridApp, url: str, headers: dict | None = None) -> TestResponse:
    """GET a storage URL the app handed out, as a client would (no API key)."""
    parts = urlsplit(url)
    return Client(app.storage).get(parts.path, query_string=parts.query, headers=headers or {})


def read_csv_gz(data: bytes) -> list[dict[str, str]]:
    """Rows of a gzip CSV file as dicts keyed by its header."""
    return list(csv.DictReader(io.StringIO(gzip.decompress(data).decode())))


def violation_of(app: SendGridApp, method: str, path: str, **kwargs: Any) -> tuple[int, str | None]:
    """Status and the violation the app recorded in the WSGI environ for the request log."""
    kwargs.setdefault("headers", {"Authorization": f"Bearer {SENDGRID_API_KEY}"})
    seen: list[dict] = []

    def recording(environ: dict, start_response: Any) -> Any:
        seen.append(environ)  # the environ the request log would read afterwards
        return app(environ, start_response)

    environ = EnvironBuilder(path=path, method=method, **kwargs).get_environ()
    _, status, _ = run_wsgi_app(recording, environ)
    return int(status.split()[0]), seen[0].get("sandbox.violation")


def _body(response: TestResponse) -> Any:
    """The JSON body of an answer that has one."""
    body = response.json
    assert body is not None, response.status_code
    return body

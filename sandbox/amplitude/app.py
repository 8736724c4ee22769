"""The fake Amplitude Behavioral Cohorts API (WSGI): cohort list, asynchronous export, download."""

from __future__ import annotations

import base64
import re
import secrets
from collections.abc import Callable, Iterable, Iterator

from werkzeug.wrappers import Request, Response

from sandbox.amplitude.responses import error_answer, json_answer, text_answer
from sandbox.amplitude.state import (
    JOB_COMPLETED,
    JOB_IN_PROGRESS,
    TOO_MANY_CONCURRENT,
    AmplitudeState,
)
from sandbox.config import AMPLITUDE_API_KEY, AMPLITUDE_SECRET_KEY
from sandbox.generator import (
    PROPERTY_KEYS,
)


class AmplitudeApp:
    """WSGI app answering the Amplitude endpoints the tap uses."""

    _REQUEST = re.compile(r"^/api/5/cohorts/request/([^/]+)$")
    _STATUS = re.compile(r"^/api/5/cohorts/request-status/([^/]+)$")
    _FILE = re.compile(r"^/api/5/cohorts/request/([^/]+)/file$")

    def __init__(self, state: AmplitudeState) -> None:
        self.state = state

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        """Serve one request (WSGI)."""
        return self.respond(Request(environ))(environ, start_response)

    def respond(self, request: Request) -> Response:
        """Route one authenticated request."""
        if not _authorised(request):
            return error_answer(401, "Invalid API key or secret key", status_text="Unauthorized")
        if request.method != "GET":
            return error_answer(405, "Method not allowed")
        path = request.path
        if path == "/api/3/cohorts":
            return json_answer(200, {"cohorts": self.state.cohorts()})
        if match := self._FILE.match(path):
            return self._file(match.group(1))
        if match := self._REQUEST.match(path):
            return self._request(match.group(1), request)
        if match := self._STATUS.match(path):
            return self._status(match.group(1))
        return error_answer(404, "Not found")

    def _request(self, cohort_id: str, request: Request) -> Response:
        props = request.args.get("props", "0") == "1"
        wanted = [_bare(k) for k in request.args.getlist("propKeys")]
        columns = [k for k in PROPERTY_KEYS if k in wanted] if wanted else list(PROPERTY_KEYS)
        job = self.state.start_export(cohort_id, columns if props else [])
        if isinstance(job, Response):
            return job
        return json_answer(202, {"request_id": job.request_id, "cohort_id": job.cohort_id})

    def _status(self, request_id: str) -> Response:
        polled = self.state.poll(request_id)
        if polled is None:
            return error_answer(404, f"Request {request_id} not found")
        job, done = polled
        body = {
            "request_id": job.request_id,
            "cohort_id": job.cohort_id,
            "async_status": JOB_COMPLETED if done else JOB_IN_PROGRESS,
        }
        return json_answer(200 if done else 202, body)

    def _file(self, request_id: str) -> Response:
        job = self.state.jobs.get(request_id)
        if job is None:
            return error_answer(404, f"Request {request_id} not found")
        if not self.state.is_complete(job):
            return error_answer(
                400, f"Request {request_id} is not complete yet; poll request-status"
            )
        return self.state.file_response(job)


def limit_concurrency(app: Callable, state: AmplitudeState) -> Callable:
    """Wrap a WSGI app so at most N requests are in flight (a streamed body counts until closed).

    Past the limit Amplitude answers 429 with a text body.
    """

    def gated(environ: dict, start_response: Callable) -> Iterable[bytes]:
        if not state.try_enter():
            return text_answer(429, TOO_MANY_CONCURRENT)(environ, start_response)
        try:
            body = app(environ, start_response)
        except BaseException:
            state.leave()
            raise
        return ClosingIterable(body, state.leave)

    return gated


class ClosingIterable:
    """Wraps a WSGI body so a callback runs once when the server closes it (WSGI always does)."""

    def __init__(self, body: Iterable[bytes], on_close: Callable[[], None]) -> None:
        self._body = body
        self._on_close = on_close
        self._closed = False

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._body)

    def close(self) -> None:
        """Close the wrapped body, then run the callback (once)."""
        if self._closed:
            return
        self._closed = True
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                close()
        finally:
            self._on_close()


def _authorised(request: Request) -> bool:
    header = request.headers.get("Authorization", "")
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        user, _, password = base64.b64decode(encoded).decode().partition(":")
    except ValueError:
        return False
    return secrets.compare_digest(user, AMPLITUDE_API_KEY) and secrets.compare_digest(
        password, AMPLITUDE_SECRET_KEY
    )


def _bare(key: str) -> str:
    """Strip padding (a tab, once seen) and the `gp:` prefix from a property key."""
    return key.strip().removeprefix("gp:")

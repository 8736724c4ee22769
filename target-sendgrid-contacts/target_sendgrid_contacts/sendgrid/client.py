"""SendGridClient: one place for auth, retries, status triage and call counting."""

from __future__ import annotations

import json as jsonlib
import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from urllib.parse import urlsplit

import requests

from target_sendgrid_contacts.sendgrid.errors import (
    JobFailedError,
    JobTimeoutError,
    SendGridAPIError,
    SendGridUnavailableError,
)

LOGGER = logging.getLogger("target_sendgrid_contacts.sendgrid")

IMPORT_JOB_PATH = "/v3/marketing/contacts/imports/{job_id}"

# A path segment following one of these is an id; ids are folded so call counts group by endpoint.
_ID_PARENTS = frozenset({"lists", "imports", "exports", "field_definitions"})
_LITERAL_CHILDREN = frozenset({"contacts", "count", "search", "emails"})
_RETRIABLE_EXCEPTIONS = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
)
_BACKOFF_CAP_SECONDS = 30.0
_DOWNLOAD_LABEL = "GET {download}"


def path_template(path: str) -> str:
    """Fold ids in a SendGrid path so calls to one endpoint share a key.

    Args:
        path: Request path, with or without a query string.

    Returns:
        The path with ids replaced by ``{id}``, e.g. ``/v3/marketing/lists/{id}/contacts``.
    """
    parts = path.split("?", 1)[0].split("/")
    for i in range(1, len(parts)):
        if parts[i - 1] in _ID_PARENTS and parts[i] and parts[i] not in _LITERAL_CHILDREN:
            parts[i] = "{id}"
    return "/".join(parts)


def error_messages(response: requests.Response) -> list[str]:
    """Extract SendGrid's error messages from a response body.

    Args:
        response: A response SendGrid sent with an error status.

    Returns:
        ``field: message`` strings (or the raw body, shortened, when it is not SendGrid JSON).
    """
    try:
        body = response.json()
    except ValueError:
        text = (response.text or "").strip()
        return [text[:300]] if text else []
    errors = body.get("errors") if isinstance(body, dict) else None
    if not isinstance(errors, list):
        return [jsonlib.dumps(body)[:300]]
    messages = []
    for err in errors:
        if not isinstance(err, dict):
            messages.append(str(err))
            continue
        message = str(err.get("message") or "")
        field = err.get("field")
        messages.append(f"{field}: {message}" if field else message)
    return messages


class BackoffClock:
    """One 429 back-off for every client sharing it: a rate limit is the account's, not a call's.

    Thread-safe: the upload thread and the job follower both read and extend it.
    """

    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        """Create a clock with no back-off pending.

        Args:
            monotonic: Clock the back-off is measured on.
        """
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._until = 0.0

    def hold(self, seconds: float) -> float:
        """Make every sharer wait ``seconds`` from now (never shortens a longer hold).

        Args:
            seconds: Length of the back-off.

        Returns:
            The monotonic time the back-off ends.
        """
        with self._lock:
            self._until = max(self._until, self._monotonic() + seconds)
            return self._until

    def pending(self, waited_until: float) -> tuple[float, float]:
        """How long a caller must still wait, given the hold it already waited out.

        Args:
            waited_until: End of the last hold this caller slept through (0 for none).

        Returns:
            (seconds to wait, end of the current hold); zero seconds when nothing is pending.
        """
        with self._lock:
            until = self._until
        if until <= waited_until:
            return 0.0, until
        return max(until - self._monotonic(), 0.0), until


class SendGridClient:
    """Calls the SendGrid v3 API with Bearer auth, bounded retries and per-endpoint call counts.

    A client uses one ``requests.Session``, which is not safe to share between threads: a thread
    of its own takes :meth:`with_session`, which shares the call counts and the 429 back-off.

    Attributes:
        calls: HTTP attempts made, keyed by ``"METHOD /path-template"``.
    """

    def __init__(
        self,
        session: requests.Session,
        base_url: str,
        api_key: str,
        *,
        max_attempts: int = 6,
        max_wait_seconds: float = 60.0,
        timeout: float = 60.0,
        backoff_seconds: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """Create a client.

        Args:
            session: Session used for every call (connection pooling).
            base_url: API root, e.g. ``https://api.sendgrid.com`` (no trailing slash needed).
            api_key: SendGrid API key; sent only to ``base_url``, never logged.
            max_attempts: Attempts per call, first one included.
            max_wait_seconds: Cap on any single wait between attempts.
            timeout: Seconds to wait for a connection or for response bytes.
            backoff_seconds: First backoff for 5xx and transport errors; doubles per attempt.
            sleep: Waits between attempts (tests pass a recorder).
            clock: Wall clock in epoch seconds (``X-RateLimit-Reset`` is an epoch).
            monotonic: Clock for job deadlines.
        """
        self._session = session
        self.base_url = base_url.rstrip("/")
        self._auth = {"Authorization": f"Bearer {api_key}"}
        self.max_attempts = max(1, max_attempts)
        self.max_wait_seconds = max_wait_seconds
        self.timeout = timeout
        self.backoff_seconds = backoff_seconds
        self._sleep = sleep
        self._clock = clock
        self._monotonic = monotonic
        self.calls: Counter[str] = Counter()
        self._calls_lock = threading.Lock()
        self.rate_limit = BackoffClock(monotonic)

    def with_session(self, session: requests.Session) -> SendGridClient:
        """A client for another thread: its own session, the same counts and 429 back-off.

        Args:
            session: A session no other thread uses.

        Returns:
            The new client.
        """
        twin = SendGridClient.__new__(SendGridClient)
        twin.__dict__.update(self.__dict__)
        twin._session = session
        return twin

    def request(
        self,
        method: str,
        path: str,
        *,
        params: dict | None = None,
        json: object = None,
        data: bytes | None = None,
        ok: tuple[int, ...] = (200, 201, 202, 204),
        allow: tuple[int, ...] = (),
        idempotent: bool = True,
    ) -> requests.Response:
        """Call the API and return the response once its status is accepted.

        Args:
            method: HTTP method.
            path: Path under the base URL, starting with ``/``.
            params: Query parameters.
            json: JSON body (serialised here).
            data: Pre-serialised JSON body, when the caller measured its bytes.
            ok: Statuses that are success.
            allow: Other statuses handed back to the caller (e.g. 404 meaning "none").
            idempotent: False for calls that must not be repeated blindly once sent
                (creating a list): 5xx and transport errors are then raised, not retried.

        Returns:
            The response.

        Raises:
            SendGridAPIError: A status that is neither accepted nor retriable.
            SendGridUnavailableError: Retries ran out.
        """
        method = method.upper()
        template = path_template(path)
        headers = dict(self._auth)
        if json is not None or data is not None:
            headers["Content-Type"] = "application/json"
            if data is None:
                data = jsonlib.dumps(json, separators=(",", ":"), default=str).encode()
        return self._send(
            f"{method} {template}",
            lambda: self._session.request(
                method,
                self.base_url + path,
                params=params,
                data=data,
                headers=headers,
                timeout=self.timeout,
            ),
            ok=ok,
            allow=allow,
            idempotent=idempotent,
            error_context=(method, template),
        )

    def download(self, url: str) -> requests.Response:
        """GET a file URL (export file, errors file) without the API key, streamed.

        Args:
            url: Absolute URL handed out by SendGrid (pre-signed; must not get our key).

        Returns:
            The streamed response (status 200).

        Raises:
            SendGridAPIError: The file host refused the request.
            SendGridUnavailableError: Retries ran out.
        """
        parts = urlsplit(url)
        label = f"{parts.scheme}://{parts.netloc}{parts.path}"
        return self._send(
            _DOWNLOAD_LABEL,
            lambda: self._session.get(url, stream=True, timeout=self.timeout, headers={}),
            ok=(200,),
            allow=(),
            idempotent=True,
            error_context=("GET", label),
        )

    def wait_for_job(self, job_id: str, *, poll_interval: float, timeout: float) -> dict:
        """Poll an import job until it leaves ``pending``.

        The wait between polls starts at ``poll_interval`` and grows by half each poll
        (capped at 30 s), because a one-contact job can stay pending for half a minute.

        Args:
            job_id: Id returned by the upsert.
            poll_interval: First wait between polls, in seconds.
            timeout: Bound on the whole wait, in seconds.

        Returns:
            The job JSON (``status`` is ``completed``, ``errored`` or ``failed``).

        Raises:
            JobTimeoutError: Still pending at the bound.
        """
        deadline = self._monotonic() + timeout
        wait = max(poll_interval, 0.01)
        path = IMPORT_JOB_PATH.format(job_id=job_id)
        while True:
            job = self.request("GET", path).json()
            if job.get("status") != "pending":
                return job
            remaining = deadline - self._monotonic()
            if remaining <= 0:
                raise JobTimeoutError(
                    f"SendGrid import job {job_id} was still pending after {timeout:g} s "
                    "(job_timeout_seconds)."
                )
            self._sleep(min(wait, remaining))
            wait = min(wait * 1.5, _BACKOFF_CAP_SECONDS)

    def raise_if_failed(self, job: dict, what: str) -> None:
        """Raise when a job ended ``failed`` (SendGrid refused the whole job).

        Args:
            job: Job JSON from :meth:`wait_for_job`.
            what: Words naming the job for the message, e.g. ``"import job 123"``.

        Raises:
            JobFailedError: The job status is ``failed``.
        """
        if job.get("status") != "failed":
            return
        results = job.get("results") or {}
        detail = job.get("message") or results.get("message") or "no message"
        raise JobFailedError(f"SendGrid {what} failed: {detail}")

    def _send(
        self,
        label: str,
        send: Callable[[], requests.Response],
        *,
        ok: tuple[int, ...],
        allow: tuple[int, ...],
        idempotent: bool,
        error_context: tuple[str, str],
    ) -> requests.Response:
        last_problem = ""
        waited_until = 0.0
        for attempt in range(1, self.max_attempts + 1):
            pause, waited_until = self.rate_limit.pending(waited_until)
            if pause > 0:
                # Another call met a 429: sending now would only prolong the rate limit.
                LOGGER.info("%s: waiting %.1f s for SendGrid's rate limit", label, pause)
                self._sleep(pause)
            with self._calls_lock:
                self.calls[label] += 1
            try:
                response = send()
            except _RETRIABLE_EXCEPTIONS as exc:
                if not idempotent:
                    raise SendGridUnavailableError(
                        f"{label} did not complete ({type(exc).__name__}); not retried "
                        "because repeating it could duplicate its effect."
                    ) from exc
                last_problem = type(exc).__name__
                wait = self._backoff(attempt)
            else:
                status = response.status_code
                if status in ok or status in allow:
                    return response
                if status == 429:
                    last_problem = "429 too many requests"
                    wait = self._rate_limit_wait(response, attempt)
                    waited_until = self.rate_limit.hold(wait)
                elif status >= 500:
                    if not idempotent:
                        raise SendGridUnavailableError(
                            f"{label} answered {status}; not retried because repeating it "
                            "could duplicate its effect."
                        )
                    last_problem = f"{status} server error"
                    wait = self._backoff(attempt)
                else:
                    raise SendGridAPIError(status, error_messages(response), *error_context)
                response.close()
            if attempt == self.max_attempts:
                break
            LOGGER.warning(
                "%s: %s; attempt %d of %d, retrying in %.1f s",
                label,
                last_problem,
                attempt,
                self.max_attempts,
                wait,
            )
            self._sleep(wait)
        raise SendGridUnavailableError(
            f"SendGrid kept failing on {label} ({last_problem}) after {self.max_attempts} attempts."
        )

    def _backoff(self, attempt: int) -> float:
        base = self.backoff_seconds * 2 ** (attempt - 1)
        return min(base + random.uniform(0, base / 2), self.max_wait_seconds)

    def _rate_limit_wait(self, response: requests.Response, attempt: int) -> float:
        reset = response.headers.get("X-RateLimit-Reset")
        try:
            until_reset = float(reset) - self._clock() if reset is not None else None
        except ValueError:
            until_reset = None
        if until_reset is None:
            return self._backoff(attempt)
        # Jitter spreads clients that all waited for the same reset second.
        return min(max(until_reset, 0.0) + random.uniform(0.1, 1.0), self.max_wait_seconds)

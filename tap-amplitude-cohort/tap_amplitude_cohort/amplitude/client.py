"""Client of Amplitude's Behavioral Cohorts API: list, export, poll, download.

Imports nothing from singer_sdk: it takes a ``requests.Session`` and a base URL, so tests,
the benchmark and the tap aim it at the sandbox or at Amplitude alike.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import IO, Any
from urllib.parse import urljoin

import requests
from urllib3.exceptions import HTTPError as Urllib3HTTPError

from tap_amplitude_cohort.amplitude.decompress import open_decompressed
from tap_amplitude_cohort.amplitude.errors import (
    AmplitudeAPIError,
    ExportConnectionLost,
    ExportFailed,
    ExportTimedOut,
    RateLimited,
    RetriesExhausted,
)

logger = logging.getLogger(__name__)

MAX_CONCURRENT_REQUESTS = 5  # Amplitude's documented limit, shared with the Dashboard REST API
STATUS_IN_PROGRESS = "JOB INPROGRESS"
STATUS_COMPLETED = "JOB COMPLETED"
_REDIRECTS = (301, 302, 303, 307, 308)
_STORAGE_RETRIES = 3  # fresh storage URLs minted when one expired before we used it
_CHUNK_SIZE = 1 << 16


def _short(text: str, limit: int = 200) -> str:
    """Return a single-line, bounded excerpt of a response body for error messages."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[:limit] + "..."


class AmplitudeClient:
    """Calls the Behavioral Cohorts API with retries, a concurrency bound and deadlines.

    Args:
        session: The HTTP session (no auth set on it: credentials go only to Amplitude).
        base_url: API host, e.g. ``https://amplitude.com`` (no trailing slash needed).
        api_key: Project API key (Basic user name).
        secret_key: Project secret key (Basic password).
        max_retries: Retries of one call on 429, 5xx and connection errors.
        backoff_seconds: First backoff; doubles on each retry (with jitter) up to ``max_backoff``.
        max_backoff_seconds: Upper bound of one backoff.
        timeout: (connect, read) timeouts of each HTTP call, in seconds.
        max_concurrent: Bound on requests in flight through this client.
        sleep: Sleep function (injected by tests).
        clock: Monotonic clock (injected by tests).
    """

    def __init__(
        self,
        session: requests.Session,
        base_url: str,
        api_key: str,
        secret_key: str,
        *,
        max_retries: int = 6,
        backoff_seconds: float = 1.0,
        max_backoff_seconds: float = 30.0,
        timeout: tuple[float, float] = (10.0, 120.0),
        max_concurrent: int = MAX_CONCURRENT_REQUESTS,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._session = session
        self._base_url = base_url.rstrip("/")
        self._auth = (api_key, secret_key)
        self._max_retries = max_retries
        self._backoff = backoff_seconds
        self._max_backoff = max_backoff_seconds
        self._timeout = timeout
        self._slots = threading.BoundedSemaphore(max_concurrent)
        self._sleep = sleep
        self._clock = clock
        self._lock = threading.Lock()
        self.export_requests = 0  # request/{id} calls Amplitude accepted: each uses quota

    # -- public calls ------------------------------------------------------------------------

    def list_cohorts(self) -> list[dict[str, Any]]:
        """Return every cohort's metadata (``GET /api/3/cohorts``; uses no download quota).

        Returns:
            The cohort objects as Amplitude sends them.

        Raises:
            AmplitudeAPIError: On 4xx other than 429 (e.g. 401 for wrong keys).
            RetriesExhausted: When 429/5xx/connection errors outlast the retries.
        """
        with self._call("GET", "/api/3/cohorts", what="the cohort list") as response:
            body = response.json()
        cohorts = body.get("cohorts") if isinstance(body, dict) else None
        if not isinstance(cohorts, list):
            msg = "Amplitude's cohort list answer has no 'cohorts' array"
            raise AmplitudeAPIError(msg, status=response.status_code)
        return cohorts

    def request_export(
        self,
        cohort_id: str,
        *,
        include_properties: bool = True,
        property_keys: Sequence[str] | None = None,
    ) -> str:
        """Start a membership export of one cohort (counts against the download quota).

        Args:
            cohort_id: The cohort.
            include_properties: ``props=1`` when true, ``props=0`` otherwise.
            property_keys: Limits the properties, sent as repeated ``propKeys``.

        Returns:
            The export's request id.

        Raises:
            AmplitudeAPIError: On 4xx other than 429, naming the cohort.
            RetriesExhausted: When 429/5xx/connection errors outlast the retries.
        """
        params: list[tuple[str, str]] = [("props", "1" if include_properties else "0")]
        if include_properties and property_keys:
            params += [("propKeys", key) for key in property_keys]
        with self._call(
            "GET",
            f"/api/5/cohorts/request/{cohort_id}",
            what=f"the export request of cohort {cohort_id}",
            params=params,
        ) as response:
            body = response.json()
        with self._lock:
            self.export_requests += 1
        request_id = body.get("request_id") if isinstance(body, dict) else None
        if not request_id:
            msg = (
                f"Amplitude's answer to the export request of cohort {cohort_id} has no request_id"
            )
            raise ExportFailed(msg)
        return str(request_id)

    def wait_for_export(
        self,
        request_id: str,
        *,
        cohort_id: str,
        poll_interval: float,
        max_wait: float,
        growth: float = 1.5,
        max_interval: float = 60.0,
    ) -> None:
        """Poll an export until it completes, waiting longer between polls each time.

        Args:
            request_id: The export's request id.
            cohort_id: The cohort (for messages).
            poll_interval: First wait between polls, in seconds.
            max_wait: Bound on the total wait, in seconds.
            growth: Factor applied to the wait after each poll.
            max_interval: Upper bound of one wait.

        Raises:
            ExportTimedOut: When the export is not complete within ``max_wait``.
            ExportFailed: When Amplitude reports anything but in-progress or completed.
        """
        deadline = self._clock() + max_wait
        interval = poll_interval
        polls = 0
        while True:
            with self._call(
                "GET",
                f"/api/5/cohorts/request-status/{request_id}",
                what=f"the export status of cohort {cohort_id}",
            ) as response:
                status = response.status_code
                body = response.json() if response.content else {}
            polls += 1
            async_status = body.get("async_status") if isinstance(body, dict) else None
            if status == 200 and async_status == STATUS_COMPLETED:
                logger.debug("Export of cohort %s completed after %d polls", cohort_id, polls)
                return
            if status != 202 and async_status != STATUS_IN_PROGRESS:
                msg = (
                    f"the export of cohort {cohort_id} failed: Amplitude reported HTTP {status} "
                    f"with status {async_status!r}"
                )
                raise ExportFailed(msg)
            remaining = deadline - self._clock()
            if remaining <= 0:
                msg = (
                    f"the export of cohort {cohort_id} did not complete within "
                    f"{max_wait:g} s ({polls} polls); Amplitude suggests fewer user properties "
                    "(propKeys) or none (include_user_properties: false) for large cohorts"
                )
                raise ExportTimedOut(msg)
            self._sleep(min(interval, remaining))
            interval = min(interval * growth, max_interval)

    @contextlib.contextmanager
    def open_export_file(self, request_id: str, *, cohort_id: str) -> Iterator[IO[bytes]]:
        """Open a completed export as a stream of decompressed CSV bytes.

        A redirect to storage is followed without the credentials (pre-signed URLs refuse
        them). The body is decompressed while it is read; a truncated or corrupt file raises
        ExportCorrupt, a dropped connection ExportConnectionLost, when the reader gets there.

        Args:
            request_id: The export's request id.
            cohort_id: The cohort (for messages).

        Yields:
            A binary file object of the CSV.

        Raises:
            ExportFailed: When the file cannot be fetched.
        """
        what = f"the export of cohort {cohort_id}"
        path = f"/api/5/cohorts/request/{request_id}/file"
        for _ in range(_STORAGE_RETRIES):
            with self._call(
                "GET",
                path,
                what=f"the export file of cohort {cohort_id}",
                stream=True,
                allow_redirects=False,
            ) as response:
                if response.status_code not in _REDIRECTS:
                    yield open_decompressed(self._body_chunks(response, what), what=what)
                    return
                location = response.headers.get("Location")
                if location:
                    location = urljoin(response.url, location)
            if not location:
                msg = f"{what} redirect carries no Location"
                raise ExportFailed(msg)
            with self._call(
                "GET",
                location,
                what=f"the stored file of cohort {cohort_id}",
                stream=True,
                authenticate=False,
                allow_failure=(403,),
            ) as stored:
                if stored.status_code != 403:
                    yield open_decompressed(self._body_chunks(stored, what), what=what)
                    return
                # An expired pre-signed URL: ask Amplitude for a fresh one.
                logger.warning("Storage refused %s (HTTP 403); asking for a fresh link", what)
        msg = f"storage kept refusing {what} (HTTP 403) after {_STORAGE_RETRIES} fresh links"
        raise ExportFailed(msg)

    # -- plumbing ----------------------------------------------------------------------------

    @staticmethod
    def _body_chunks(response: requests.Response, what: str) -> Iterator[bytes]:
        """Yield the raw (still compressed) body, turning a dropped connection into an error."""
        try:
            yield from response.raw.stream(_CHUNK_SIZE, decode_content=False)
        except (Urllib3HTTPError, requests.RequestException, OSError) as exc:
            msg = f"the connection dropped while reading {what} ({type(exc).__name__})"
            raise ExportConnectionLost(msg) from exc

    def _url(self, path_or_url: str) -> str:
        if path_or_url.startswith(("http://", "https://")):
            return path_or_url
        return f"{self._base_url}{path_or_url}"

    def _delay(self, attempt: int, response: requests.Response | None) -> float:
        retry_after = response.headers.get("Retry-After") if response is not None else None
        if retry_after and retry_after.strip().isdigit():
            return min(float(retry_after), self._max_backoff)
        base = min(self._backoff * 2**attempt, self._max_backoff)
        return base * random.uniform(0.5, 1.0)

    @contextlib.contextmanager
    def _call(
        self,
        method: str,
        path_or_url: str,
        *,
        what: str,
        params: list[tuple[str, str]] | None = None,
        stream: bool = False,
        allow_redirects: bool = True,
        authenticate: bool = True,
        allow_failure: tuple[int, ...] = (),
    ) -> Iterator[requests.Response]:
        """Send one call, retrying 429/5xx/connection errors; hold a slot while it is used.

        Yields:
            The response (2xx, a redirect when not followed, or a status in allow_failure).

        Raises:
            AmplitudeAPIError: On other 4xx.
            RateLimited: When 429 outlasts the retries.
            RetriesExhausted: When 5xx or connection errors outlast the retries.
        """
        url = self._url(path_or_url)
        auth = self._auth if authenticate else None
        last_status: int | None = None
        last_response: requests.Response | None = None
        last_problem = ""
        for attempt in range(self._max_retries + 1):
            if attempt:
                delay = self._delay(attempt - 1, last_response)
                logger.warning(
                    "Retrying %s in %.1f s after %s (attempt %d of %d)",
                    what,
                    delay,
                    last_problem,
                    attempt + 1,
                    self._max_retries + 1,
                )
                self._sleep(delay)
            with self._slots:
                try:
                    response = self._session.request(
                        method,
                        url,
                        params=params,
                        auth=auth,
                        stream=stream,
                        allow_redirects=allow_redirects,
                        timeout=self._timeout,
                    )
                except (requests.ConnectionError, requests.Timeout) as exc:
                    last_status, last_response = None, None
                    last_problem = f"a connection error ({type(exc).__name__})"
                    continue
                try:
                    status = response.status_code
                    if status == 429 or status >= 500:
                        last_status, last_response = status, response
                        # The body says which limit (concurrency, per-window, monthly quota).
                        last_problem = f"HTTP {status} {_short(response.text, 120)}".rstrip()
                        continue
                    if status >= 400 and status not in allow_failure:
                        text = _short(response.text)
                        msg = f"Amplitude refused {what}: HTTP {status} {text}".rstrip()
                        raise AmplitudeAPIError(msg, status=status)
                    yield response
                    return
                finally:
                    response.close()
        msg = f"{what} kept failing after {self._max_retries + 1} attempts (last: {last_problem})"
        if last_status == 429:
            raise RateLimited(msg, status=last_status)
        raise RetriesExhausted(msg, status=last_status)

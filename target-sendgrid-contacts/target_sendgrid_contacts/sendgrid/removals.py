"""List-membership removal: DELETE requests of contact ids, each a job followed to its end."""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING
from urllib.parse import quote

from target_sendgrid_contacts.sendgrid.errors import SendGridAPIError, SendGridError
from target_sendgrid_contacts.sendgrid.exports import poll_until

if TYPE_CHECKING:
    from target_sendgrid_contacts.sendgrid.client import SendGridClient

LOGGER = logging.getLogger("target_sendgrid_contacts.sendgrid.removals")

LIST_CONTACTS_PATH = "/v3/marketing/lists/{list_id}/contacts"
LIST_COUNT_PATH = "/v3/marketing/lists/{list_id}/contacts/count"

# A contact id is a UUID (36 characters): 200 of them with commas make a ~7.4 kB query, under
# the 8 kB request line many servers accept.
DEFAULT_REMOVAL_CHUNK = 200
MAX_IDS_CHARS = 7_400
# Removal jobs allowed in flight before waiting on the oldest one.
MAX_PENDING_REMOVALS = 4


class RemovalError(SendGridError):
    """Removing contacts from a list did not complete."""


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
                job_id,
                self.list_id,
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

        poll_until(
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

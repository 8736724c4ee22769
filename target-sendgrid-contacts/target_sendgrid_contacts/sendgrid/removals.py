"""List-membership removal: DELETE requests of contact ids, every job followed to its end."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING
from urllib.parse import quote

import requests

from target_sendgrid_contacts.jobs import FinishedJob, JobFollower
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
# Removal jobs in flight before waiting for one to end: 250 chunks are 50,000 leavers, more than
# 1 % churn of a 2,000,000-member cohort, so such a removal never waits per chunk.
MAX_PENDING_REMOVALS = 250


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
    """Sends every chunk, following the jobs on a thread; count confirmation when unpollable."""

    def __init__(
        self, client: SendGridClient, list_id: str, *, poll_interval: float, timeout: float
    ) -> None:
        self.client = client
        self.list_id = list_id
        self.poll_interval = poll_interval
        self.timeout = timeout
        self.count_before = list_count(client, list_id)
        self.by_count = False  # True once the import-status endpoint answered 404
        self.submitted = 0
        # Its own session, the same 429 back-off: a rate limit holds polls and DELETEs alike.
        self._follower = JobFollower(
            client.with_session(requests.Session()),
            poll_interval=poll_interval,
            timeout=timeout,
            kind="removal",
        )

    def submit(self, ids: list[str]) -> None:
        joined = ",".join(quote(i, safe="") for i in ids)
        path = f"{LIST_CONTACTS_PATH.format(list_id=self.list_id)}?contact_ids={joined}"
        body = self.client.request("DELETE", path, ok=(200, 202, 204)).json()
        job_id = body.get("job_id") if isinstance(body, dict) else None
        self.submitted += len(ids)
        if job_id and not self.by_count:
            self._follower.add(str(job_id), None)
        else:
            self.by_count = True
        # A failed job stops the sending at once; the bound only matters for huge removals.
        self._check(self._follower.take_finished())
        while self._follower.outstanding >= MAX_PENDING_REMOVALS:
            self._check(self._follower.wait_finished(every=False))

    def finish(self) -> int:
        while self._follower.outstanding:
            self._check(self._follower.wait_finished(every=True))
        if self.by_count and self.submitted:
            self._confirm_by_count()
        return self.submitted

    def close(self) -> None:
        self._follower.stop()

    def _check(self, finished: list[FinishedJob]) -> None:
        for done in finished:
            if done.error is not None:
                if not (isinstance(done.error, SendGridAPIError) and done.error.status == 404):
                    raise done.error
                if not self.by_count:
                    # Removal job ids are not documented as pollable at the import-status
                    # endpoint.
                    LOGGER.info(
                        "Removal job %s of list %s cannot be polled (404); confirming by list "
                        "count",
                        done.job_id,
                        self.list_id,
                    )
                self.by_count = True
                continue
            job = done.job or {}
            if job.get("status") != "completed":
                results = job.get("results") or {}
                raise RemovalError(
                    f"SendGrid removal job {done.job_id} on list {self.list_id} ended "
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
    chunk_size: int | None = None,
) -> int:
    """Take contacts off a list (they stay in SendGrid and on their other lists).

    Sends ``DELETE /v3/marketing/lists/{id}/contacts?contact_ids=...`` in chunks, one after
    another without waiting, and follows every job concurrently (on one thread, as upserts are)
    at ``GET /v3/marketing/contacts/imports/{job_id}``; it returns once each ended. If that
    endpoint answers 404 (removal jobs there are unverified upstream), the end is confirmed
    instead by the list's contact count falling by the number removed; so call this after the
    list's upsert jobs have finished.

    Args:
        client: The SendGrid client.
        list_id: The list.
        contact_ids: SendGrid contact ids to take off (consumed lazily).
        poll_interval: First wait between job polls.
        timeout: Bound on each wait.
        chunk_size: Ids per request at most (also capped by URL length); default
            ``DEFAULT_REMOVAL_CHUNK``.

    Returns:
        How many contact ids were taken off the list.

    Raises:
        RemovalError: A job did not end ``completed``, or the count did not fall in time.
        SendGridError: SendGrid refused a request.
    """
    size = DEFAULT_REMOVAL_CHUNK if chunk_size is None else chunk_size
    chunks = _id_chunks(contact_ids, max(size, 1))
    first = next(chunks, None)
    if first is None:
        return 0
    jobs = _RemovalJobs(client, list_id, poll_interval=poll_interval, timeout=timeout)
    try:
        jobs.submit(first)
        for chunk in chunks:
            jobs.submit(chunk)
        removed = jobs.finish()
    finally:
        # Jobs still pending after a failure or a signal are SendGrid's to finish; the cohort
        # stays pending in the bookmarks, so a rerun removes whoever is still there.
        jobs.close()
    LOGGER.info("Removed %d contacts from list %s", removed, list_id)
    return removed

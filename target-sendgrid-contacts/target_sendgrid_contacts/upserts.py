"""Upserts: send bodies, follow their import jobs meanwhile, account for what SendGrid refused.

A body goes out as soon as it is full, through a :class:`BodySender` thread (so mapping goes on
while SendGrid reads it); its job is followed by a :class:`JobFollower` thread while input
keeps flowing, with at most ``max_in_flight`` bodies and jobs outstanding. What a finished job
means (counts, rejects) is worked out on the caller's thread, whenever it hands over more work
and in :meth:`Uploader.settle`, which waits for every job (before STATE, before removal).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, replace
from operator import itemgetter
from pathlib import Path

import msgspec
import requests

from target_sendgrid_contacts.batching import UpsertBody, single_body, upsert_bodies
from target_sendgrid_contacts.inflight import KeptPart, SentParts
from target_sendgrid_contacts.items import Item
from target_sendgrid_contacts.jobs import FinishedJob, JobFollower
from target_sendgrid_contacts.outcomes import ListOutcome
from target_sendgrid_contacts.rejects import SENDGRID_REJECTED, RejectsWriter
from target_sendgrid_contacts.sendgrid.client import SendGridClient
from target_sendgrid_contacts.sendgrid.contacts import (
    fetch_errored_contacts,
    is_field_not_ready,
    refused_positions,
    start_upsert,
)
from target_sendgrid_contacts.sendgrid.errors import JobFailedError, SendGridAPIError
from target_sendgrid_contacts.sending import BodySender

LOGGER = logging.getLogger("target_sendgrid_contacts")

FIELD_ACTIVATION_WAIT_SECONDS = 60.0
# A field created shortly before this run (by a run that failed, or by a person) is refused
# just the same for a few seconds: wait for it too, less long.
EARLIER_FIELD_WAIT_SECONDS = 20.0
MAX_REFUSAL_ROUNDS = 20  # requests re-sent without contacts SendGrid named, per batch
MAX_QUEUED_BODIES = 1  # one body with the sender while the next is mapped: bodies are 6 MB
_ENCODER = msgspec.json.Encoder()
_SENT_CONTACT = itemgetter(1)  # of an (item, contact) pair


@dataclass(frozen=True)
class _Put:
    """A body handed to the sender, with what its answer needs."""

    future: Future
    outcome: ListOutcome
    list_id: str
    part: KeptPart  # the contacts, in request order
    body: bytes
    round: int
    waited: float = 0.0  # seconds already waited for new custom fields
    wait: float = 1.0


class Uploader:
    """Sends contacts to lists and follows SendGrid's import jobs while more input arrives.

    Attributes:
        contacts_sent: Contacts in accepted requests.
        jobs_finished: Import jobs followed to their end and accounted for.
        sendgrid_rejections: Contacts SendGrid refused (400-named or in errored jobs).
    """

    def __init__(
        self,
        client: SendGridClient,
        rejects: RejectsWriter,
        *,
        request_limit: int,
        poll_interval: float,
        timeout: float,
        new_fields: Callable[[], bool],
        max_in_flight: int = 1,
        workdir: Path | None = None,
        follower_client: SendGridClient | None = None,
    ) -> None:
        """Create the uploader.

        Args:
            client: The SendGrid client (the sender and follower threads get twins of it).
            rejects: Where refused contacts are written.
            request_limit: Contacts per request at most.
            poll_interval: First wait between job polls.
            timeout: Bound on one job wait.
            new_fields: Whether this run created custom fields (SendGrid refuses them briefly).
            max_in_flight: Import jobs outstanding at most; the next request waits for one.
            workdir: Private folder for the contacts of pending jobs that do not fit in memory.
            follower_client: The job follower's client; by default ``client`` with a session
                of its own (a session must not be used by two threads at once).
        """
        self.client = client
        self.request_limit = request_limit
        self.contacts_sent = 0
        self.jobs_finished = 0
        self.sendgrid_rejections = 0
        self.max_in_flight = max(1, max_in_flight)
        self._rejects = rejects
        self._new_fields = new_fields
        self._parts = SentParts(workdir)
        self._follower = JobFollower(
            follower_client or client.with_session(requests.Session()),
            poll_interval=poll_interval,
            timeout=timeout,
        )
        sender_client = client.with_session(requests.Session())
        # Looked up at call time, so that a test can watch the bodies go out.
        self._sender = BodySender(lambda body: start_upsert(sender_client, body))
        self._puts: deque[_Put] = deque()
        self._depth = 0

    def upsert(self, outcome: ListOutcome, list_id: str, to_send: list[tuple[Item, dict]]) -> None:
        """Send contacts to a list and wait for every job; count upserts and refusals.

        Args:
            outcome: The list's counts.
            list_id: The list.
            to_send: Items with the exact contact dict to send.

        Raises:
            JobFailedError: A job ended ``failed``.
        """
        self.send(outcome, list_id, to_send)
        self.settle()

    def send(self, outcome: ListOutcome, list_id: str, to_send: list[tuple[Item, dict]]) -> None:
        """Send contacts to a list now; their jobs are followed while the caller reads on.

        Jobs that finished meanwhile are accounted for here; with ``max_in_flight`` jobs
        outstanding, the next request first waits for one of them.

        Args:
            outcome: The list's counts.
            list_id: The list.
            to_send: Items with the exact contact dict to send.

        Raises:
            JobFailedError: An earlier job ended ``failed`` (or in an undocumented status).
        """
        with self._busy():
            self._account(self._follower.take_finished())
            self._send(outcome, list_id, to_send)
            self._resolve_puts(block=False)

    def settle(self) -> None:
        """Wait for every outstanding job and account for it (before STATE, before removal).

        Raises:
            JobFailedError: A job ended ``failed`` (or in an undocumented status); the other
                finished jobs are accounted for first.
        """
        with self._busy():
            self._resolve_puts(block=True)
            self._account(self._follower.wait_finished(every=True))

    @property
    def busy(self) -> bool:
        """Whether a call is under way (a signal handler may run in the middle of one).

        A body just answered may then be held by the interrupted call, not yet followed:
        settling now could not vouch for it, so no STATE may be written.
        """
        return self._depth > 0

    @contextlib.contextmanager
    def _busy(self) -> Iterator[None]:
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1

    @property
    def outstanding(self) -> int:
        """Bodies and import jobs sent and not yet accounted for."""
        return len(self._puts) + self._follower.outstanding

    def close(self) -> None:
        """Stop sending and following (pending jobs are SendGrid's to finish; a rerun resends)."""
        self._sender.stop()
        self._follower.stop()

    def _account(self, finished: list[FinishedJob]) -> None:
        first_error: BaseException | None = None
        for done in finished:
            outcome, kept = done.token
            try:
                if done.error is not None:
                    raise done.error
                self._follow(outcome, done.job_id, done.job or {}, kept)
            except Exception as exc:  # noqa: BLE001 - account the rest, then raise the first
                first_error = first_error or exc
            finally:
                self._parts.drop(kept)
        if first_error is not None:
            raise first_error

    def _track(self, outcome: ListOutcome, job_id: str, kept: KeptPart) -> None:
        self._follower.add(job_id, (outcome, kept))

    def _wait_for_room(self) -> None:
        """Return once another body may be queued (bounded bodies and jobs outstanding)."""
        while True:
            self._resolve_puts(block=False)
            queued = len(self._puts)
            if (
                queued < MAX_QUEUED_BODIES
                and self._follower.outstanding + queued < self.max_in_flight
            ):
                return
            if queued:
                self._resolve_puts(block=True, one=True)
            else:
                self._account(self._follower.wait_finished(every=False))

    def _send(
        self, outcome: ListOutcome, list_id: str, to_send: list[tuple[Item, dict]], round_: int = 0
    ) -> None:
        limit = self.request_limit
        for body in _bodies(list_id, to_send, limit):
            self._wait_for_room()
            # Set aside now (on disk when large): only a refusal or an errored job reads it
            # back, and the items need not stay in memory while the body is on its way.
            kept = self._parts.keep(to_send[body.first : body.first + body.count], body.body)
            self._puts.append(
                _Put(self._sender.submit(body.body), outcome, list_id, kept, body.body, round_)
            )

    def _resolve_puts(self, *, block: bool, one: bool = False) -> None:
        """Take SendGrid's answers to queued bodies, oldest first; start following their jobs."""
        while self._puts and (block or self._puts[0].future.done()):
            put = self._puts.popleft()
            try:
                job_id = put.future.result()
            except SendGridAPIError as exc:
                self._refused(put, exc)
            else:
                self.contacts_sent += put.part.count
                self._track(put.outcome, job_id, put.part)
            if one:
                return

    def _refused(self, put: _Put, exc: SendGridAPIError) -> None:
        bound = FIELD_ACTIVATION_WAIT_SECONDS if self._new_fields() else EARLIER_FIELD_WAIT_SECONDS
        if is_field_not_ready(exc) and put.waited < bound:
            LOGGER.info(
                "Custom fields not accepted yet (new fields take a few seconds); "
                "retrying in %.1f s",
                put.wait,
            )
            time.sleep(put.wait)
            self._puts.appendleft(
                replace(
                    put,
                    future=self._sender.submit(put.body),
                    waited=put.waited + put.wait,
                    wait=min(put.wait * 1.5, 10.0),
                )
            )
            return
        part = self._parts.load(put.part)
        self._parts.drop(put.part)  # what is resent is set aside anew
        named = {
            position: message
            for position, message in refused_positions(exc).items()
            if position < len(part)
        }
        if named and put.round < MAX_REFUSAL_ROUNDS:
            # One refused contact fails the whole request: set the named ones aside
            # (all of them, when SendGrid named every contact) and send the rest.
            for position, message in named.items():
                self._reject_sent(put.outcome, part[position], message)
            rest = [p for i, p in enumerate(part) if i not in named]
            if rest:
                self._send(put.outcome, put.list_id, rest, put.round + 1)
            return
        raise exc

    def _follow(self, outcome: ListOutcome, job_id: str, job: Mapping, kept: KeptPart) -> None:
        self.jobs_finished += 1
        results = job.get("results") or {}
        status = job.get("status")
        if status == "failed":
            detail = job.get("message") or results.get("message") or _first_error(job)
            raise JobFailedError(
                f"SendGrid import job {job_id} for list {outcome.name!r} failed: {detail}"
            )
        if status not in ("completed", "errored"):
            # Not a documented ending: claiming the contacts upserted could lose them.
            raise JobFailedError(
                f"SendGrid import job {job_id} for list {outcome.name!r} ended with status "
                f"{status!r}, which is not one SendGrid documents; run again to converge."
            )
        outcome.created += int(results.get("created_count") or 0)
        outcome.updated += int(results.get("updated_count") or 0)
        if status == "completed":
            outcome.upserted += kept.count
            return
        sent = self._parts.load(kept)  # read back only when a contact has to be named
        by_email = {item.email: (item, contact) for item, contact in sent}
        named = []
        if results.get("errors_url"):
            try:
                named = fetch_errored_contacts(self.client, results["errors_url"])
            except Exception as exc:  # noqa: BLE001 - the count still stands; say why ids are lacking
                LOGGER.warning("Could not read the errors file of job %s: %s", job_id, exc)
        errored = int(results.get("errored_count") or 0)
        if not errored:  # errored without a count: the errors file is all we have
            errored = sum(1 for entry in named if (entry.email or "") in by_email)
        errored = min(errored, len(sent))
        outcome.upserted += len(sent) - errored
        if not errored:
            return
        written = 0
        for entry in named:
            if written >= errored:
                break
            found = by_email.get(entry.email or "")
            if found is None:
                continue
            self._reject_sent(outcome, found, entry.message)
            written += 1
        for _ in range(errored - written):
            outcome.rejected[SENDGRID_REJECTED] += 1
            self.sendgrid_rejections += 1
            self._rejects.write(
                reason=SENDGRID_REJECTED,
                message=f"SendGrid import job {job_id} refused a contact its errors file "
                "did not name",
                stream=None,
                list_name=outcome.name,
            )

    def _reject_sent(self, outcome: ListOutcome, sent: tuple[Item, dict], message: str) -> None:
        item, contact = sent
        outcome.rejected[SENDGRID_REJECTED] += 1
        self.sendgrid_rejections += 1
        self._rejects.write(
            reason=SENDGRID_REJECTED,
            message=message,
            stream=item.stream,
            list_name=outcome.name,
            keys=item.keys,
            record_number=item.record_number,
            values=contact,
        )


def _bodies(list_id: str, to_send: list[tuple[Item, dict]], limit: int) -> Iterator[UpsertBody]:
    """The request bodies for contacts: one encoding of them all when they fit in one body."""
    if len(to_send) <= limit:
        whole = _ENCODER.encode(list(map(_SENT_CONTACT, to_send)))
        body = single_body([list_id], whole)
        if body is not None:
            yield UpsertBody(0, len(to_send), body)
            return
    encoded = [_ENCODER.encode(contact) for _, contact in to_send]
    yield from upsert_bodies([list_id], encoded, max_contacts=limit)


def _first_error(job: Mapping) -> str:
    errors = job.get("errors")
    if isinstance(errors, list) and errors:
        first = errors[0]
        return str(first.get("message") if isinstance(first, dict) else first)
    return "no message"

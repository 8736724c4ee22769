"""State of the fake SendGrid account, thread-safe: the account data plus its queued work.

Asynchronous work (upsert jobs, list-removal jobs, contact deletions, exports) is queued
with a due time and applied lazily, in due order, by the first call that touches the state
after that time; nothing runs in the background. Until then a job reads ``pending`` and its
contacts are invisible, as with the real service.

Job answers (``GET /v3/marketing/contacts/imports/{id}``) cover upserts
(``job_type: upsert_contacts``), list removals (``delete_list_contacts``; the real service
is not documented to answer for those: a sandbox assumption) and contact deletions
(``delete_contacts``). ``results`` holds ``requested_count``, ``created_count``,
``updated_count``, ``deleted_count``, ``errored_count`` and, when some contacts failed,
``errors_url``. Past half its delay a pending upsert already shows the counts it expects
(SendGrid shows counts while pending: clients must decide on ``status``). A job whose
contacts would take the account past ``contact_limit`` changes nothing and ends ``failed``
with ``errors: [{"message": "you have hit your contact limit"}]`` (the exact upstream shape
is unverified). A job in which some contacts failed ends ``errored``.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from sandbox.config import SandboxConfig
from sandbox.sendgrid.account import Account, check_list_name
from sandbox.sendgrid.files import errors_file, export_body
from sandbox.sendgrid.jobs import Export, Job, count_by_status, export_answer, job_answer
from sandbox.sendgrid.model import ApiError, check_upsert, is_rejected, is_valid_email
from sandbox.storage import Storage

CONTACT_LIMIT_MESSAGE = "you have hit your contact limit"
FAILED_JOB_MESSAGE = "the job could not be processed"  # a job the sandbox was told to fail
REJECTED_MESSAGE = "rejected by the sandbox (reject+ address)"


class SendGridState:
    """Everything the fake SendGrid account holds; every public method is thread-safe.

    Attributes:
        clock: Source of "now" (epoch seconds); tests may replace it to skip waiting.
        export_rows_per_file: Past this many contacts an export is split into several urls.
    """

    def __init__(
        self,
        config: SandboxConfig,
        storage: Storage,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.storage = storage
        self.clock = clock
        self.export_rows_per_file = 1_000_000
        self._lock = threading.RLock()
        self.reset()

    def reset(self) -> None:
        """Forget everything: an empty account."""
        with self._lock:
            self._account = Account()
            self._jobs: dict[str, Job] = {}
            self._exports: dict[str, Export] = {}
            self._queue: list[tuple[float, int, Job | Export]] = []
            self._seq = itertools.count()

    def job_sizes(self) -> dict[str, tuple[str, int]]:
        """Every job so far: ``{job id: (job type, contacts requested)}``, for benchmarks."""
        with self._lock:
            return {job_id: (job.job_type, job.requested) for job_id, job in self._jobs.items()}

    def contact_id(self, n: int) -> str:
        """The public id of contact number ``n``."""
        return self._account.contact_id(n)

    # ----- queued work -----------------------------------------------------------------

    def settle(self, *, force: bool = False) -> None:
        """Apply queued work that is due (all of it with ``force``), in due order."""
        with self._lock:
            now = self.clock()
            while self._queue and (force or self._queue[0][0] <= now):
                _, _, work = heapq.heappop(self._queue)
                if isinstance(work, Export):
                    self._finish_export(work, now)
                    continue
                apply = {
                    "upsert_contacts": self._apply_upsert,
                    "delete_list_contacts": self._apply_removal,
                    "delete_contacts": self._apply_deletion,
                }[work.job_type]
                if work.job_type in self.config.failing_jobs:
                    work.status, work.message = "failed", FAILED_JOB_MESSAGE
                    work.results = {"requested_count": work.requested, "errored_count": 0}
                else:
                    apply(work)
                work.payload = None
                work.finished_at = now

    def _enqueue(self, work: Job | Export) -> None:
        heapq.heappush(self._queue, (work.due, next(self._seq), work))

    def _new_job(self, job_type: str, delay: float, requested: int, payload: Any) -> str:
        now = self.clock()
        job = Job(str(uuid.uuid4()), job_type, now + delay, now, requested, payload)
        self._jobs[job.id] = job
        self._enqueue(job)
        return job.id

    def _put_key(self, body: Any, name: str) -> str:
        # a gzip file as such (no Content-Encoding): clients must decompress it themselves
        url = self.storage.put(
            body, content_type="application/gzip", content_encoding=None, name=name
        )
        return url.split("/files/", 1)[1].split("?", 1)[0]

    # ----- contacts --------------------------------------------------------------------

    def upsert(self, list_ids: list[str], contacts: list[dict[str, Any]]) -> str:
        """Check an upsert request as SendGrid does and queue its job; return the job id.

        Raises:
            ApiError: 400 when the request is refused as a whole.
        """
        with self._lock:
            self.settle()
            checked = check_upsert(
                contacts,
                list_ids,
                known_lists=self._account.lists,
                fields=self._account.fields.by_id,
                now=self.clock(),
                activation_seconds=self.config.field_activation_seconds,
            )
            payload = (list(dict.fromkeys(list_ids)), checked)
            delay = self.config.import_delay_seconds
            return self._new_job("upsert_contacts", delay, len(checked), payload)

    def _apply_upsert(self, job: Job) -> None:
        account = self._account
        list_ids, checked = job.payload
        failed = [(email, REJECTED_MESSAGE) for email, _ in checked if is_rejected(email)]
        accepted = [(email, c) for email, c in checked if not is_rejected(email)]
        new = sum(1 for email, _ in accepted if email not in account.contacts)
        results = {"requested_count": job.requested, "created_count": 0, "updated_count": 0}
        if len(account.contacts) + new > self.config.contact_limit:
            job.status, job.message = "failed", CONTACT_LIMIT_MESSAGE
            failed = [(email, CONTACT_LIMIT_MESSAGE) for email, _ in checked]
        else:
            now, members = job.due, []
            for email, values in accepted:
                created = email not in account.contacts
                members.append(account.store(email, values, now).n)
                results["created_count" if created else "updated_count"] += 1
            for list_id in list_ids:
                if list_id in account.lists:  # unless deleted meanwhile
                    account.lists[list_id].members.update(members)
            job.status = "errored" if failed else "completed"
        results["errored_count"] = len(failed)
        if failed:
            job.errors_key = self._put_key(errors_file(failed), "errors.csv.gz")
        job.results = results

    def add_contact(
        self,
        email: str,
        *,
        first_name: str | None = None,
        last_name: str | None = None,
        list_ids: Iterable[str] = (),
        custom_fields: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Add or update a contact at once, as a person would in the SendGrid UI (no job).

        Raises:
            ApiError: 400 for an invalid email, 404 for an unknown list.
        """
        with self._lock:
            self.settle()
            if not is_valid_email(email):
                raise ApiError(400, "email address is invalid", "email")
            lists = [self._account.get_list(list_id) for list_id in list_ids]
            values: dict[str, Any] = {"first_name": first_name, "last_name": last_name}
            values = {k: v for k, v in values.items() if v is not None}
            if custom_fields:
                values["custom_fields"] = custom_fields
            contact = self._account.store(email.lower(), values, self.clock())
            for contact_list in lists:
                contact_list.members.add(contact.n)
            return self._account.details(contact)

    def remove_members(self, list_id: str, emails: Iterable[str]) -> int:
        """Take contacts off a list at once, as a person would in the UI; return how many."""
        with self._lock:
            self.settle()
            members = self._account.get_list(list_id).members
            before = len(members)
            for email in emails:
                contact = self._account.contacts.get(email.lower())
                if contact is not None:
                    members.discard(contact.n)
            return before - len(members)

    def contact(self, email: str) -> dict[str, Any] | None:
        """A contact's details (as search answers them) by email, any case; None if absent."""
        with self._lock:
            self.settle()
            found = self._account.contacts.get(email.lower())
            return self._account.details(found) if found else None

    def contact_by_id(self, contact_id: str) -> dict[str, Any] | None:
        """A contact's details by contact id; None if absent."""
        with self._lock:
            self.settle()
            n = self._account.contact_n(contact_id)
            return None if n is None else self._account.all_details([n])[0]

    def contacts(self, email: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        """Every contact's details (or the one with ``email``; or the first ``limit``)."""
        with self._lock:
            self.settle()
            if email is None:
                return self._account.all_details(limit=limit)
            found = self.contact(email)
            return [found] if found else []

    @property
    def contact_count(self) -> int:
        """How many contacts the account holds."""
        with self._lock:
            self.settle()
            return len(self._account.contacts)

    def search_emails(self, emails: list[str]) -> dict[str, dict[str, Any]]:
        """Answer ``search/emails``: per email as sent, ``{"contact"}`` or ``{"error"}``."""
        with self._lock:
            result: dict[str, dict[str, Any]] = {}
            for email in emails:
                found = self.contact(email)
                result[email] = {"contact": found} if found else {"error": "contact not found"}
            return result

    def delete_contacts(self, contact_ids: list[str] | None) -> str:
        """Queue the deletion of contacts (all of them with None); return the job id.

        Raises:
            ApiError: 400 for a malformed id.
        """
        with self._lock:
            self.settle()
            ns = None if contact_ids is None else self._account.ids_to_ns(contact_ids, "ids")
            requested = len(self._account.contacts) if ns is None else len(ns)
            delay = self.config.removal_delay_seconds
            return self._new_job("delete_contacts", delay, requested, ns)

    def _apply_deletion(self, job: Job) -> None:
        deleted = self._account.delete(job.payload)
        job.status = "completed"
        job.results = {"requested_count": job.requested, "deleted_count": deleted}

    # ----- lists -----------------------------------------------------------------------

    def create_list(self, name: str) -> dict[str, Any]:
        """Create a list (duplicate names are allowed: lists are kept by id).

        Raises:
            ApiError: 400 for a bad name or past 1,000 lists.
        """
        with self._lock:
            return self._account.new_list(name).as_json()

    def get_list(self, list_id: str) -> dict[str, Any]:
        """One list's id, name and contact_count.

        Raises:
            ApiError: 404 for an unknown list.
        """
        with self._lock:
            self.settle()
            return self._account.get_list(list_id).as_json()

    def rename_list(self, list_id: str, name: str) -> dict[str, Any]:
        """Rename a list.

        Raises:
            ApiError: 404 for an unknown list, 400 for a bad name.
        """
        with self._lock:
            self.settle()
            contact_list = self._account.get_list(list_id)
            check_list_name(name)
            contact_list.name = name
            return contact_list.as_json()

    def delete_list(self, list_id: str, *, delete_contacts: bool = False) -> str | None:
        """Delete a list; with ``delete_contacts`` also queue its contacts' deletion (job id).

        Raises:
            ApiError: 404 for an unknown list.
        """
        with self._lock:
            self.settle()
            contact_list = self._account.get_list(list_id)
            del self._account.lists[list_id]
            if not delete_contacts:
                return None
            ns = sorted(contact_list.members)
            return self._new_job("delete_contacts", self.config.removal_delay_seconds, len(ns), ns)

    def lists(self) -> list[dict[str, Any]]:
        """Every list: id, name, member_count (creation order)."""
        with self._lock:
            self.settle()
            return [
                {"id": lst.id, "name": lst.name, "member_count": len(lst.members)}
                for lst in self._account.lists.values()
            ]

    def list_by_name(self, name: str) -> dict[str, Any] | None:
        """The first list (creation order) named ``name``, or None."""
        return next((lst for lst in self.lists() if lst["name"] == name), None)

    def lists_page(self, page_size: int, page_token: str | None) -> tuple[list[dict], str | None]:
        """One page of lists and the token of the next page (None on the last page).

        Raises:
            ApiError: 400 for a token this account did not issue.
        """
        with self._lock:
            self.settle()
            page, token = self._account.page(page_size, page_token)
            return [lst.as_json() for lst in page], token

    def members(self, list_id: str) -> list[dict[str, Any]]:
        """A list's members: contact details (with contact id), ordered by creation.

        Raises:
            ApiError: 404 for an unknown list.
        """
        with self._lock:
            self.settle()
            members = self._account.get_list(list_id).members
            return self._account.all_details(sorted(members))

    def member_emails(self, list_id: str) -> set[str]:
        """The lower-cased emails of a list's members.

        Raises:
            ApiError: 404 for an unknown list.
        """
        with self._lock:
            self.settle()
            by_n = self._account.by_n
            return {by_n[n].email for n in self._account.get_list(list_id).members}  # type: ignore[union-attr]

    def remove_from_list(self, list_id: str, contact_ids: list[str]) -> str:
        """Queue the removal of contacts from a list (membership only); return the job id.

        Raises:
            ApiError: 404 for an unknown list, 400 for a malformed id.
        """
        with self._lock:
            self.settle()
            self._account.get_list(list_id)
            ns = self._account.ids_to_ns(contact_ids, "contact_ids")
            delay = self.config.removal_delay_seconds
            return self._new_job("delete_list_contacts", delay, len(contact_ids), (list_id, ns))

    def _apply_removal(self, job: Job) -> None:
        list_id, ns = job.payload
        contact_list = self._account.lists.get(list_id)
        removed = 0
        if contact_list is not None:
            before = len(contact_list.members)
            contact_list.members.difference_update(ns)
            removed = before - len(contact_list.members)
        job.status = "completed"
        job.results = {"requested_count": job.requested, "deleted_count": removed}

    # ----- jobs and exports ------------------------------------------------------------

    def job(self, job_id: str) -> dict[str, Any]:
        """A job's status as ``GET /v3/marketing/contacts/imports/{id}`` answers it.

        Raises:
            ApiError: 404 for an unknown job.
        """
        with self._lock:
            self.settle()
            job = self._jobs.get(job_id)
            if job is None or job.job_type in self.config.unpollable_jobs:
                raise ApiError(404, "job not found", "id")
            return job_answer(job, self._progress(job), self.storage.sign)

    def _progress(self, job: Job) -> dict[str, int]:
        """Counts a pending upsert shows past half its delay (decide on status, not counts)."""
        halfway = (job.started_at + job.due) / 2
        if job.status != "pending" or job.job_type != "upsert_contacts" or self.clock() < halfway:
            return {}
        counts = {"created_count": 0, "updated_count": 0, "errored_count": 0}
        for email, _ in job.payload[1]:
            if is_rejected(email):
                counts["errored_count"] += 1
            else:
                known = email in self._account.contacts
                counts["updated_count" if known else "created_count"] += 1
        return counts

    def jobs(self) -> list[dict[str, Any]]:
        """Every job's status, oldest first."""
        with self._lock:
            return [self.job(job_id) for job_id in list(self._jobs)]

    def start_export(self, list_ids: list[str], file_type: str) -> str:
        """Queue an export of the lists' members (all contacts without lists); return its id.

        Raises:
            ApiError: 404 for an unknown list.
        """
        with self._lock:
            self.settle()
            for index, list_id in enumerate(list_ids):
                if list_id not in self._account.lists:
                    raise ApiError(404, "list not found", f"list_ids[{index}]")
            now = self.clock()
            due = now + self.config.export_delay_seconds
            export = Export(str(uuid.uuid4()), list_ids, file_type, due, now)
            self._exports[export.id] = export
            self._enqueue(export)
            return export.id

    def _finish_export(self, export: Export, now: float) -> None:
        snapshot = self._account.snapshot(export.list_ids)
        names = self._account.fields.names()
        size = self.export_rows_per_file
        extension = "csv.gz" if export.file_type == "csv" else "json.gz"
        for start in range(0, max(len(snapshot), 1), size):
            body = export_body(
                snapshot[start : start + size], self.contact_id, names, export.file_type
            )
            export.keys.append(self._put_key(body, f"contacts.{extension}"))
        export.status, export.completed_at = "ready", now
        export.contact_count = len(snapshot)

    def export(self, export_id: str) -> dict[str, Any]:
        """An export's status; once ready, with fresh signed ``urls``.

        Raises:
            ApiError: 404 for an unknown export.
        """
        with self._lock:
            self.settle()
            export = self._exports.get(export_id)
            if export is None:
                raise ApiError(404, "export not found", "id")
            return export_answer(export, self.storage.sign)

    def exports(self) -> list[dict[str, Any]]:
        """Every export's status, oldest first."""
        with self._lock:
            return [self.export(export_id) for export_id in list(self._exports)]

    # ----- custom fields and overview --------------------------------------------------

    def field_definitions(self) -> list[dict[str, str]]:
        """The custom field definitions."""
        with self._lock:
            return [f.as_json() for f in self._account.fields.by_id.values()]

    def create_field(self, name: str, field_type: str, *, usable_now: bool = True) -> dict:
        """Create a custom field; its id looks like ``e1_T``.

        Args:
            name: Letters, digits and underscores, not starting with a digit.
            field_type: Text, Number or Date.
            usable_now: False starts the activation delay (as over HTTP); True backdates it,
                as if the field had existed for a while.

        Raises:
            ApiError: 400 for a bad or duplicate name, an unknown type, or past 500 fields.
        """
        with self._lock:
            created = self.clock()
            if usable_now:
                created -= self.config.field_activation_seconds
            return self._account.fields.create(name, field_type, created).as_json()

    def rename_field(self, field_id: str, name: str) -> dict[str, str]:
        """Rename a custom field.

        Raises:
            ApiError: 404 for an unknown field, 400 for a bad or duplicate name.
        """
        with self._lock:
            return self._account.fields.rename(field_id, name).as_json()

    def delete_field(self, field_id: str) -> None:
        """Delete a custom field (values stay stored but are no longer shown).

        Raises:
            ApiError: 404 for an unknown field.
        """
        with self._lock:
            self._account.fields.delete(field_id)

    def summary(self) -> dict[str, Any]:
        """Lists with member counts, contact count, custom fields, jobs and exports by status."""
        with self._lock:
            self.settle()
            return {
                "lists": self.lists(),
                "contact_count": len(self._account.contacts),
                "custom_fields": self.field_definitions(),
                "jobs": count_by_status(self._jobs.values()),
                "exports": count_by_status(self._exports.values()),
            }

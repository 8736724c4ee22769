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

from collections.abc import Iterable
from typing import Any

import msgspec
from msgspec import UNSET

from sandbox.sendgrid.account import check_list_name
from sandbox.sendgrid.files import errors_file
from sandbox.sendgrid.jobs import Job, count_by_status, job_answer
from sandbox.sendgrid.model import (
    REJECT_PREFIX,
    ApiError,
    UpsertContact,
    check_upsert,
    is_rejected,
    is_valid_email,
)
from sandbox.sendgrid.state_core import StateCore

CONTACT_LIMIT_MESSAGE = "you have hit your contact limit"
REJECTED_MESSAGE = "rejected by the sandbox (reject+ address)"


class SendGridState(StateCore):
    """Everything the fake SendGrid account holds; every public method is thread-safe."""

    def _apply(self, job: Job) -> None:
        {
            "upsert_contacts": self._apply_upsert,
            "delete_list_contacts": self._apply_removal,
            "delete_contacts": self._apply_deletion,
        }[job.job_type](job)

    # ----- contacts --------------------------------------------------------------------

    def upsert(self, list_ids: list[str], contacts: list[UpsertContact] | list[dict]) -> str:
        """Check an upsert request as SendGrid does and queue its job; return the job id.

        Args:
            list_ids: The lists to add the contacts to.
            contacts: The request's contacts: structs, or plain JSON objects (then converted).

        Raises:
            ApiError: 400 when the request is refused as a whole.
        """
        structs: list[UpsertContact] = contacts  # type: ignore[assignment]
        if not all(type(c) is UpsertContact for c in contacts):
            structs = msgspec.convert(contacts, list[UpsertContact])
        with self._lock:
            self.settle()
            emails = check_upsert(
                structs,
                list_ids,
                known_lists=self._account.lists,
                fields=self._account.fields.by_id,
                now=self.clock(),
                activation_seconds=self.config.field_activation_seconds,
            )
            payload = (list(dict.fromkeys(list_ids)), emails, structs)
            delay = self.config.import_delay_seconds
            return self._new_job("upsert_contacts", delay, len(emails), payload)

    def _apply_upsert(self, job: Job) -> None:
        account = self._account
        list_ids, emails, contacts = job.payload
        prefix = REJECT_PREFIX
        failed = [(email, REJECTED_MESSAGE) for email in emails if email.startswith(prefix)]
        accepted_emails, accepted = emails, contacts
        if failed:
            pairs = [p for p in zip(emails, contacts, strict=True) if not p[0].startswith(prefix)]
            accepted_emails, accepted = [p[0] for p in pairs], [p[1] for p in pairs]
        new = len(accepted)  # at most; counted exactly only near the limit (a lookup each)
        if len(account.contacts) + new > self.config.contact_limit:
            new -= sum(map(account.contacts.__contains__, accepted_emails))
        results = {"requested_count": job.requested, "created_count": 0, "updated_count": 0}
        if len(account.contacts) + new > self.config.contact_limit:
            job.status, job.message = "failed", CONTACT_LIMIT_MESSAGE
            failed = [(email, CONTACT_LIMIT_MESSAGE) for email in emails]
        else:
            members, created = account.store_many(accepted_emails, accepted, job.due)
            results["created_count"] = created
            results["updated_count"] = len(accepted) - created
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
            values = UpsertContact(
                first_name=UNSET if first_name is None else first_name,
                last_name=UNSET if last_name is None else last_name,
                custom_fields=dict(custom_fields) if custom_fields else UNSET,
            )
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
        if job.progress is None:  # counted once: a client may poll a 30,000-contact job often
            counts = {"created_count": 0, "updated_count": 0, "errored_count": 0}
            for email in job.payload[1]:
                if is_rejected(email):
                    counts["errored_count"] += 1
                else:
                    known = email in self._account.contacts
                    counts["updated_count" if known else "created_count"] += 1
            job.progress = counts
        return job.progress

    def jobs(self) -> list[dict[str, Any]]:
        """Every job's status, oldest first."""
        with self._lock:
            return [self.job(job_id) for job_id in list(self._jobs)]

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

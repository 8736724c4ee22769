"""The data of the fake SendGrid account: contacts, lists, memberships and custom fields.

Not thread-safe on its own: ``SendGridState`` holds the lock and decides when work applies.
Contacts are compact immutable tuples keyed by lower-cased email (an export snapshot keeps
references instead of copies); list memberships are sets of contact sequence numbers; a
contact id is a UUID-shaped string made of a random per-account prefix and that number.
"""

from __future__ import annotations

import base64
import itertools
import secrets
import uuid
from dataclasses import dataclass, field
from typing import Any

from msgspec import UNSET

from sandbox.sendgrid.fields import CustomFields
from sandbox.sendgrid.files import iso
from sandbox.sendgrid.model import MAX_LISTS, ApiError, Contact, UpsertContact


@dataclass
class ContactList:
    """A contact list; ``members`` holds contact sequence numbers."""

    id: str
    name: str
    seq: int
    members: set[int] = field(default_factory=set)

    def as_json(self) -> dict[str, Any]:
        """The list as the lists endpoints answer it."""
        return {"id": self.id, "name": self.name, "contact_count": len(self.members)}


class Account:
    """Contacts, lists and custom fields, with the primitive operations on them."""

    def __init__(self) -> None:
        prefix = secrets.token_hex(10)
        self._id_prefix = f"{prefix[:8]}-{prefix[8:12]}-4{prefix[12:15]}-8{prefix[15:18]}-"
        self.contacts: dict[str, Contact] = {}
        self.by_n: list[Contact | None] = []
        self.lists: dict[str, ContactList] = {}
        self.fields = CustomFields()
        self._list_seq = itertools.count()

    # ----- contacts --------------------------------------------------------------------

    def contact_id(self, n: int) -> str:
        """The public id of contact number ``n``."""
        return f"{self._id_prefix}{n:012x}"

    def contact_n(self, contact_id: str) -> int | None:
        """The number of the existing contact with this id, or None."""
        if len(contact_id) != 36 or not contact_id.startswith(self._id_prefix):
            return None
        try:
            n = int(contact_id[24:], 16)
        except ValueError:
            return None
        return n if n < len(self.by_n) and self.by_n[n] is not None else None

    def ids_to_ns(self, contact_ids: list[str], where: str) -> list[int]:
        """Numbers of the existing contacts among ``contact_ids`` (unknown ids are ignored).

        Raises:
            ApiError: 400 naming ``where[i]`` for something that is not a contact id at all.
        """
        ns = []
        for index, contact_id in enumerate(contact_ids):
            try:
                uuid.UUID(contact_id)
            except ValueError:
                raise ApiError(400, "not a contact id", f"{where}[{index}]") from None
            n = self.contact_n(contact_id)
            if n is not None:
                ns.append(n)
        return ns

    def store(self, email: str, values: UpsertContact, now: float) -> Contact:
        """Create or update the contact ``email`` (lower-cased) from request values.

        Omitted fields keep their values; custom fields merge key by key.
        """
        old = self.contacts.get(email)
        extra = values.extra()
        # the request's own dict: nothing else holds it once the job is applied
        custom = values.custom_fields or None
        first_name, last_name = values.first_name, values.last_name
        if old is None:
            contact = Contact(
                len(self.by_n),
                email,
                None if first_name is UNSET else first_name,
                None if last_name is UNSET else last_name,
                extra,
                custom,
                now,
                now,
            )
            self.by_n.append(contact)
        else:
            if extra and old.extra:
                extra = {**old.extra, **extra}
            if custom and old.custom:
                custom = {**old.custom, **custom}
            contact = Contact(
                old.n,
                email,
                old.first_name if first_name is UNSET else first_name,
                old.last_name if last_name is UNSET else last_name,
                extra or old.extra,
                custom or old.custom,
                old.created_at,
                now,
            )
            self.by_n[old.n] = contact
        self.contacts[email] = contact
        return contact

    def store_many(
        self, emails: list[str], values: list[UpsertContact], now: float
    ) -> tuple[list[int], int]:
        """``store`` each (email, values) pair; return the numbers and how many are new."""
        before = len(self.by_n)
        store = self.store
        ns = [store(email, v, now).n for email, v in zip(emails, values, strict=True)]
        return ns, len(self.by_n) - before

    def delete(self, ns: list[int] | None) -> int:
        """Delete contacts by number (all with None) and their memberships; return how many."""
        if ns is None:
            deleted = len(self.contacts)
            self.contacts.clear()
            self.by_n = [None] * len(self.by_n)
            for contact_list in self.lists.values():
                contact_list.members.clear()
            return deleted
        deleted = 0
        for n in ns:
            contact = self.by_n[n]
            if contact is not None:
                self.by_n[n] = None
                del self.contacts[contact.email]
                deleted += 1
        for contact_list in self.lists.values():
            contact_list.members.difference_update(ns)
        return deleted

    def details(self, contact: Contact, list_ids: list[str] | None = None) -> dict[str, Any]:
        """A contact as search answers it (custom fields by name)."""
        if list_ids is None:
            list_ids = [lst.id for lst in self.lists.values() if contact.n in lst.members]
        details: dict[str, Any] = {"id": self.contact_id(contact.n), "email": contact.email}
        if contact.first_name is not None:
            details["first_name"] = contact.first_name
        if contact.last_name is not None:
            details["last_name"] = contact.last_name
        details.update(contact.extra or {})
        details["list_ids"] = list_ids
        details["segment_ids"] = []
        names = self.fields.names()
        details["custom_fields"] = {
            names[fid]: value for fid, value in (contact.custom or {}).items() if fid in names
        }
        details["created_at"] = iso(contact.created_at)
        details["updated_at"] = iso(contact.updated_at)
        return details

    def all_details(
        self, ns: list[int] | None = None, limit: int | None = None
    ) -> list[dict[str, Any]]:
        """Details of the contacts numbered ``ns`` (all without), in that order, up to ``limit``."""
        chosen = [c for c in (self.by_n if ns is None else map(self.by_n.__getitem__, ns)) if c]
        chosen = chosen[:limit]
        wanted = {c.n for c in chosen}
        lists_of: dict[int, list[str]] = {}
        for contact_list in self.lists.values():
            for n in contact_list.members & wanted:
                lists_of.setdefault(n, []).append(contact_list.id)
        return [self.details(c, lists_of.get(c.n, [])) for c in chosen]

    def snapshot(self, list_ids: list[str]) -> list[Contact]:
        """The members of ``list_ids`` (every contact without lists), by creation."""
        if not list_ids:
            return [c for c in self.by_n if c is not None]
        ns: set[int] = set()
        for list_id in list_ids:
            if list_id in self.lists:
                ns |= self.lists[list_id].members
        return [self.by_n[n] for n in sorted(ns)]  # type: ignore[misc]

    # ----- lists -----------------------------------------------------------------------

    def new_list(self, name: str) -> ContactList:
        """Create a list (duplicate names are allowed: lists are kept by id).

        Raises:
            ApiError: 400 for a bad name or past 1,000 lists.
        """
        check_list_name(name)
        if len(self.lists) >= MAX_LISTS:
            raise ApiError(400, f"an account may have at most {MAX_LISTS} lists", "name")
        contact_list = ContactList(str(uuid.uuid4()), name, next(self._list_seq))
        self.lists[contact_list.id] = contact_list
        return contact_list

    def get_list(self, list_id: str) -> ContactList:
        """The list with this id.

        Raises:
            ApiError: 404 for an unknown list.
        """
        contact_list = self.lists.get(list_id)
        if contact_list is None:
            raise ApiError(404, "list not found", "id")
        return contact_list

    def page(self, page_size: int, page_token: str | None) -> tuple[list[ContactList], str | None]:
        """One page of lists by creation, and the token of the next page (None on the last).

        Raises:
            ApiError: 400 for a token this account did not issue.
        """
        start = 0
        if page_token:
            try:
                kind, _, value = base64.urlsafe_b64decode(page_token).decode().partition(":")
                start = int(value)
            except ValueError:
                kind = ""
            if kind != "lists":
                raise ApiError(400, "invalid page_token", "page_token")
        remaining = [lst for lst in self.lists.values() if lst.seq >= start]
        if len(remaining) <= page_size:
            return remaining, None
        token = base64.urlsafe_b64encode(f"lists:{remaining[page_size].seq}".encode()).decode()
        return remaining[:page_size], token


def check_list_name(name: str) -> None:
    """Refuse a list name SendGrid refuses (1 to 100 characters).

    Raises:
        ApiError: 400 naming the field ``name``.
    """
    if not 1 <= len(name) <= 100:
        raise ApiError(400, "name must be 1 to 100 characters", "name")

"""Sending: every valid contact de-duplicated, compared with its list, pooled, then written.

One :class:`Sender` owns the seen emails, the pools per list and the writer (uploader and list
directory); with ``on_invalid_email: fail`` it holds every batch on disk until the input ends.
"""

from __future__ import annotations

from collections.abc import Iterator
from operator import itemgetter

from target_sendgrid_contacts.custom_fields import CustomFields
from target_sendgrid_contacts.duplicates import SeenEmails
from target_sendgrid_contacts.intake import Batch
from target_sendgrid_contacts.items import Item
from target_sendgrid_contacts.outcomes import Ledger, ListOutcome
from target_sendgrid_contacts.rejects import DUPLICATE_EMAIL, RejectsWriter
from target_sendgrid_contacts.snapshots import ListSnapshots
from target_sendgrid_contacts.spool import Spool
from target_sendgrid_contacts.writers import Sent, Writer

POOL_CAP = 60_000  # contacts waiting across all lists before everything is sent
_CONTACT = itemgetter(1)  # Item.contact


class Sender:
    """Takes batches of valid contacts to SendGrid (through its writer)."""

    def __init__(
        self,
        *,
        ledger: Ledger,
        fields: CustomFields,
        seen: SeenEmails,
        rejects: RejectsWriter,
        snapshots: ListSnapshots,
        writer: Writer,
        request_limit: int,
        compare: bool,
        hold: Spool | None,
    ) -> None:
        """Create the sender.

        Args:
            ledger: The run's counts.
            fields: The run's custom fields.
            seen: Emails seen per list in this run.
            rejects: The rejects file.
            snapshots: The run's list snapshots.
            writer: Writes to SendGrid, or records in a dry run.
            request_limit: Contacts per request at most.
            compare: Mirror mode: contacts equal to the list's are not sent.
            hold: ``on_invalid_email: fail``: the spool batches wait in until the end.
        """
        self.writer = writer
        self.request_limit = request_limit
        self._ledger = ledger
        self._fields = fields
        self._seen = seen
        self._rejects = rejects
        self._snapshots = snapshots
        self._compare = compare
        self._hold = hold
        self._pools: dict[str, Sent] = {}
        self._pooled = 0

    @property
    def holding(self) -> bool:
        """Whether batches wait in the spool (sent only once the input ended without a reject)."""
        return self._hold is not None

    def submit(self, batch: Batch) -> None:
        """Per list: de-duplicate, compare, pool and send full requests (or hold the batch).

        Args:
            batch: Items per list name, in arrival order.
        """
        if self._hold is not None:
            self._hold.add(batch)
            return
        for list_name, items in batch.items():
            self._process(self._ledger.outcomes[list_name], items)

    def release(self) -> Iterator[Batch]:
        """Stop holding; yield every held batch, in order, for the run to submit.

        Yields:
            The held batches (the input ended and nothing stopped the run).
        """
        hold, self._hold = self._hold, None
        if hold is None:
            return
        try:
            yield from hold.batches(self.request_limit)
        finally:
            hold.close()

    def _process(self, outcome: ListOutcome, items: list[Item]) -> None:
        repeats = self._seen.first_seen(outcome.name, items)
        fresh = items
        if repeats:
            fresh = [item for position, item in enumerate(items) if position not in repeats]
        for position, kept in repeats.items():  # in arrival order
            item = items[position]
            outcome.rejected[DUPLICATE_EMAIL] += 1
            self._rejects.write(
                reason=DUPLICATE_EMAIL,
                message=f"same email (ignoring case) as {kept}, which was kept",
                stream=item.stream,
                list_name=outcome.name,
                keys=item.keys,
                record_number=item.record_number,
                values=self._fields.with_names(item.contact),
            )
        if not fresh:
            return
        self._fields.ensure_created()
        if self._fields.mapped_by_id:
            to_send = list(zip(fresh, map(_CONTACT, fresh), strict=True))  # sent as mapped
        else:
            to_send = [(item, self._fields.with_ids(item.contact)) for item in fresh]
        if not self._compare:
            self._pool(outcome, to_send)
            return
        # The list's export is read in the background: contacts wait until it is whole.
        for compared in self._snapshots.compare(outcome, to_send):
            if compared:
                self._pool(outcome, compared)

    def _pool(self, outcome: ListOutcome, to_send: Sent) -> None:
        """Queue contacts per list and send full requests only.

        On a mirror rerun each sink batch has only a few changed contacts; pooling them per
        list sends one request (and one job to wait for) instead of one per sink batch.
        """
        pool = self._pools.setdefault(outcome.name, [])
        pool.extend(to_send)
        self._pooled += len(to_send)
        limit = self.request_limit
        while len(pool) >= limit:
            self.writer.upsert(outcome, pool[:limit])
            del pool[:limit]
            self._pooled -= limit
        if self._pooled > POOL_CAP:
            self.flush()

    def flush(self) -> None:
        """Send every contact still pooled (end of input, before STATE, or too many pooled)."""
        for list_name, pool in self._pools.items():
            if pool:
                self.writer.upsert(self._ledger.outcomes[list_name], pool)
        self._pools.clear()
        self._pooled = 0

    def settle(self) -> None:
        """Compare what waits for a snapshot, send what is pooled, wait for every job."""
        for list_name, to_send in self._snapshots.release_waiting(self._ledger.outcomes):
            if to_send:
                self._pool(self._ledger.outcomes[list_name], to_send)
        self.flush()
        self.writer.settle()

    def give_lists(self, *, mirror: bool) -> None:
        """Give every cohort that arrived its list, even with no valid contact (not in a dry run).

        Lists of streams without cohort fields are created only when a contact is sent.

        Args:
            mirror: ``sync_mode`` is mirror (a created list's snapshot is empty).
        """
        directory = self.writer.directory
        for list_name, outcome in self._ledger.outcomes.items():
            outcome.list_id = outcome.list_id or directory.find(list_name)
            if (
                outcome.list_id is None
                and outcome.cohort_ids
                and list_name not in self._ledger.non_cohort_lists
                and self.writer.give_list(outcome)
                and mirror
            ):
                self._snapshots.start_empty(list_name)

    def close(self) -> None:
        """Stop the writer and release the files (safe to call twice)."""
        self.writer.close()
        if self._hold is not None:
            self._hold.close()
            self._hold = None
        self._seen.close()

"""Intake: one object per stream takes its records in (naming, mapping, counting).

Sinks only forward records, batch ends and BATCH files here. A contact stream's intake names
each record's list, maps it, counts it, rejects what has no valid email, and queues the rest
until the sink's batch ends; then the whole batch goes to the run.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from target_sendgrid_contacts.cohort_tracker import CohortTracker
from target_sendgrid_contacts.custom_fields import CustomFields
from target_sendgrid_contacts.items import Item
from target_sendgrid_contacts.list_names import ListNamer
from target_sendgrid_contacts.mapping import ContactMapper, Mapped
from target_sendgrid_contacts.outcomes import Ledger, ListOutcome
from target_sendgrid_contacts.rejects import RejectsWriter
from target_sendgrid_contacts.settings import Settings

LOGGER = logging.getLogger("target_sendgrid_contacts")

COHORT_MEMBERS_STREAM = "cohort_members"
COHORT_SYNCS_STREAM = "cohort_syncs"
IGNORED_STREAMS = frozenset({"cohorts"})

Batch = dict[str, list[Item]]  # valid contacts per list name, in arrival order
TakeFiles = Callable[[str, object, object], None]
# Item(...) runs the NamedTuple's Python-level __new__; the tuple's own is a third the cost.
_new_tuple = tuple.__new__


def key_reader(names: tuple[str, ...]) -> Callable[[Mapping], dict]:
    """A function giving a record's key properties (None when absent), in ``names`` order.

    Args:
        names: The stream's key properties.

    Returns:
        The reader: a dict display for up to two keys (half the cost of a comprehension).
    """
    if not names:
        return lambda _record: {}
    if len(names) == 1:
        (only,) = names
        return lambda record: {only: record.get(only)}
    if len(names) == 2:  # cohort_members: cohort_id, amplitude_id
        first, second = names
        return lambda record: {first: record.get(first), second: record.get(second)}
    return lambda record: {name: record.get(name) for name in names}


class InvalidEmailStop(Exception):
    """``on_invalid_email: fail`` met a missing or invalid email: nothing was written."""


class Intake(Protocol):
    """What a sink forwards to."""

    def take(self, record: dict) -> None:
        """Take one record in."""

    def end_batch(self) -> None:
        """The sink's batch ended."""

    def take_files(self, encoding: object, files: Sequence[str]) -> None:
        """Take a BATCH's files in, record by record, as RECORD messages of the stream."""


class RunHooks(Protocol):
    """What an intake hands to the run."""

    def submit(self, batch: Batch) -> None:
        """Process a batch of valid contacts."""

    def progress(self) -> None:
        """Log progress when due."""

    def fail(self, exc: BaseException) -> None:
        """Report a failure."""


class _Files:
    """BATCH files of one stream go to the target's RECORD path (mapped, checked, counted)."""

    def __init__(self, stream: str, take_files: TakeFiles) -> None:
        self._stream = stream
        self._take_files = take_files

    def take_files(self, encoding: object, files: Sequence[str]) -> None:
        """Feed the files' records in as RECORD messages of this stream; remove the files.

        Args:
            encoding: The SDK's batch encoding.
            files: The manifest.
        """
        self._take_files(
            self._stream,
            {  # the SDK's BaseBatchFileEncoding (a private module: not imported)
                "format": getattr(encoding, "format", None),
                "compression": getattr(encoding, "compression", None),
            },
            list(files),
        )


class ContactIntake(_Files):
    """Takes in the records of one contact stream."""

    def __init__(
        self,
        stream: str,
        *,
        namer: ListNamer,
        mapper: ContactMapper,
        key_properties: Sequence[str] | None,
        has_cohort: bool,
        ledger: Ledger,
        tracker: CohortTracker,
        rejects: RejectsWriter,
        stop_on_invalid: bool,
        run: RunHooks,
        take_files: TakeFiles,
    ) -> None:
        """Create the intake of one stream.

        Args:
            stream: Stream name.
            namer: Names each record's list.
            mapper: Maps a record to a contact.
            key_properties: Key properties of the stream.
            has_cohort: The stream's records carry ``cohort_id``.
            ledger: The run's counts.
            tracker: The run's cohort tracking.
            rejects: The rejects file.
            stop_on_invalid: ``on_invalid_email`` is ``fail``.
            run: Where batches go.
            take_files: The target's BATCH intake.
        """
        super().__init__(stream, take_files)
        self.stream = stream
        self._namer = namer
        self._mapper = mapper
        self._keys_of = key_reader(tuple(key_properties or ()))
        self._has_cohort = has_cohort
        self._ledger = ledger
        self._tracker = tracker
        self._rejects = rejects
        self._stop_on_invalid = stop_on_invalid
        self._run = run
        self._record_number = 0
        # Queued contacts live here, not in the SDK's batch context: the SDK logs the context
        # at DEBUG after every record, which would print the whole batch each time.
        self._queued: Batch = {}
        self._last: tuple[str, str | None] = ("", None)
        self._last_raw: tuple = (None, None, None, None)  # cohort_id, cohort_name, their types
        self._last_outcome: ListOutcome | None = None

    def take(self, record: dict) -> None:
        """Map one record: reject it now, or queue its contact for its list.

        Args:
            record: The record.
        """
        self._record_number += 1
        raw_id = record.get("cohort_id") if self._has_cohort else None
        raw_name = record.get("cohort_name")
        outcome = self._last_outcome
        seen = self._last_raw
        # A cohort's members come one after another: the same raw fields (same types, as
        # 1 == 1.0 == True name different lists) mean the same list, cohort and counts.
        if (
            outcome is not None
            and raw_id == seen[0]
            and raw_name == seen[1]
            and type(raw_id) is seen[2]
            and type(raw_name) is seen[3]
        ):
            list_name, cohort_id = self._last
        else:
            cohort_id = None if raw_id is None else str(raw_id)
            list_name = self._namer.name_for(cohort_id, raw_name)
            if outcome is None or self._last != (list_name, cohort_id):
                outcome = self._ledger.fed_by(list_name, self.stream, cohort_id)
                self._last_outcome = outcome
                if cohort_id is not None:
                    self._tracker.fed(cohort_id, list_name)
                self._last = (list_name, cohort_id)
            self._last_raw = (raw_id, raw_name, type(raw_id), type(raw_name))
        if cohort_id is not None:
            self._tracker.records[cohort_id] += 1
        outcome.received += 1
        keys = self._keys_of(record)
        contact = self._mapper.map_contact(record, outcome.truncated, outcome.unconvertible)
        if isinstance(contact, Mapped):
            self._reject(outcome, contact, keys, self._mapper.raw_values(record))
        else:
            queue = self._queued.get(list_name)
            if queue is None:
                queue = self._queued[list_name] = []
            fields = (contact["email"], contact, self.stream, self._record_number, keys)
            queue.append(_new_tuple(Item, fields))
        self._ledger.records_read += 1
        if self._ledger.records_read & 0x3FF == 0:
            self._run.progress()

    def _reject(self, outcome: ListOutcome, mapped: Mapped, keys: dict, values: dict) -> None:
        reason = mapped.reason or "invalid_email"
        outcome.rejected[reason] += 1
        self._rejects.write(
            reason=reason,
            message=mapped.message,
            stream=self.stream,
            list_name=outcome.name,
            keys=keys,
            record_number=self._record_number,
            values=values,
        )
        if self._stop_on_invalid:
            stop = InvalidEmailStop(
                f"{self.stream} record #{self._record_number} was rejected ({reason}: "
                f"{mapped.message}); on_invalid_email is 'fail', so the run stops and nothing "
                "was written to SendGrid."
            )
            self._run.fail(stop)
            raise stop

    def end_batch(self) -> None:
        """Hand the batch's valid contacts (per list) to the run."""
        queued, self._queued = self._queued, {}
        if queued:
            self._run.submit(queued)


class CohortSyncsIntake(_Files):
    """Takes in the tap's completeness signal (``cohort_syncs``)."""

    def __init__(self, stream: str, tracker: CohortTracker, take_files: TakeFiles) -> None:
        """Create the intake.

        Args:
            stream: Stream name.
            tracker: The run's cohort tracking.
            take_files: The target's BATCH intake.
        """
        super().__init__(stream, take_files)
        self._tracker = tracker

    def take(self, record: dict) -> None:
        """Note one cohort's sync status.

        Args:
            record: The ``cohort_syncs`` record.
        """
        self._tracker.synced(record)

    def end_batch(self) -> None:
        """Nothing is queued."""


class IgnoredIntake(_Files):
    """A stream that carries no contacts (the tap's ``cohorts`` metadata)."""

    def take(self, record: dict) -> None:
        """Ignore the record.

        Args:
            record: Unused.
        """

    def end_batch(self) -> None:
        """Nothing is queued."""


class Intakes:
    """Builds each stream's intake from the settings."""

    def __init__(
        self,
        settings: Settings,
        *,
        fields: CustomFields,
        ledger: Ledger,
        tracker: CohortTracker,
        rejects: RejectsWriter,
    ) -> None:
        """Keep what every intake shares.

        Args:
            settings: The checked settings.
            fields: The run's custom fields.
            ledger: The run's counts.
            tracker: The run's cohort tracking.
            rejects: The rejects file.
        """
        self._settings = settings
        self._fields = fields
        self._ledger = ledger
        self._tracker = tracker
        self._rejects = rejects

    def for_stream(
        self,
        stream: str,
        schema: Mapping,
        key_properties: Sequence[str] | None,
        *,
        run: RunHooks,
        take_files: TakeFiles,
    ) -> Intake:
        """Create the intake of a stream.

        Args:
            stream: Stream name.
            schema: Stream schema.
            key_properties: Key properties.
            run: Where batches go.
            take_files: The target's BATCH intake.

        Returns:
            The completeness signal's, an ignoring one, or a contact stream's intake.
        """
        if stream == COHORT_SYNCS_STREAM:
            return CohortSyncsIntake(stream, self._tracker, take_files)
        if stream in IGNORED_STREAMS:
            LOGGER.info("Stream %r carries no contacts: ignored", stream)
            return IgnoredIntake(stream, take_files)
        settings = self._settings
        has_cohort = "cohort_id" in (schema.get("properties") or {})
        namer = ListNamer(
            list_name=settings.list_name,
            template=settings.list_name_template,
            stream=stream,
            has_cohort_fields=has_cohort,
        )
        if namer.falls_back_to_stream:
            LOGGER.warning(
                "Stream %r has no cohort fields and list_name is not set: its records go to a "
                "list named %r",
                stream,
                stream,
            )
        mapper = self._fields.keyed_for(
            ContactMapper(
                email_field=settings.email_field,
                first_name_field=settings.first_name_field,
                last_name_field=settings.last_name_field,
                custom_fields=self._fields.specs_for(schema),
            )
        )
        return ContactIntake(
            stream,
            namer=namer,
            mapper=mapper,
            key_properties=key_properties,
            has_cohort=has_cohort,
            ledger=self._ledger,
            tracker=self._tracker,
            rejects=self._rejects,
            stop_on_invalid=settings.on_invalid_email == "fail",
            run=run,
            take_files=take_files,
        )

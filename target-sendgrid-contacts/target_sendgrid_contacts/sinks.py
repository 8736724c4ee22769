"""Sinks: contact streams, the completeness signal, and streams that are not contacts."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from singer_sdk.sinks import BatchSink, RecordSink

from target_sendgrid_contacts.items import Item
from target_sendgrid_contacts.list_names import ListNamer
from target_sendgrid_contacts.mapping import ContactMapper
from target_sendgrid_contacts.outcomes import ListOutcome
from target_sendgrid_contacts.run import SyncRun

if TYPE_CHECKING:
    from singer_sdk import Target


class BatchFilesAsRecords:
    """The SDK's BATCH hook for our sinks: the files' records take the RECORD path.

    The SDK's default reads a file into one batch context, which our sinks would ignore
    (acknowledged and dropped); the target's intake maps, checks and counts each record.
    """

    def __init__(
        self,
        target: Target,
        stream_name: str,
        schema: dict,
        key_properties: Sequence[str] | None,
    ) -> None:
        """Keep the target's BATCH intake, then set the sink up.

        Args:
            target: The target.
            stream_name: Stream name.
            schema: Stream schema.
            key_properties: Key properties.
        """
        take_in: Callable[[str, object, object], None]
        take_in = target.take_in_batch  # type: ignore[attr-defined]
        self._take_in_batch = take_in
        super().__init__(target, stream_name, schema, key_properties)  # type: ignore[call-arg]

    def process_batch_files(self, encoding: object, files: Sequence[str]) -> None:
        """Take the files' records in as RECORD messages of this stream; remove the files.

        Args:
            encoding: The batch encoding.
            files: The manifest.
        """
        self._take_in_batch(
            self.stream_name,  # type: ignore[attr-defined]
            {  # the SDK's BaseBatchFileEncoding (a private module: not imported)
                "format": getattr(encoding, "format", None),
                "compression": getattr(encoding, "compression", None),
            },
            list(files),
        )


class ContactsSink(BatchFilesAsRecords, BatchSink):
    """Maps each record to a contact (or a rejection) and hands batches to the run."""

    def __init__(
        self,
        target: Target,
        stream_name: str,
        schema: dict,
        key_properties: Sequence[str] | None,
    ) -> None:
        """Create the sink for one stream.

        Args:
            target: The target (holds the run).
            stream_name: Stream name.
            schema: Stream schema.
            key_properties: Key properties of the stream.
        """
        self._run: SyncRun = target.run  # type: ignore[attr-defined]
        super().__init__(target, stream_name, schema, key_properties)
        target.contact_sinks.append(self)  # type: ignore[attr-defined]
        settings = self._run.settings
        properties = schema.get("properties") or {}
        self._has_cohort = "cohort_id" in properties
        self._namer = ListNamer(
            list_name=settings.list_name,
            template=settings.list_name_template,
            stream=stream_name,
            has_cohort_fields=self._has_cohort,
        )
        if self._namer.falls_back_to_stream:
            self.logger.warning(
                "Stream %r has no cohort fields and list_name is not set: its records go to a "
                "list named %r", stream_name, stream_name,
            )
        specs = self._run.require_fields().specs_for(schema)
        self._mapper = ContactMapper(
            email_field=settings.email_field,
            first_name_field=settings.first_name_field,
            last_name_field=settings.last_name_field,
            custom_fields=specs,
        )
        self._keys = tuple(key_properties or ())
        self._record_number = 0
        # Queued contacts live here, not in the batch context: the SDK logs the context at
        # DEBUG after every record, which would print the whole batch each time.
        self._queued: dict[str, list[Item]] = {}
        self._last_list: str | None = None
        self._last_cohort: str | None = None
        self._last_outcome: ListOutcome | None = None

    @property
    def validate_schema(self) -> bool:  # type: ignore[override]
        """Per-record JSON-schema validation is off: our own checks cover what matters."""
        return False

    def process_record(self, record: dict, context: dict) -> None:
        """Map one record: reject it now, or queue its contact for its list.

        Args:
            record: The record.
            context: The batch context (unused: contacts are queued on the sink).
        """
        self._record_number += 1
        run = self._run
        cohort_id = None
        if self._has_cohort:
            raw_id = record.get("cohort_id")
            if raw_id is not None:
                cohort_id = str(raw_id)
                run.cohort_records[cohort_id] += 1
        list_name = self._namer.name_for(cohort_id, record.get("cohort_name"))
        if list_name is not self._last_list or cohort_id != self._last_cohort:
            self._last_outcome = run.outcome(list_name, self.stream_name, cohort_id)
            self._last_list, self._last_cohort = list_name, cohort_id
        outcome = self._last_outcome
        outcome.received += 1
        keys = {k: record.get(k) for k in self._keys}
        mapped = self._mapper.map(record, outcome.truncated, outcome.unconvertible)
        if mapped.email is None or mapped.contact is None:
            values = self._mapper.raw_values(record)
            run.reject_record(
                outcome, mapped, stream=self.stream_name, record_number=self._record_number,
                keys=keys, values=values,
            )
        else:
            queued = self._queued.get(list_name)
            if queued is None:
                queued = self._queued[list_name] = []
            queued.append(
                Item(mapped.email, mapped.contact, self.stream_name, self._record_number, keys)
            )
        run.records_read += 1
        if run.records_read & 0x3FF == 0:
            run.progress()

    def process_batch(self, context: dict) -> None:
        """Send the batch's contacts (per list) and wait for SendGrid's jobs.

        Args:
            context: The batch context.
        """
        queued, self._queued = self._queued, {}
        if queued:
            self._run.submit(queued)


class CohortSyncsSink(BatchFilesAsRecords, RecordSink):
    """Takes in the tap's completeness signal (``cohort_syncs``)."""

    @property
    def validate_schema(self) -> bool:  # type: ignore[override]
        """No per-record JSON-schema validation."""
        return False

    def process_record(self, record: dict, context: dict) -> None:
        """Note one cohort's sync status.

        Args:
            record: The ``cohort_syncs`` record.
            context: Unused.
        """
        self._target_run.cohort_synced(record)

    def __init__(
        self,
        target: Target,
        stream_name: str,
        schema: dict,
        key_properties: Sequence[str] | None,
    ) -> None:
        """Create the sink.

        Args:
            target: The target (holds the run).
            stream_name: Stream name.
            schema: Stream schema.
            key_properties: Key properties.
        """
        self._target_run: SyncRun = target.run  # type: ignore[attr-defined]
        super().__init__(target, stream_name, schema, key_properties)


class IgnoredSink(BatchFilesAsRecords, RecordSink):
    """A stream that carries no contacts (the tap's ``cohorts`` metadata)."""

    @property
    def validate_schema(self) -> bool:  # type: ignore[override]
        """No per-record JSON-schema validation."""
        return False

    def setup(self) -> None:
        """Say once that the stream is ignored."""
        self.logger.info("Stream %r carries no contacts: ignored", self.stream_name)

    def process_record(self, record: dict, context: dict) -> None:
        """Ignore the record.

        Args:
            record: Unused.
            context: Unused.
        """

"""Sinks: each forwards its stream's records, batch ends and BATCH files to the stream's intake."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol, runtime_checkable

from singer_sdk import Target
from singer_sdk.sinks import BatchSink, RecordSink, Sink
from singer_sdk.sinks.core import BaseJSONSchemaValidator

from target_sendgrid_contacts.intake import Intake


@runtime_checkable
class IntakeSource(Protocol):
    """A target that hands each stream its intake."""

    def intake_for(
        self, stream_name: str, schema: Mapping, key_properties: Sequence[str] | None
    ) -> Intake:
        """The stream's intake."""


class ForwardingSink(Sink):
    """The one sink base: no per-record JSON-schema validation (the intake checks what matters).

    The SDK's BATCH default reads a file into one batch context, which would be acknowledged
    and dropped; here the files' records take the RECORD path instead.
    """

    def __init__(
        self,
        target: Target,
        stream_name: str,
        schema: dict,
        key_properties: Sequence[str] | None,
    ) -> None:
        """Create the sink and get its stream's intake from the target.

        Args:
            target: The target (an :class:`IntakeSource`).
            stream_name: Stream name.
            schema: Stream schema.
            key_properties: Key properties.

        Raises:
            TypeError: The target hands out no intakes.
        """
        super().__init__(target, stream_name, schema, key_properties)
        if not isinstance(target, IntakeSource):
            msg = "these sinks need a target that hands out intakes"
            raise TypeError(msg)
        self.intake = target.intake_for(stream_name, schema, key_properties)

    def get_validator(self) -> BaseJSONSchemaValidator | None:
        """No per-record JSON-schema validation: the intake's own checks cover what matters.

        Returns:
            None.
        """
        return None

    def process_record(self, record: dict, context: dict) -> None:
        """Forward one record.

        Args:
            record: The record.
            context: Unused (contacts are queued in the intake).
        """
        self.intake.take(record)

    def process_batch_files(self, encoding: object, files: Sequence[str]) -> None:
        """Forward a BATCH's files (their records take the RECORD path; the files are removed).

        Args:
            encoding: The batch encoding.
            files: The manifest.
        """
        self.intake.take_files(encoding, files)


class ContactsSink(ForwardingSink, BatchSink):
    """A contact stream: records are queued by the intake and sent when the batch drains."""

    def process_batch(self, context: dict) -> None:
        """Hand the batch's contacts to the run.

        Args:
            context: Unused.
        """
        self.intake.end_batch()


class SignalSink(ForwardingSink, RecordSink):
    """A stream that is taken in record by record (``cohort_syncs``, ignored metadata)."""

"""TargetSendGridContacts: settings, the key check before any input, and the sink per stream."""

from __future__ import annotations

import atexit
import copy
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, ClassVar

import requests
from singer_sdk import Target
from singer_sdk.exceptions import ConfigValidationError
from singer_sdk.helpers.capabilities import PluginCapabilities

from target_sendgrid_contacts.assembly import start_run
from target_sendgrid_contacts.batch_files import (
    BatchFileError,
    BatchFiles,
    check_encoding,
    check_present,
    local_paths,
    read_records,
)
from target_sendgrid_contacts.bulk_records import bulk_sink, take_records
from target_sendgrid_contacts.input_reader import PrivateMsgSpecReader
from target_sendgrid_contacts.intake import COHORT_SYNCS_STREAM, IGNORED_STREAMS, Intake
from target_sendgrid_contacts.interruption import (
    IDLE,
    exit_code,
    restore_default_handlers,
    signal_name,
)
from target_sendgrid_contacts.run import SyncRun
from target_sendgrid_contacts.sendgrid.client import SendGridClient
from target_sendgrid_contacts.sendgrid.errors import SendGridError
from target_sendgrid_contacts.settings import CONFIG_SCHEMA, settings_from_config
from target_sendgrid_contacts.sinks import ContactsSink, SignalSink

if TYPE_CHECKING:
    from pathlib import PurePath
    from types import FrameType

    from singer_sdk.helpers.capabilities import CapabilitiesEnum
    from singer_sdk.sinks import Sink


class TargetSendGridContacts(Target):
    """Keeps SendGrid Marketing contact lists in step with the records it receives."""

    name = "target-sendgrid-contacts"
    message_reader_class = PrivateMsgSpecReader  # errors name the line, never its content
    default_sink_class = ContactsSink
    # No VALIDATE_RECORDS: per-record JSON-schema validation is always off (our checks suffice).
    capabilities: ClassVar[list[CapabilitiesEnum]] = [
        PluginCapabilities.ABOUT,
        PluginCapabilities.STREAM_MAPS,
        PluginCapabilities.FLATTENING,
        PluginCapabilities.STRUCTURED_LOGGING,
    ]

    config_jsonschema = copy.deepcopy(CONFIG_SCHEMA)  # the SDK adds its own settings to it

    def __init__(
        self,
        *,
        config: dict | PurePath | str | list[PurePath | str] | None = None,
        parse_env_config: bool = False,
        validate_config: bool = True,
        setup_mapper: bool = True,
        message_reader: PrivateMsgSpecReader | None = None,
        session: requests.Session | None = None,
    ) -> None:
        """Read the settings and check the key with a real call, before any input.

        Args:
            config: Config dict or file path(s).
            parse_env_config: Read settings from the environment too.
            validate_config: Validate the config against the JSON schema.
            setup_mapper: Set up stream maps.
            message_reader: Message reader (the msgspec reader by default).
            session: HTTP session (tests pass one; a new one otherwise).

        Raises:
            ConfigValidationError: A setting is wrong, or SendGrid refused the key.
        """
        super().__init__(
            config=config,
            parse_env_config=parse_env_config,
            validate_config=validate_config,
            setup_mapper=setup_mapper,
            message_reader=message_reader,
        )
        # One drain at a time: every sink shares the run's lists, counts and files.
        self.max_parallelism = 1
        try:
            settings = settings_from_config(self.config)
        except ValueError as exc:
            raise ConfigValidationError(str(exc), errors=[str(exc)]) from exc
        client = SendGridClient(session or requests.Session(), settings.base_url, settings.api_key)
        try:
            self.run = start_run(settings, client)
        except (SendGridError, ValueError) as exc:
            raise ConfigValidationError(str(exc), errors=[str(exc)]) from exc
        self.batch_files = BatchFiles()
        atexit.register(self.batch_files.remove_left)  # also when a signal or failure ends it
        self._reader.on_failure = self._on_failure

    def _on_failure(self, exc: BaseException) -> None:
        self.run.fail(exc)
        removed = self.batch_files.remove_left()
        if removed:
            self.logger.info("Removed %d batch files the stopped run had not read", removed)

    def _process_batch_message(self, message_dict: dict) -> None:
        """Take in a BATCH message's records exactly as if they had come as RECORD messages.

        Each record goes through the SDK's record intake (stream maps, key checks, our sinks),
        or, for a stream without stream maps, through the same steps in one loop per file
        (``bulk_records.py``), so mapping, validation, counts, the completeness signal and
        STATE order are the same.
        Each file is removed once all its records are taken in.

        Args:
            message_dict: The BATCH message.

        Raises:
            InputLineError: The encoding is not jsonl, a file is missing or unreadable.
        """
        self._assert_line_requires(message_dict, requires={"stream", "encoding", "manifest"})
        self.take_in_batch(
            message_dict["stream"], message_dict["encoding"], message_dict["manifest"]
        )

    def take_in_batch(self, stream: str, encoding: object, manifest: object) -> None:
        """Feed a BATCH's files, record by record, to the RECORD intake; remove each once read.

        Args:
            stream: The stream the records belong to (as in their RECORD messages).
            encoding: ``{"format": "jsonl", "compression": "gzip" | None}``.
            manifest: The files (``file://`` URLs).

        Raises:
            InputLineError: The encoding is not jsonl, a file is missing or unreadable.
        """
        try:
            compression = check_encoding(encoding)
            paths = local_paths(manifest)
            self.batch_files.hand([p for p in paths if p.is_file()])
            check_present(paths)
            taken = 0
            for path in paths:
                records = read_records(path, compression)
                # Asked per file: a drain between files may archive or replace the sink.
                sink = bulk_sink(self, stream)
                if sink is not None:
                    taken += take_records(self, sink, records)
                else:
                    for record in records:
                        self._process_record_message(
                            {"type": "RECORD", "stream": stream, "record": record}
                        )
                        taken += 1
                self.batch_files.done(path)
        except BatchFileError as exc:
            raise self._reader.error(
                f"BATCH message: {exc}; the run stops and STATE is not written"
            ) from None
        self.batch_files.records_read += taken
        self.logger.info(
            "BATCH of stream %r: %d records from %d files taken in; the files are removed",
            stream,
            taken,
            len(paths),
        )

    def get_sink_class(self, stream_name: str) -> type[Sink]:
        """Pick the sink: completeness signal, ignored metadata, or contacts.

        Args:
            stream_name: Stream name.

        Returns:
            The sink class.
        """
        if stream_name == COHORT_SYNCS_STREAM or stream_name in IGNORED_STREAMS:
            return SignalSink
        return ContactsSink

    def intake_for(
        self, stream_name: str, schema: Mapping, key_properties: Sequence[str] | None
    ) -> Intake:
        """The intake a stream's sink forwards to (BATCH files come back to this target).

        Args:
            stream_name: Stream name.
            schema: Stream schema.
            key_properties: Key properties.

        Returns:
            The intake.
        """
        return self.run.intake_for(stream_name, schema, key_properties, self.take_in_batch)

    def _process_activate_version_message(self, message_dict: dict) -> None:
        """Stop: ACTIVATE_VERSION is not handled, and ignoring it would drop what it asks.

        Args:
            message_dict: The message.

        Raises:
            InputLineError: Always.
        """
        raise self._reader.error(
            "ACTIVATE_VERSION is not supported by this target (the list follows its cohort "
            "through cohort_syncs instead); the run stops and STATE is not written"
        )

    @property
    def _reader(self) -> PrivateMsgSpecReader:
        reader = self.message_reader
        if not isinstance(reader, PrivateMsgSpecReader):
            msg = "the target needs its PrivateMsgSpecReader"
            raise TypeError(msg)
        return reader

    def process_endofpipe(self) -> None:
        """Finish every upsert, then mirror and report, and only then let STATE out.

        Every intake hands over its last batch first (STATE is not written by that), the run
        then removes leavers and writes the report; if that raises, the SDK's final drain
        never writes STATE.
        """
        self.run.finish()  # every intake's last batch first
        super().process_endofpipe()

    def _handle_termination(self, signum: int, frame: FrameType | None) -> None:
        """Stop at once on SIGTERM/SIGINT: write no STATE, say what was cut, exit 128+N.

        Replaces the SDK's handler, which drains every sink, writes STATE and exits 0: that
        would report success, and could let STATE out before SendGrid holds the contacts.
        Contacts already upserted stay; the rerun (from the last STATE) sends the rest.

        Args:
            signum: Signal number.
            frame: Unused.

        Raises:
            SystemExit: Always, with 128 + the signal number.
        """
        restore_default_handlers()
        name, code = signal_name(signum), exit_code(signum)
        run: SyncRun | None = getattr(self, "run", None)  # None during the key check
        activity = run.activity.now if run is not None else "checking the SendGrid key"
        if activity == IDLE:
            reader = self._reader
            stream = f", stream {reader.stream!r}" if reader.stream else ""
            activity = f"reading input (at line {reader.line_number}{stream})"
        line = f"Interrupted by {name} while {activity}: STATE not written; exit {code}"
        if run is not None:
            run.interrupt(line)
        self.logger.error("%s", line)
        raise SystemExit(code)

    def _write_state_message(self, state: dict) -> None:
        """Write STATE once SendGrid holds every contact received, marking unconverged cohorts.

        Each cohort whose list is not brought to the cohort is marked ``pending`` (or ``held``)
        in the STATE written (see ``bookmarks.py``).

        Why here: the SDK's drain_all (also run mid-stream when records grow old, or on a
        termination signal) drains the sinks and then calls this, but the run pools contacts
        across batches and, with ``on_invalid_email: fail``, spools them until the end. A STATE
        ahead of SendGrid would make an incremental tap skip contacts we never sent.

        Args:
            state: The latest STATE value.
        """
        if self.run.settle_before_state():
            super()._write_state_message(self.run.state_to_emit(state))

    def _process_state_message(self, message_dict: dict) -> None:
        """Keep the latest STATE as the SDK does, noting the tap's pending/held markers.

        Args:
            message_dict: The STATE message.
        """
        super()._process_state_message(message_dict)
        value = message_dict.get("value")
        if isinstance(value, dict):
            self.run.note_state(value)

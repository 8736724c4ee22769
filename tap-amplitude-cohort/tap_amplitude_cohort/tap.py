"""TapAmplitudeCohort: stream discovery, signal handling and the end-of-run verdict."""

from __future__ import annotations

import json
import sys
from functools import cached_property
from typing import IO, TYPE_CHECKING, Any, ClassVar

import requests
from singer_sdk import Stream, Tap
from singer_sdk.exceptions import ConfigValidationError
from singer_sdk.helpers.capabilities import PluginCapabilities, TapCapabilities

from tap_amplitude_cohort.amplitude.client import AmplitudeClient
from tap_amplitude_cohort.cohort_members import CohortMembersStream
from tap_amplitude_cohort.directory import CohortDirectory
from tap_amplitude_cohort.fastpath import RecordBufferedWriter
from tap_amplitude_cohort.interruption import (
    Activity,
    exit_code,
    restore_default_handlers,
    signal_name,
)
from tap_amplitude_cohort.ledger import SyncLedger
from tap_amplitude_cohort.settings import CONFIG_SCHEMA, TapSettings, resolve_api_url
from tap_amplitude_cohort.streams import CohortsStream, CohortSyncsStream

if TYPE_CHECKING:
    from types import FrameType

    from singer_sdk.helpers.capabilities import CapabilitiesEnum

STREAM_ORDER = ("cohorts", "cohort_members", "cohort_syncs")  # the contract's order
USER_AGENT = "tap-amplitude-cohort/0.1 (+singer-sdk)"


class TapAmplitudeCohort(Tap):
    """Singer tap for Amplitude behavioral cohorts and their members."""

    name = "tap-amplitude-cohort"
    message_writer_class = RecordBufferedWriter  # msgspec, flushed at STATE/SCHEMA, not per record
    # As declared in meltano.yml. BATCH: cohort_members only (cohort_syncs stays RECORD).
    capabilities: ClassVar[list[CapabilitiesEnum]] = [
        PluginCapabilities.BATCH,
        TapCapabilities.CATALOG,
        TapCapabilities.STATE,
        TapCapabilities.DISCOVER,
        PluginCapabilities.ABOUT,
        PluginCapabilities.STREAM_MAPS,
        PluginCapabilities.FLATTENING,
        PluginCapabilities.STRUCTURED_LOGGING,
    ]

    config_jsonschema = CONFIG_SCHEMA  # names, types, defaults and bounds: settings.py

    def __init__(self, *, validate_config: bool = True, **kwargs: Any) -> None:
        # The ledger must exist before the SDK discovers streams inside super().__init__.
        self.ledger = SyncLedger()
        self.activity = Activity()
        super().__init__(validate_config=validate_config, **kwargs)
        if validate_config:
            self._base_url()

    @cached_property
    def settings(self) -> TapSettings:
        """The settings, read once from the config (which the SDK filled with defaults)."""
        return TapSettings.from_config(self.config)

    def _base_url(self) -> str:
        try:
            return self.settings.base_url
        except ValueError as exc:
            raise ConfigValidationError(str(exc), errors=[str(exc)]) from exc

    @cached_property
    def amplitude(self) -> AmplitudeClient:
        """The Amplitude client (built on first use: discovery needs no network)."""
        session = requests.Session()
        session.headers["User-Agent"] = USER_AGENT
        return AmplitudeClient(
            session, self._base_url(), self.settings.api_key, self.settings.secret_key
        )

    def discover_streams(self) -> list[Stream]:
        """Return the three streams, wired to one shared cohort list and ledger."""
        directory = CohortDirectory(lambda: self.amplitude)
        syncs: CohortSyncsStream | None = None
        members = CohortMembersStream(
            self,
            settings=self.settings,
            activity=self.activity,
            directory=directory,
            ledger=self.ledger,
            client=lambda: self.amplitude,
            # Without cohort_syncs there is no signal to wait for: bookmark right away.
            bookmarks_deferred=lambda: syncs is not None and syncs.selected,
        )
        syncs = CohortSyncsStream(self, ledger=self.ledger, members=members, activity=self.activity)
        return [CohortsStream(self, directory=directory), members, syncs]

    @property
    def streams(self) -> dict[str, Stream]:
        """The streams in the contract's order (the SDK sorts them by name)."""
        streams = super().streams
        ordered = {name: streams[name] for name in STREAM_ORDER if name in streams}
        return ordered | {n: s for n, s in streams.items() if n not in ordered}

    def _handle_termination(self, signum: int, frame: FrameType | None) -> None:
        """Stop at once on SIGTERM/SIGINT: fail the cohort in flight, write no STATE, exit 128+N.

        Replaces the SDK's handler, which writes STATE and exits 0 (a scheduler would record
        a successful sync that delivered nothing). Records already written stay valid; without
        a ``complete`` cohort_syncs record for the cohort in flight the target removes nobody
        on its account, and its bookmark does not move.

        Args:
            signum: Signal number.
            frame: Unused.

        Raises:
            SystemExit: Always, with 128 + the signal number.
        """
        restore_default_handlers()
        name, code = signal_name(signum), exit_code(signum)
        cohort_id = self.activity.cohort_id
        if cohort_id is not None:
            self.ledger.interrupt(cohort_id, f"interrupted by {name}")
            outcome = f"cohort {cohort_id} failed and its bookmark did not move"
        else:
            outcome = "no bookmark moved"
        self.logger.error(
            "Interrupted by %s while %s: %s; STATE not written; exit %d",
            name,
            self.activity.now,
            outcome,
            code,
        )
        raise SystemExit(code)

    def finish_run(self) -> int:
        """Log the run's outcome and return the process exit code (1 if a cohort failed)."""
        if not self.ledger.outcomes:
            return 0
        self.logger.info("Run summary: %s", self.ledger.summary())
        failure = self.ledger.failure_summary()
        if failure:
            self.logger.error(failure)
            return 1
        return 0

    @classmethod
    def invoke(  # type: ignore[override]
        cls,
        *,
        about: bool = False,
        about_format: str | None = None,
        config: Any = None,
        state: IO[str] | None = None,
        catalog: IO[str] | None = None,
    ) -> None:
        """Run the tap as the SDK does, then exit non-zero when a cohort failed.

        Args:
            about: Display package metadata and settings.
            about_format: Output style for ``--about``.
            config: Parsed ``--config`` input (files and/or ENV).
            state: The ``--state`` file.
            catalog: The ``--catalog`` file.
        """
        if about:
            super().invoke(about=about, about_format=about_format)
            return
        cls.print_version(print_fn=cls.logger.info)
        tap = cls(
            config=dict(config.config) if config is not None else {},
            state=None if state is None else json.loads(state.read()),
            catalog=None if catalog is None else json.loads(catalog.read()),
            parse_env_config=bool(config is not None and config.parse_env),
            validate_config=True,
        )
        tap.sync_all()
        code = tap.finish_run()
        if code:
            sys.exit(code)


__all__ = ["TapAmplitudeCohort", "resolve_api_url"]

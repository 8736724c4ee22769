"""TapAmplitudeCohort: settings, stream discovery and the end-of-run verdict."""

from __future__ import annotations

import ipaddress
import json
import sys
from functools import cached_property
from typing import IO, TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit

import requests
from singer_sdk import Stream, Tap
from singer_sdk import typing as th
from singer_sdk.exceptions import ConfigValidationError
from singer_sdk.helpers.capabilities import PluginCapabilities, TapCapabilities

from tap_amplitude_cohort.amplitude.client import AmplitudeClient
from tap_amplitude_cohort.directory import CohortDirectory
from tap_amplitude_cohort.fastpath import RecordBufferedWriter
from tap_amplitude_cohort.interruption import (
    Activity,
    exit_code,
    restore_default_handlers,
    signal_name,
)
from tap_amplitude_cohort.ledger import SyncLedger
from tap_amplitude_cohort.streams import CohortMembersStream, CohortsStream, CohortSyncsStream

if TYPE_CHECKING:
    from types import FrameType

    from singer_sdk.helpers.capabilities import CapabilitiesEnum

REGION_URLS = {
    "us": "https://amplitude.com",
    "eu": "https://analytics.eu.amplitude.com",
}
STREAM_ORDER = ("cohorts", "cohort_members", "cohort_syncs")  # the contract's order
USER_AGENT = "tap-amplitude-cohort/0.1 (+singer-sdk)"


def resolve_api_url(config: dict[str, Any] | Any) -> str:
    """Return the API base URL: ``api_url`` if set, else the region's host.

    Args:
        config: The tap config.

    Returns:
        The base URL without a trailing slash.

    Raises:
        ValueError: For an unknown region, or an ``api_url`` that is not https and not on a
            loopback address (credentials must not travel in clear text).
    """
    api_url = (config.get("api_url") or "").strip()
    if not api_url:
        region = config.get("region") or "us"
        if region not in REGION_URLS:
            msg = f"region must be one of {', '.join(REGION_URLS)}, got {region!r}"
            raise ValueError(msg)
        return REGION_URLS[region]
    parts = urlsplit(api_url)
    if not parts.hostname or parts.scheme not in {"http", "https"}:
        msg = f"api_url must be an absolute http(s) URL, got {api_url!r}"
        raise ValueError(msg)
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        msg = (
            f"api_url must use https unless it points at a loopback address (such as the "
            f"sandbox on 127.0.0.1); got http on host {parts.hostname!r}"
        )
        raise ValueError(msg)
    return api_url.rstrip("/")


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


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

    config_jsonschema = th.PropertiesList(
        th.Property(
            "api_key",
            th.StringType,
            required=True,
            secret=True,
            description="Amplitude project API key (HTTP Basic user name).",
        ),
        th.Property(
            "secret_key",
            th.StringType,
            required=True,
            secret=True,
            description="Amplitude project secret key (HTTP Basic password).",
        ),
        th.Property(
            "region",
            th.StringType(allowed_values=list(REGION_URLS)),
            default="us",
            description="Amplitude data region; picks the API host "
            "(us: amplitude.com, eu: analytics.eu.amplitude.com).",
        ),
        th.Property(
            "api_url",
            th.StringType,
            description="Overrides the region's API host (https, or http on a loopback "
            "address such as the sandbox).",
        ),
        th.Property(
            "cohort_ids",
            th.ArrayType(th.StringType),
            description="Ids of the cohorts whose members to export. An unknown id is an "
            "error listing the cohorts that exist.",
        ),
        th.Property(
            "user_property_keys",
            th.ArrayType(th.StringType),
            description="User properties to export (sent as repeated propKeys). Absent "
            "means all properties.",
        ),
        th.Property(
            "include_user_properties",
            th.BooleanType,
            default=True,
            description="Export user properties with each member (false sends props=0, "
            "which is faster on large cohorts).",
        ),
        th.Property(
            "skip_unchanged_cohorts",
            th.BooleanType,
            default=True,
            description="Skip the download of a cohort whose lastComputed has not moved since "
            "the last successful sync (saves the 500/month download quota).",
        ),
        th.Property(
            "redownload_cohort_ids",
            th.ArrayType(th.StringType),
            description="Cohorts to download in this run even though lastComputed has not "
            "moved (to apply a removal held by the target's max_removal_ratio). Set it for "
            "one run only.",
        ),
        th.Property(
            "poll_interval_seconds",
            th.NumberType(minimum=0),
            default=5,
            description="First wait between export status polls; it grows on each poll.",
        ),
        th.Property(
            "max_export_wait_seconds",
            th.IntegerType(minimum=1),
            default=3600,
            description="Bound on the total wait for one cohort export; past it the cohort fails.",
        ),
    ).to_dict()

    def __init__(self, *, validate_config: bool = True, **kwargs: Any) -> None:
        # The ledger must exist before the SDK discovers streams inside super().__init__.
        self.ledger = SyncLedger()
        self.activity = Activity()
        super().__init__(validate_config=validate_config, **kwargs)
        if validate_config:
            try:
                resolve_api_url(self.config)
            except ValueError as exc:
                raise ConfigValidationError(str(exc), errors=[str(exc)]) from exc

    @cached_property
    def amplitude(self) -> AmplitudeClient:
        """The Amplitude client (built on first use: discovery needs no network)."""
        try:
            base_url = resolve_api_url(self.config)
        except ValueError as exc:
            raise ConfigValidationError(str(exc), errors=[str(exc)]) from exc
        session = requests.Session()
        session.headers["User-Agent"] = USER_AGENT
        return AmplitudeClient(
            session, base_url, self.config.get("api_key", ""), self.config.get("secret_key", "")
        )

    def discover_streams(self) -> list[Stream]:
        """Return the three streams, wired to one shared cohort list and ledger."""
        directory = CohortDirectory(lambda: self.amplitude)
        syncs: CohortSyncsStream | None = None
        members = CohortMembersStream(
            self,
            directory=directory,
            ledger=self.ledger,
            client=lambda: self.amplitude,
            # Without cohort_syncs there is no signal to wait for: bookmark right away.
            bookmarks_deferred=lambda: syncs is not None and syncs.selected,
        )
        syncs = CohortSyncsStream(self, ledger=self.ledger, members=members)
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
            name, self.activity.now, outcome, code,
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


if __name__ == "__main__":
    TapAmplitudeCohort.cli()

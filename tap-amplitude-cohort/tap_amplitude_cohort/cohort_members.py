"""The ``cohort_members`` stream: one partition per configured cohort, bookmarked per cohort.

Each partition downloads one cohort's export (unless it is unchanged since its bookmark),
records the outcome in the ledger for ``cohort_syncs``, and, in BATCH mode, writes the members
straight to batch files (``batch_files``) when nothing needs the SDK's record path.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import requests
from singer_sdk import Stream
from singer_sdk import typing as th
from singer_sdk.exceptions import ConfigValidationError
from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.mapper import SameRecordTransform

from tap_amplitude_cohort.amplitude.errors import AmplitudeError
from tap_amplitude_cohort.batch_files import (
    BatchFileWriter,
    ensure_private_folder,
    fast_path_refusal,
    local_folder,
)
from tap_amplitude_cohort.cohorts import (
    MAX_EXPORTABLE_MEMBERS,
    cohort_size,
    cohort_timestamp,
    describe_cohorts,
)
from tap_amplitude_cohort.fastpath import MemoizedSelectionMask
from tap_amplitude_cohort.ledger import (
    COMPLETE,
    FAILED,
    UNCHANGED,
    CohortOutcome,
    CohortStatus,
    SyncLedger,
)
from tap_amplitude_cohort.members import (
    format_datetime,
    iter_csv_rows,
    member_records,
    normalise_property_key,
)

if TYPE_CHECKING:
    from singer_sdk import Tap
    from singer_sdk.helpers._batch import BaseBatchFileEncoding, BatchConfig
    from singer_sdk.helpers.types import Context
    from singer_sdk.singerlib.catalog import SelectionMask

    from tap_amplitude_cohort.amplitude.client import AmplitudeClient
    from tap_amplitude_cohort.directory import CohortDirectory
    from tap_amplitude_cohort.interruption import Activity
    from tap_amplitude_cohort.settings import TapSettings

# Per cohort partition: lastComputed of the last complete download, and the export options then.
BOOKMARK_KEY = "last_computed"
EXPORT_OPTIONS_KEY = "export_options"
# Set by the target when the cohort's list was not brought to the cohort: {"reason", "since"}.
PENDING_KEY = "pending"


def _utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def _parse_bookmark(value: object) -> datetime.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=datetime.timezone.utc)


def members_schema(user_property_keys: Iterable[str] | None) -> dict[str, Any]:
    """Return the ``cohort_members`` schema; named property keys are declared (for flattening).

    Args:
        user_property_keys: The configured property keys, or None for all (undeclared) keys.

    Returns:
        The JSON schema.
    """
    declared = [
        th.Property(key, th.StringType)
        for key in dict.fromkeys(normalise_property_key(k) for k in user_property_keys or [])
        if key
    ]
    return th.PropertiesList(
        th.Property("cohort_id", th.StringType, required=True),
        th.Property("cohort_name", th.StringType),
        th.Property("cohort_last_computed", th.DateTimeType),
        th.Property("amplitude_id", th.IntegerType, required=True),
        th.Property("user_id", th.StringType),
        th.Property(
            "user_properties",
            # Values are strings, or null when the user does not have the property.
            th.ObjectType(
                *declared, additional_properties=th.CustomType({"type": ["string", "null"]})
            ),
        ),
    ).to_dict()


class CohortMembersStream(Stream):
    """One record per member of each cohort in ``cohort_ids``; one partition per cohort.

    The per-cohort bookmark (``last_computed`` in the partition's state) is written only after
    a complete download, and by default only once ``cohort_syncs`` has been written (see
    ``save_bookmark``), so state never claims more than the target was told.
    """

    name = "cohort_members"
    primary_keys = ("cohort_id", "amplitude_id")
    state_partitioning_keys = ("cohort_id",)
    # Records are built with JSON-ready types; the SDK's per-record conformance is skipped.
    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.NONE

    def __init__(
        self,
        tap: Tap,
        *,
        settings: TapSettings,
        activity: Activity,
        directory: CohortDirectory,
        ledger: SyncLedger,
        client: Callable[[], AmplitudeClient],
        bookmarks_deferred: Callable[[], bool],
    ) -> None:
        super().__init__(tap, schema=members_schema(settings.user_property_keys))
        self._settings = settings
        self._activity = activity
        self._directory = directory
        self._ledger = ledger
        self._client = client
        self._bookmarks_deferred = bookmarks_deferred
        self._ids_checked = False
        # set while get_batches writes its own files: records are structs then (members.py)
        self._records_as_structs = False
        self._memo_source: SelectionMask | None = None
        self._memo_mask: SelectionMask | None = None

    @property
    def mask(self) -> SelectionMask:
        """The SDK's selection mask, memoising breadcrumbs of undeclared user properties."""
        source = super().mask
        if self._memo_source is not source:
            self._memo_source, self._memo_mask = source, MemoizedSelectionMask(source)
        return self._memo_mask  # type: ignore[return-value]

    def generate_child_contexts(
        self, record: dict[str, Any], context: Context | None
    ) -> Iterable[Context | None]:
        """No child streams: nothing to derive per record (saves the SDK's per-record work)."""
        return ()

    def get_batch_config(self, config: Any) -> BatchConfig | None:
        """Return the SDK batch config, or None (RECORD messages) when BATCH would lose meaning.

        The SDK writes batch files from records as the source yields them: stream maps,
        flattening and deselected properties apply to RECORD messages only. When any is
        configured the members go out as RECORD messages, so the target sees what it asked for.
        """
        batch_config = super().get_batch_config(config)
        if batch_config is None:
            return None
        if reason := self._record_path_reason():
            self.logger.warning(
                "cohort_members is sent as RECORD messages, not BATCH, because %s (the SDK's "
                "batch files would carry the records without it)",
                reason,
            )
            return None
        return batch_config

    def _record_path_reason(self) -> str | None:
        maps = self.stream_maps
        if len(maps) != 1 or type(maps[0]) is not SameRecordTransform:
            return "stream maps are configured for it"
        if maps[0].flattening_enabled:
            return "flattening is enabled"
        if not all(self.mask.values()):
            return "some of its properties are deselected"
        if self.ABORT_AT_RECORD_COUNT is not None:
            return "a record limit is set"
        return None

    def get_batches(
        self, batch_config: BatchConfig, context: Context | None = None
    ) -> Iterable[tuple[BaseBatchFileEncoding, list[str]]]:
        """Write each cohort's members to batch files straight from the export; one per BATCH.

        Files hold one cohort each. A cohort that fails part-way still has its delivered
        members in the files already written (as RECORD mode would have sent them), and its
        ``cohort_syncs`` record says ``failed`` with that count, so the target removes nobody.

        Args:
            batch_config: The SDK batch config.
            context: One cohort's partition, or None for every configured cohort.

        Yields:
            ``(encoding, [file URL])`` per file, in the order written.
        """
        folder = local_folder(batch_config)
        if folder is not None:
            ensure_private_folder(folder)  # before any download spends the quota
        if refusal := fast_path_refusal(batch_config):
            self.logger.info("cohort_members batch files by the SDK's batcher: %s", refusal)
            yield from super().get_batches(batch_config, context)
            return
        writer = BatchFileWriter(batch_config, tap_name=self.tap_name, stream_name=self.name)
        partitions = [context] if context is not None else (self.partitions or [{}])
        self._records_as_structs = True  # only the writer sees them: it encodes them as is
        try:
            with self.get_record_counter() as counter:
                for partition in partitions:
                    counter.with_context(partition)
                    for url, count in writer.write(self.get_records(partition or None)):
                        counter.increment(count)
                        yield batch_config.encoding, [url]
        finally:
            self._records_as_structs = False

    @property
    def partitions(self) -> list[dict] | None:
        """One partition per configured cohort, in the configured order."""
        return [{"cohort_id": cohort_id} for cohort_id in self._settings.cohort_ids] or None

    def export_options(self) -> str:
        """What the export asks for; a bookmark only holds for the same options."""
        return self._settings.export_options

    def bookmark(self, cohort_id: str) -> datetime.datetime | None:
        """Return the lastComputed of this cohort's last complete download with these options."""
        state = self.get_context_state({"cohort_id": cohort_id})
        if state.get(EXPORT_OPTIONS_KEY) != self.export_options():
            return None  # never synced, or other properties were asked for then
        return _parse_bookmark(state.get(BOOKMARK_KEY))

    def pending(self, cohort_id: str) -> dict[str, Any] | None:
        """Return the partition's ``pending`` marker (a target could not converge its list)."""
        marker = self.get_context_state({"cohort_id": cohort_id}).get(PENDING_KEY)
        return marker if isinstance(marker, dict) else None

    def save_bookmark(self, cohort_id: str, last_computed: datetime.datetime) -> None:
        """Advance a cohort's bookmark (after a complete download was reported).

        The ``pending`` marker goes with it: this download is what it asked for, and a target
        that still cannot converge the list writes it again (any other target never does, so
        leaving it would download the cohort on every run).
        """
        state = self.get_context_state({"cohort_id": cohort_id})
        state[BOOKMARK_KEY] = format_datetime(last_computed)
        state[EXPORT_OPTIONS_KEY] = self.export_options()
        state.pop(PENDING_KEY, None)

    def _check_cohort_ids(self) -> None:
        """Fail before any download when a configured id does not exist."""
        if self._ids_checked:
            return
        unknown = [c for c in self._settings.cohort_ids if self._directory.get(c) is None]
        if unknown:
            msg = (
                f"cohort_ids names cohort(s) that do not exist: {', '.join(unknown)}. "
                f"Cohorts in this project: {describe_cohorts(self._directory.cohorts)}"
            )
            raise ConfigValidationError(msg, errors=[msg])
        # A stray id (a typo, or a cohort since taken out of cohort_ids) would otherwise
        # leave the user waiting for a download that never comes.
        configured = set(self._settings.cohort_ids)
        stray = sorted(c for c in self._settings.redownload_cohort_ids if c not in configured)
        if stray:
            self.logger.warning(
                "redownload_cohort_ids names cohort(s) not in cohort_ids: %s; they are not "
                "downloaded (add them to cohort_ids, or take them out of redownload_cohort_ids)",
                ", ".join(stray),
            )
        self._ids_checked = True

    def _reason_not_to_download(
        self, cohort_id: str, size: int | None, last_computed: datetime.datetime | None
    ) -> tuple[CohortStatus, str] | None:
        """Return (status, message) when the cohort must not be downloaded, else None."""
        if size is not None and size > MAX_EXPORTABLE_MEMBERS:
            return FAILED, (
                f"cohort has {size:,} users; Amplitude exports at most "
                f"{MAX_EXPORTABLE_MEMBERS:,}, so it was not downloaded"
            )
        if not self._settings.skip_unchanged_cohorts or last_computed is None:
            return None
        bookmark = self.bookmark(cohort_id)
        if bookmark is None or last_computed > bookmark:
            return None
        if cohort_id in self._settings.redownload_cohort_ids:
            self.logger.warning(
                "Cohort %s: in redownload_cohort_ids, so downloaded although lastComputed has "
                "not moved; take it out of the setting after this run (each run would use a "
                "download).",
                cohort_id,
            )
            return None
        if (pending := self.pending(cohort_id)) is not None:
            self.logger.warning(
                "Cohort %s pending since %s: %s; downloaded again although lastComputed has "
                "not moved.",
                cohort_id,
                pending.get("since") or "?",
                pending.get("reason") or "its list was not brought to the cohort",
            )
            return None
        return UNCHANGED, (
            f"lastComputed {format_datetime(last_computed)} has not moved since the last "
            "complete sync; not downloaded"
        )

    def get_records(self, context: Context | None) -> Iterable[dict[str, Any]]:
        """Export one cohort and yield its members; record the outcome in the ledger."""
        if not context:
            self.logger.warning(
                "cohort_ids is not set, so no cohort members are exported. Set cohort_ids "
                "to the ids of the cohorts to sync (the cohorts stream lists them)."
            )
            return
        self._check_cohort_ids()
        cohort_id = str(context["cohort_id"])
        cohort = self._directory.get(cohort_id) or {}
        name = cohort.get("name")
        last_computed = cohort_timestamp(cohort, "lastComputed")

        def finish(status: CohortStatus, count: int, message: str | None) -> None:
            self._ledger.record(
                CohortOutcome(cohort_id, name, last_computed, status, count, message, _utc_now())
            )

        if refusal := self._reason_not_to_download(cohort_id, cohort_size(cohort), last_computed):
            status, message = refusal
            log = self.logger.error if status == FAILED else self.logger.info
            log("Cohort %s (%s): %s", cohort_id, name, message)
            finish(status, 0, message)
            return

        delivered = 0
        try:
            with self._activity.doing(f"downloading cohort {cohort_id} ({name})", cohort_id):
                for record in self._download(cohort_id, name, last_computed):
                    yield record
                    delivered += 1
        except GeneratorExit:
            # The sync was stopped part-way (a record limit, a signal): not a whole cohort.
            finish(FAILED, delivered, f"the sync stopped after {delivered} members")
            raise
        except (AmplitudeError, requests.RequestException, ValueError) as exc:
            message = str(exc) or type(exc).__name__
            self.logger.error(
                "Cohort %s (%s) FAILED after %d members were delivered: %s. Its bookmark "
                "does not advance; the other cohorts continue.",
                cohort_id,
                name,
                delivered,
                message,
            )
            finish(FAILED, delivered, message)
            return
        self.logger.info("Cohort %s (%s) complete: %d members", cohort_id, name, delivered)
        finish(COMPLETE, delivered, None)
        if last_computed is not None and not self._bookmarks_deferred():
            self.save_bookmark(cohort_id, last_computed)

    def _download(
        self, cohort_id: str, name: str | None, last_computed: datetime.datetime | None
    ) -> Iterable[dict[str, Any]]:
        client = self._client()
        settings = self._settings
        request_id = client.request_export(
            cohort_id,
            include_properties=settings.include_user_properties,
            property_keys=settings.user_property_keys,
        )
        self._ledger.downloads += 1
        self.logger.info(
            "Cohort %s (%s): export requested (download %d of this run)",
            cohort_id,
            name,
            self._ledger.downloads,
        )
        with self._activity.doing(f"waiting for Amplitude's export of cohort {cohort_id} ({name})"):
            client.wait_for_export(
                request_id,
                cohort_id=cohort_id,
                poll_interval=settings.poll_interval_seconds,
                max_wait=settings.max_export_wait_seconds,
            )
        with client.open_export_file(request_id, cohort_id=cohort_id) as body:
            yield from member_records(
                iter_csv_rows(body),
                cohort_id=cohort_id,
                cohort_name=name,
                cohort_last_computed=format_datetime(last_computed),
                as_structs=self._records_as_structs,
            )

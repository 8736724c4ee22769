"""The ``cohorts`` and ``cohort_syncs`` streams (``cohort_members`` has its own module).

The contract's order is cohorts, cohort_members, cohort_syncs (``TapAmplitudeCohort.streams``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from singer_sdk import Stream
from singer_sdk import typing as th
from singer_sdk.helpers.conform import TypeConformanceLevel

from tap_amplitude_cohort.cohorts import cohort_record
from tap_amplitude_cohort.ledger import COMPLETE, FAILED, UNCHANGED, SyncLedger

if TYPE_CHECKING:
    from singer_sdk import Tap
    from singer_sdk.helpers._batch import BatchConfig
    from singer_sdk.helpers.types import Context

    from tap_amplitude_cohort.cohort_members import CohortMembersStream
    from tap_amplitude_cohort.directory import CohortDirectory
    from tap_amplitude_cohort.interruption import Activity


class CohortsStream(Stream):
    """Every cohort's metadata: one list call, no download quota."""

    name = "cohorts"
    primary_keys = ("id",)
    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.ROOT_ONLY
    schema = th.PropertiesList(
        th.Property("id", th.StringType, required=True),
        th.Property("name", th.StringType),
        th.Property("description", th.StringType),
        th.Property("size", th.IntegerType),
        th.Property("archived", th.BooleanType),
        th.Property("published", th.BooleanType),
        th.Property("owners", th.ArrayType(th.StringType)),
        th.Property("type", th.StringType),
        th.Property("last_computed", th.DateTimeType),
        th.Property("last_modified", th.DateTimeType),
        th.Property("created_at", th.DateTimeType),
    ).to_dict()

    def __init__(self, tap: Tap, *, directory: CohortDirectory) -> None:
        super().__init__(tap)
        self._directory = directory

    def get_batch_config(self, config: Any) -> BatchConfig | None:
        """Always RECORD messages: a few lines of metadata (BATCH is for ``cohort_members``)."""
        return None

    def get_records(self, context: Context | None) -> Iterable[dict[str, Any]]:
        """Yield one record per cohort."""
        for cohort in self._directory.cohorts:
            yield cohort_record(cohort)


class CohortSyncsStream(Stream):
    """The completeness signal: one record per cohort, after every cohort_members record.

    ``complete``: this run delivered the cohort's whole membership (``member_count`` members);
    ``unchanged``: skipped because lastComputed did not move; ``failed``: some or none delivered.
    """

    name = "cohort_syncs"
    primary_keys = ("cohort_id",)
    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.ROOT_ONLY
    schema = th.PropertiesList(
        th.Property("cohort_id", th.StringType, required=True),
        th.Property("cohort_name", th.StringType),
        th.Property("cohort_last_computed", th.DateTimeType),
        th.Property(
            "status", th.StringType(allowed_values=[COMPLETE, UNCHANGED, FAILED]), required=True
        ),
        th.Property("member_count", th.IntegerType, required=True),
        th.Property("message", th.StringType),
        th.Property("synced_at", th.DateTimeType, required=True),
    ).to_dict()

    def __init__(
        self,
        tap: Tap,
        *,
        ledger: SyncLedger,
        members: CohortMembersStream,
        activity: Activity,
    ) -> None:
        super().__init__(tap)
        self._ledger = ledger
        self._members = members
        self._activity = activity

    def get_batch_config(self, config: Any) -> BatchConfig | None:
        """Always RECORD messages, so the signal is a line read after every member batch."""
        return None

    def get_records(self, context: Context | None) -> Iterable[dict[str, Any]]:
        """Yield each cohort's outcome, then advance the bookmarks of the complete ones.

        The SDK writes the STATE message after the last record, so the new bookmarks reach
        the target only after the completeness records they rest on.
        """
        with self._activity.doing("writing cohort_syncs (the completeness signal)"):
            for outcome in self._ledger.outcomes:
                yield outcome.as_record()
        for outcome in self._ledger.outcomes:
            if outcome.status == COMPLETE and outcome.cohort_last_computed is not None:
                self._members.save_bookmark(outcome.cohort_id, outcome.cohort_last_computed)

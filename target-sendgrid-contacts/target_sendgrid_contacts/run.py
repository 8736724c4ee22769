"""One sync run: conducts intake, sending, removal and reporting, in the order the contract fixes.

Built complete by ``assembly.start_run``; see docs/architecture.md for the record's path.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from target_sendgrid_contacts.cohort_tracker import CohortTracker
from target_sendgrid_contacts.convergence import report_convergence
from target_sendgrid_contacts.intake import Batch, Intake, Intakes, TakeFiles
from target_sendgrid_contacts.interruption import Activity
from target_sendgrid_contacts.mirroring import ListMirror
from target_sendgrid_contacts.outcomes import Ledger
from target_sendgrid_contacts.rejects import RejectsWriter
from target_sendgrid_contacts.removal import RemovalStatus
from target_sendgrid_contacts.report import build_report, publish
from target_sendgrid_contacts.sender import Sender
from target_sendgrid_contacts.sendgrid.client import SendGridClient
from target_sendgrid_contacts.settings import Settings
from target_sendgrid_contacts.work_folders import remove_work_folder

LOGGER = logging.getLogger("target_sendgrid_contacts")

PROGRESS_EVERY_SECONDS = 15.0
STOPPED = "the run stopped before its list was brought to the cohort"


class TooManyRejectionsError(Exception):
    """SendGrid refused more contacts than ``max_sendgrid_rejections`` allows."""


class SyncRun:
    """Everything one run of the target does with SendGrid.

    Attributes:
        settings: The checked settings.
        ledger: Counts per list.
        tracker: Cohort tracking.
        failed: A failure stopped the run (no STATE may leave after it).
        activity: What the run is doing now (for the line a signal leaves).
        interrupted: That line, once a signal stopped the run.
    """

    def __init__(
        self,
        settings: Settings,
        client: SendGridClient,
        *,
        ledger: Ledger,
        tracker: CohortTracker,
        intakes: Intakes,
        sender: Sender,
        mirror: ListMirror,
        rejects: RejectsWriter,
        activity: Activity,
        workdir: Path,
    ) -> None:
        """Keep the run's parts (built by ``assembly.start_run``)."""
        self.settings = settings
        self.ledger = ledger
        self.tracker = tracker
        self.activity = activity
        self.failed = False
        self.interrupted: str | None = None
        self._client = client
        self._intakes = intakes
        self._sender = sender
        self._mirror = mirror
        self._rejects = rejects
        self._workdir = workdir
        self._contact_intakes: list[Intake] = []
        self._started = self._last_progress = time.monotonic()
        self._finished = False

    def intake_for(
        self,
        stream: str,
        schema: Mapping,
        key_properties: Sequence[str] | None,
        take_files: TakeFiles,
    ) -> Intake:
        """The intake a stream's sink forwards to.

        Args:
            stream: Stream name.
            schema: Stream schema.
            key_properties: Key properties.
            take_files: The target's BATCH intake.

        Returns:
            The stream's intake.
        """
        intake = self._intakes.for_stream(
            stream, schema, key_properties, run=self, take_files=take_files
        )
        self._contact_intakes.append(intake)  # also those a new schema retired
        return intake

    def submit(self, batch: Batch) -> None:
        """Send a batch's contacts (held until the end with ``on_invalid_email: fail``).

        Args:
            batch: Items per list name, in arrival order.
        """
        try:
            self._sender.submit(batch)
        except BaseException as exc:
            self.fail(exc)
            raise
        self.progress()

    def progress(self) -> None:
        """Log progress when the last progress line is old enough."""
        now = time.monotonic()
        if now - self._last_progress >= PROGRESS_EVERY_SECONDS:
            self._last_progress = now
            elapsed, read = now - self._started, self.ledger.records_read
            writer = self._sender.writer
            LOGGER.info(
                "Progress: %d records read, %d contacts sent, %d jobs finished, %.0f records/s",
                read,
                writer.contacts_sent,
                writer.jobs_finished,
                read / elapsed if elapsed else 0.0,
            )

    def settle_before_state(self) -> bool:
        """Put everything received so far into SendGrid, so that STATE may be written.

        Returns:
            True when STATE may leave: every contact received is upserted and its job finished.
            False while contacts are held (``on_invalid_email: fail``), after a failure, when a
            stop signal interrupted an upload, and always in a dry run (nothing was written, so
            Meltano must not save state that would make an incremental tap skip these records).
        """
        writer = self._sender.writer
        if self.failed or self._sender.holding or not writer.writes:
            return False
        if writer.busy:
            # Re-entered from the SDK's termination handler in the middle of an upload.
            LOGGER.warning("Stopped in the middle of an upload: no STATE is written")
            return False
        try:
            self._sender.settle()
        except BaseException as exc:
            self.fail(exc)
            raise
        return True

    def note_state(self, state: Mapping) -> None:
        """Remember the ``pending``/``held`` markers of a STATE received.

        Args:
            state: The STATE value.
        """
        self.tracker.note_state(state)

    def state_to_emit(self, state: dict) -> dict:
        """Return the STATE to write: every cohort whose list is not converged marked pending.

        Args:
            state: The latest STATE value received.

        Returns:
            The STATE value to write.
        """
        return self.tracker.state_to_emit(state, self.ledger.outcomes.values())

    def finish(self) -> dict:
        """Send held contacts, mirror complete cohorts, report; then fail if asked to.

        Returns:
            The report.

        Raises:
            TooManyRejectionsError: SendGrid refused more contacts than allowed.
        """
        if self._finished:
            return {}
        try:
            for intake in self._contact_intakes:
                intake.end_batch()
            for batch in self._sender.release():
                self.submit(batch)
            self._sender.settle()  # removal only once every upsert of every list finished
            self.tracker.register_synced(self.ledger)
            self._sender.give_lists(mirror=self.settings.mirror)
            for outcome in self.ledger.outcomes.values():
                self._mirror.bring(outcome)
        except BaseException as exc:
            self.fail(exc)
            raise
        self.tracker.conclude(self.ledger.outcomes.values(), stopped=None)
        rejections = self._sender.writer.sendgrid_rejections
        allowed = self.settings.max_sendgrid_rejections
        too_many = None
        if rejections > allowed:
            too_many = (
                f"SendGrid refused {rejections} contacts (see the rejects file); "
                f"max_sendgrid_rejections allows {allowed}."
            )
            self.failed = True  # the run exits non-zero: no STATE may leave after it
        report = self._report(error=too_many)
        if too_many:
            raise TooManyRejectionsError(too_many)
        return report

    def fail(self, exc: BaseException) -> None:
        """Report what was done before a failure stopped the run (once), then clean up.

        Args:
            exc: Why the run stops.
        """
        self.failed = True
        if not self._finished:
            for outcome in self.ledger.outcomes.values():
                if outcome.removal == RemovalStatus.NOT_APPLICABLE:
                    outcome.removal_reason = "the run stopped before removal"
            # No STATE leaves after a failure: this is for the report and the log.
            self.tracker.conclude(self.ledger.outcomes.values(), stopped=STOPPED)
            self._report(error=self.interrupted or str(exc) or type(exc).__name__)

    def interrupt(self, line: str) -> None:
        """A signal stops the run: no STATE may leave any more.

        Args:
            line: What was interrupted (it becomes the report's error).
        """
        self.interrupted = line
        self.failed = True

    def _report(self, *, error: str | None) -> dict:
        self._finished = True
        settings = self.settings
        try:
            report = build_report(
                self.ledger.outcomes.values(),
                api_calls=self._client.calls,
                seconds=time.monotonic() - self._started,
                dry_run=settings.dry_run,
                sync_mode=settings.sync_mode,
                records_read=self.ledger.records_read,
                sendgrid_rejections_allowed=settings.max_sendgrid_rejections,
            )
            report["error"] = error
            report_convergence(
                report,
                self.tracker.current(self.ledger.outcomes.values()),
                seen=self.tracker.markers_seen,
                now=self.tracker.started_at,
                dry_run=settings.dry_run,
                failed=self.failed,
            )
            publish(report, rejected=self._rejects.counts, path=settings.report_path)
        finally:
            self.close()
        return report

    def close(self) -> None:
        """Release files and the temporary directory (safe to call twice)."""
        self._sender.close()
        self._mirror.close()
        self._rejects.close()
        remove_work_folder(self._workdir)

"""One sync run: shared by every sink, it owns the lists, the checks and the counts."""

from __future__ import annotations

import atexit
import datetime
import logging
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Mapping
from pathlib import Path

from target_sendgrid_contacts.batching import MAX_CONTACTS_PER_REQUEST
from target_sendgrid_contacts.bookmarks import (
    HELD,
    IN_PROGRESS,
    PENDING,
    Judgement,
    judge,
    mark_state,
    markers_in,
)
from target_sendgrid_contacts.completeness import cohort_completeness
from target_sendgrid_contacts.custom_fields import CustomFields
from target_sendgrid_contacts.duplicates import SeenEmails
from target_sendgrid_contacts.interruption import Activity
from target_sendgrid_contacts.items import Item
from target_sendgrid_contacts.list_names import ListNamer
from target_sendgrid_contacts.mapping import Mapped
from target_sendgrid_contacts.mirror import ListSnapshot, removal_decision
from target_sendgrid_contacts.outcomes import ListOutcome
from target_sendgrid_contacts.rejects import DUPLICATE_EMAIL, RejectsWriter
from target_sendgrid_contacts.report import build_report, render_table, write_report
from target_sendgrid_contacts.sendgrid.client import SendGridClient
from target_sendgrid_contacts.sendgrid.exports import ExportError, remove_from_list
from target_sendgrid_contacts.sendgrid.lists import ListDirectory, check_access
from target_sendgrid_contacts.settings import Settings
from target_sendgrid_contacts.spool import Spool
from target_sendgrid_contacts.upserts import Uploader

LOGGER = logging.getLogger("target_sendgrid_contacts")

COHORT_MEMBERS_STREAM = "cohort_members"
PROGRESS_EVERY_SECONDS = 15.0
POOL_CAP = 60_000  # contacts waiting across all lists before everything is sent


class InvalidEmailStop(Exception):
    """``on_invalid_email: fail`` met a missing or invalid email: nothing was written."""


class TooManyRejectionsError(Exception):
    """SendGrid refused more contacts than ``max_sendgrid_rejections`` allows."""


class SyncRun:
    """Everything one run of the target does with SendGrid, in the order the contract fixes.

    Attributes:
        settings: The checked settings.
        client: The SendGrid client.
        outcomes: Counts per list name.
        cohort_records: ``cohort_members``-like records received per cohort id.
        cohort_syncs: The last ``cohort_syncs`` record per cohort id.
        failed: A failure stopped the run (no STATE may leave after it).
        judgement: Which lists and cohorts are converged (set at the end of the input).
        activity: What the run is doing now (for the line a signal leaves).
        interrupted: That line, once a signal stopped the run.
    """

    def __init__(self, settings: Settings, client: SendGridClient) -> None:
        """Prepare a run (no network yet).

        Args:
            settings: The checked settings.
            client: The SendGrid client.
        """
        self.settings = settings
        self.client = client
        self.started = time.monotonic()
        self.started_at = datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec="seconds"
        )
        self.outcomes: dict[str, ListOutcome] = {}
        self.cohort_records: Counter[str] = Counter()
        self.cohort_syncs: dict[str, dict] = {}
        self.cohort_lists: dict[str, str] = {}
        self.non_cohort_lists: set[str] = set()
        self.records_read = 0
        self._workdir = Path(tempfile.mkdtemp(prefix="target-sendgrid-"))
        atexit.register(self.close)  # also when a stop or a failure ends the run early
        self._snapshots: dict[str, ListSnapshot] = {}
        self._unreadable: dict[str, str] = {}  # list name -> why its export could not be read
        self.fields: CustomFields | None = None
        self._directory: ListDirectory | None = None
        self._uploader: Uploader | None = None
        self._rejects: RejectsWriter | None = None
        self._seen: SeenEmails | None = None
        self._spool: Spool | None = None
        self._pools: dict[str, list[tuple[Item, dict]]] = {}
        self._pooled = 0
        self._last_progress = time.monotonic()
        self._finished = False
        self.failed = False
        self.judgement: Judgement | None = None
        self._markers_seen: dict[str, dict[str, dict]] = {}  # from the STATEs received
        self.activity = Activity()
        self._unsettled: Counter[str] = Counter()  # contacts sent per list, jobs not settled
        self.interrupted: str | None = None

    # ----- start --------------------------------------------------------------------------

    def start(self) -> None:
        """Check the key with a real call and read lists and fields; nothing is written.

        Raises:
            SendGridAPIError: The key is invalid (401) or lacks Marketing permission (403).
            ValueError: A configured custom field is missing and may not be created.
        """
        check_access(self.client)
        self._directory = ListDirectory(self.client)
        self.fields = CustomFields(
            self.client, self.settings.custom_fields,
            create=self.settings.create_missing_custom_fields, dry_run=self.settings.dry_run,
        )
        self._rejects = RejectsWriter(self.settings.rejects_path)
        self._uploader = Uploader(
            self.client, self._rejects,
            request_limit=self._request_limit(),
            poll_interval=self.settings.job_poll_interval,
            timeout=self.settings.job_timeout,
            new_fields=lambda: self.fields is not None and self.fields.created_at is not None,
            max_in_flight=self.settings.max_jobs_in_flight,
            workdir=self._workdir,
        )
        self._seen = SeenEmails(self._workdir / "seen.bin")
        if self.settings.on_invalid_email == "fail":
            self._spool = Spool(self._workdir / "spool.jsonl")
        LOGGER.info(
            "SendGrid key accepted; %d lists found; sync_mode=%s%s",
            len(self._directory._ids),
            self.settings.sync_mode,
            " (dry run: nothing will be written)" if self.settings.dry_run else "",
        )

    # ----- per record ---------------------------------------------------------------------

    def outcome(self, list_name: str, stream: str, cohort_id: str | None) -> ListOutcome:
        """Return the counts of a list, noting which stream and cohort feed it.

        Args:
            list_name: List name.
            stream: Stream name.
            cohort_id: Cohort id of the record, None for a stream without cohort fields.

        Returns:
            The list's outcome.
        """
        outcome = self.outcomes.get(list_name)
        if outcome is None:
            outcome = self.outcomes[list_name] = ListOutcome(list_name)
        outcome.streams.add(stream)
        if cohort_id is None:
            if list_name not in self.non_cohort_lists:
                self.non_cohort_lists.add(list_name)
                if self.settings.mirror:
                    LOGGER.info(
                        "List %r is fed by stream %r, which has no cohort fields: it is only "
                        "upserted, never mirrored (no completeness signal)", list_name, stream,
                    )
        else:
            outcome.cohort_ids.add(cohort_id)
            self.cohort_lists.setdefault(cohort_id, list_name)
        return outcome

    def reject_record(
        self, outcome: ListOutcome, mapped: Mapped, *, stream: str, record_number: int,
        keys: dict, values: dict,
    ) -> None:
        """Count and write a record rejected before sending (missing or invalid email).

        Args:
            outcome: The list's outcome.
            mapped: The failed mapping.
            stream: Stream name.
            record_number: Position of the record in its stream.
            keys: Key properties of the record.
            values: Raw mapped values.

        Raises:
            InvalidEmailStop: ``on_invalid_email`` is ``fail``.
        """
        reason = mapped.reason or "invalid_email"
        outcome.rejected[reason] += 1
        self._require_rejects().write(
            reason=reason, message=mapped.message, stream=stream, list_name=outcome.name,
            keys=keys, record_number=record_number, values=values,
        )
        if self.settings.on_invalid_email == "fail":
            stop = InvalidEmailStop(
                f"{stream} record #{record_number} was rejected ({reason}: {mapped.message}); "
                "on_invalid_email is 'fail', so the run stops and nothing was written to SendGrid."
            )
            self.fail(stop)
            raise stop

    def progress(self) -> None:
        """Log progress when the last progress line is old enough."""
        now = time.monotonic()
        if now - self._last_progress >= PROGRESS_EVERY_SECONDS:
            self._last_progress = now
            elapsed = now - self.started
            LOGGER.info(
                "Progress: %d records read, %d contacts sent, %d jobs finished, %.0f records/s",
                self.records_read, self._require_uploader().contacts_sent,
                self._require_uploader().jobs_finished,
                self.records_read / elapsed if elapsed else 0.0,
            )

    def cohort_synced(self, record: Mapping) -> None:
        """Note a ``cohort_syncs`` record (the completeness signal).

        Args:
            record: The record.
        """
        cohort_id = record.get("cohort_id")
        if cohort_id is not None:
            self.cohort_syncs[str(cohort_id)] = dict(record)

    # ----- per batch ----------------------------------------------------------------------

    def submit(self, batch: Mapping[str, list[Item]]) -> None:
        """Process a sink's batch: per list, de-duplicate, compare, upsert, follow the jobs.

        With ``on_invalid_email: fail`` the batch is spooled to disk instead, and sent at the
        end only if no record was rejected for its email.

        Args:
            batch: Items per list name, in arrival order.
        """
        if self._spool is not None:
            self._spool.add(batch)
            return
        try:
            for list_name, items in batch.items():
                self._process(list_name, items)
        except BaseException as exc:
            self.fail(exc)
            raise
        self.progress()

    def _process(self, list_name: str, items: list[Item]) -> None:
        outcome = self.outcomes[list_name]
        repeats = self._require_seen().first_seen(
            list_name, [(item.email, item.origin()) for item in items]
        )
        fresh = []
        for position, item in enumerate(items):
            kept = repeats.get(position)
            if kept is None:
                fresh.append(item)
                continue
            outcome.rejected[DUPLICATE_EMAIL] += 1
            self._require_rejects().write(
                reason=DUPLICATE_EMAIL,
                message=f"same email (ignoring case) as {kept}, which was kept",
                stream=item.stream, list_name=list_name, keys=item.keys,
                record_number=item.record_number, values=item.contact,
            )
        if not fresh:
            return
        fields = self.require_fields()
        fields.ensure_created()
        to_send = []
        snapshot = self._snapshot(list_name) if self.settings.mirror else None
        if snapshot is not None and snapshot.size == 0:
            snapshot = None  # a new or empty list: every contact is new
        for item in fresh:
            contact = fields.with_ids(item.contact)
            if snapshot is not None and snapshot.compare(contact) == "unchanged":
                outcome.unchanged += 1
                continue
            to_send.append((item, contact))
        if to_send:
            self._pool(outcome, to_send)

    def _request_limit(self) -> int:
        return min(
            MAX_CONTACTS_PER_REQUEST, self.settings.batch_size_rows or MAX_CONTACTS_PER_REQUEST
        )

    def _pool(self, outcome: ListOutcome, to_send: list[tuple[Item, dict]]) -> None:
        """Queue contacts per list and send full requests only.

        On a mirror rerun each sink batch has only a few changed contacts; pooling them per
        list sends one request (and one job to wait for) instead of one per sink batch.
        """
        pool = self._pools.setdefault(outcome.name, [])
        pool.extend(to_send)
        self._pooled += len(to_send)
        limit = self._request_limit()
        while len(pool) >= limit:
            self._upsert(outcome, pool[:limit])
            del pool[:limit]
            self._pooled -= limit
        if self._pooled > POOL_CAP:
            self.flush_pools()

    def flush_pools(self) -> None:
        """Send every contact still pooled (end of input, or too many pooled)."""
        for list_name, pool in self._pools.items():
            if pool:
                self._upsert(self.outcomes[list_name], pool)
        self._pools.clear()
        self._pooled = 0

    def settle_before_state(self) -> bool:
        """Put everything received so far into SendGrid, so that STATE may be written.

        Returns:
            True when STATE may leave: every contact received is upserted and its job finished.
            False while contacts wait in the spool (``on_invalid_email: fail`` sends them only
            at the end), after the run failed, when a stop signal interrupted an upload, and
            always in a dry run (nothing was written, so Meltano must not save state that
            would make an incremental tap skip these records).
        """
        if self.failed or self._spool is not None or self.settings.dry_run:
            return False
        if self._uploader is not None and self._uploader.busy:
            # Re-entered from the SDK's termination handler in the middle of an upload.
            LOGGER.warning("Stopped in the middle of an upload: no STATE is written")
            return False
        try:
            self.flush_pools()
            self._settle_uploads()
        except BaseException as exc:
            self.fail(exc)
            raise
        return True

    def note_state(self, state: Mapping) -> None:
        """Remember the ``pending``/``held`` markers of a STATE received (to keep their ``since``).

        Args:
            state: The STATE value.
        """
        for cohort_id, markers in markers_in(state).items():
            seen = self._markers_seen.setdefault(cohort_id, {})
            for kind, marker in markers.items():
                seen.setdefault(kind, marker)

    def state_to_emit(self, state: dict) -> dict:
        """Return the STATE to write: every cohort whose list is not converged marked pending.

        Before the end of the input no list is final, so every cohort that arrived so far is
        pending in an intermediate STATE (a stop before its removal must not lose it).

        Args:
            state: The latest STATE value received.

        Returns:
            The STATE value to write.
        """
        judgement = self.judgement or self._judge(stopped=IN_PROGRESS)
        return mark_state(
            state, judgement.cohorts, seen=self._markers_seen, now=self.started_at
        )

    def _judge(self, *, stopped: str | None) -> Judgement:
        return judge(
            self.outcomes.values(), self.cohort_syncs, self.cohort_records,
            mirror=self.settings.mirror, stopped=stopped,
        )

    def _settle_uploads(self) -> None:
        """Wait until SendGrid finished every import job sent so far, and account for them."""
        if self._uploader is None:
            return
        unsettled, self._unsettled = self._unsettled, Counter()
        if not unsettled:
            self._uploader.settle()
            return
        lists = " and ".join(repr(name) for name in unsettled)
        plural = "s" if len(unsettled) > 1 else ""
        with self.activity.doing(
            f"upserting {sum(unsettled.values())} contacts into list{plural} {lists} "
            f"(waiting for SendGrid's import job{plural})"
        ):
            self._uploader.settle()

    def _snapshot(self, list_name: str) -> ListSnapshot:
        snapshot = self._snapshots.get(list_name)
        if snapshot is None:
            list_id = self._require_directory().find(list_name)
            if list_id is None:
                snapshot = ListSnapshot.empty(self._workdir)
            else:
                self.outcomes[list_name].list_id = list_id
                try:
                    with self.activity.doing(f"reading the export of list {list_name!r}"):
                        snapshot = ListSnapshot.load(
                            self.client, list_id,
                            custom_field_names=self.require_fields().names_by_id(),
                            workdir=self._workdir,
                            poll_interval=self.settings.job_poll_interval,
                            timeout=self.settings.job_timeout,
                        )
                except ExportError as exc:
                    # One unreadable list must not stop the others: upsert all its contacts
                    # (costs requests, loses nothing) and remove nobody from it this run.
                    LOGGER.warning(
                        "List %r: its export could not be read (%s); all its contacts are "
                        "upserted and nobody is removed from it in this run", list_name, exc,
                    )
                    self._unreadable[list_name] = str(exc)
                    snapshot = ListSnapshot.empty(self._workdir)
            self._snapshots[list_name] = snapshot
        return snapshot

    def _upsert(self, outcome: ListOutcome, to_send: list[tuple[Item, dict]]) -> None:
        if self.settings.dry_run:
            outcome.upserted += len(to_send)
            outcome.list_id = outcome.list_id or self._require_directory().find(outcome.name)
            return
        outcome.list_id = self._require_directory().find_or_create(outcome.name)
        with self.activity.doing(
            f"sending {len(to_send)} contacts to list {outcome.name!r} (SendGrid import)"
        ):
            # Not waited for here: jobs are followed while input flows, and settled before
            # any STATE and before any removal.
            self._require_uploader().send(outcome, outcome.list_id, to_send)
        self._unsettled[outcome.name] += len(to_send)

    # ----- end of input -------------------------------------------------------------------

    def finish(self) -> dict:
        """Send spooled contacts, mirror complete cohorts, report; then fail if asked to.

        Returns:
            The report.

        Raises:
            TooManyRejectionsError: SendGrid refused more contacts than allowed.
        """
        if self._finished:
            return {}
        try:
            self._replay_spool()
            self.flush_pools()
            self._settle_uploads()  # removal only once every upsert of every list finished
            self._register_synced_cohorts()
            self._ensure_cohort_lists()
            if self.settings.mirror:
                self._mirror_all()
            else:
                for outcome in self.outcomes.values():
                    outcome.removal, outcome.removal_reason = "not applicable", "sync_mode upsert"
        except BaseException as exc:
            self.fail(exc)
            raise
        self.judgement = self._judge(stopped=None)
        too_many = None
        if self.sendgrid_rejections > self.settings.max_sendgrid_rejections:
            too_many = (
                f"SendGrid refused {self.sendgrid_rejections} contacts (see the rejects file); "
                f"max_sendgrid_rejections allows {self.settings.max_sendgrid_rejections}."
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
            for outcome in self.outcomes.values():
                if outcome.removal == "not applicable":
                    outcome.removal_reason = "the run stopped before removal"
            # No STATE leaves after a failure: this is for the report and the log.
            self.judgement = self._judge(
                stopped="the run stopped before its list was brought to the cohort"
            )
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
        try:
            report = build_report(
                self.outcomes.values(),
                api_calls=self.client.calls,
                seconds=time.monotonic() - self.started,
                dry_run=self.settings.dry_run,
                sync_mode=self.settings.sync_mode,
                records_read=self.records_read,
                sendgrid_rejections_allowed=self.settings.max_sendgrid_rejections,
            )
            report["error"] = error
            self._add_convergence(report)
            LOGGER.info("%s", render_table(report))
            if self._rejects is not None and self._rejects.counts:
                LOGGER.info(
                    "Rejected records by reason: %s",
                    ", ".join(f"{k} {v}" for k, v in sorted(self._rejects.counts.items())),
                )
            if self.settings.report_path:
                write_report(self.settings.report_path, report)
        finally:
            self.close()
        return report

    def _add_convergence(self, report: dict) -> None:
        """Put pending and held cohorts in the report (per list and at the top) and the log."""
        judgement = self.judgement or self._judge(stopped=IN_PROGRESS)
        for entry in report["lists"]:
            verdict = judgement.lists.get(entry["list_name"])
            entry["pending"] = verdict.reason if verdict and verdict.status == PENDING else None
            entry["held"] = verdict.reason if verdict and verdict.status == HELD else None
        pending, held = [], []
        for cohort_id, verdict in sorted(judgement.cohorts.items()):
            if verdict.status not in (PENDING, HELD):
                continue
            seen = self._markers_seen.get(cohort_id, {}).get(verdict.status) or {}
            entry = {
                "cohort_id": cohort_id, "reason": verdict.reason,
                "since": seen.get("since") or self.started_at, "lists": list(verdict.lists),
            }
            if verdict.status == HELD:
                entry["apply"] = verdict.apply
            (pending if verdict.status == PENDING else held).append(entry)
        for cohort_id, markers in sorted(self._markers_seen.items()):
            marker = markers.get(HELD)
            if marker is not None and cohort_id not in judgement.cohorts:
                held.append({"cohort_id": cohort_id, **marker})  # still held from a past run
        report["pending"], report["held"] = pending, held
        log = LOGGER.info if self.settings.dry_run else LOGGER.warning
        after = (
            "dry run: no STATE is written" if self.settings.dry_run
            else "no STATE is written after a failure" if self.failed
            else "the STATE written marks it, so the next run downloads it again"
        )
        for entry in pending:
            log("Cohort %s pending since %s: %s (%s)", entry["cohort_id"], entry["since"],
                entry["reason"], after)
        for entry in held:
            log("Cohort %s: removal held by max_removal_ratio since %s: %s. It is not "
                "downloaded again until a person decides; to apply the removal, %s",
                entry["cohort_id"], entry.get("since"), entry.get("reason"),
                entry.get("apply") or "raise max_removal_ratio and download the cohort again")

    def _replay_spool(self) -> None:
        if self._spool is None:
            return
        spool, self._spool = self._spool, None
        for batch in spool.batches(self._request_limit()):
            self.submit(batch)

    def _cohort_state(self, cohort_id: str) -> tuple[bool, str]:
        return cohort_completeness(
            cohort_id, self.cohort_syncs.get(cohort_id), self.cohort_records[cohort_id]
        )

    def _register_synced_cohorts(self) -> None:
        # A complete cohort that delivered nobody still has (and, mirrored, empties) its list,
        # and a cohort the tap skipped or lost blocks removal on a list it shares with others.
        namer = ListNamer(
            list_name=self.settings.list_name, template=self.settings.list_name_template,
            stream=COHORT_MEMBERS_STREAM, has_cohort_fields=True,
        )
        for cohort_id, sync in self.cohort_syncs.items():
            list_name = self.cohort_lists.get(cohort_id) or namer.name_for(
                cohort_id, sync.get("cohort_name")
            )
            outcome = self.outcomes.get(list_name)
            if outcome is None:
                if sync.get("status") != "complete":
                    continue  # nothing arrived for it, and nothing may be removed
                outcome = self.outcomes[list_name] = ListOutcome(list_name)
            outcome.cohort_ids.add(cohort_id)

    def _ensure_cohort_lists(self) -> None:
        """Give every cohort that arrived its list, even with no valid contact (not in a dry run).

        Lists of streams without cohort fields are created only when a contact is sent.
        """
        directory = self._require_directory()
        for list_name, outcome in self.outcomes.items():
            outcome.list_id = outcome.list_id or directory.find(list_name)
            if (
                outcome.list_id is None
                and outcome.cohort_ids
                and list_name not in self.non_cohort_lists
                and not self.settings.dry_run
            ):
                outcome.list_id = directory.find_or_create(list_name)
                if self.settings.mirror and list_name not in self._snapshots:
                    self._snapshots[list_name] = ListSnapshot.empty(self._workdir)

    def _mirror_all(self) -> None:
        for list_name, outcome in self.outcomes.items():
            self._mirror_one(list_name, outcome)

    def _mirror_one(self, list_name: str, outcome: ListOutcome) -> None:
        if list_name in self.non_cohort_lists:
            outcome.removal = "skipped"
            outcome.removal_reason = (
                "fed by a stream without cohort fields (no completeness signal)"
            )
            return
        if self._skip_unreadable(list_name, outcome):
            return
        states = [self._cohort_state(c) for c in sorted(outcome.cohort_ids)]
        complete = bool(states) and all(ok for ok, _ in states)
        reasons = "; ".join(why for _, why in states)
        if not complete:
            outcome.removal = "skipped"
            outcome.removal_reason = "; ".join(why for ok, why in states if not ok)
            snapshot = self._snapshots.get(list_name)
            if snapshot is not None:
                decision = removal_decision(
                    list_size=snapshot.size, leavers=snapshot.count_leavers(),
                    cohort_complete=False, max_removal_ratio=self.settings.max_removal_ratio,
                )
                outcome.removal_reason += f" ({decision.reason})"
            LOGGER.info("List %r: no removal: %s", list_name, outcome.removal_reason)
            return
        if list_name not in self._snapshots and self._require_directory().find(list_name) is None:
            outcome.removal, outcome.removal_reason = "not applicable", "the list does not exist"
            return
        snapshot = self._snapshot(list_name)
        if self._skip_unreadable(list_name, outcome):
            return
        leavers = snapshot.count_leavers()
        decision = removal_decision(
            list_size=snapshot.size, leavers=leavers, cohort_complete=True,
            max_removal_ratio=self.settings.max_removal_ratio,
        )
        if not decision.allowed:
            # Only the guard refuses a complete cohort: a person's decision, not a fault.
            outcome.removal, outcome.removal_reason = "skipped", decision.reason
            outcome.held_share = leavers / snapshot.size if snapshot.size else 1.0
            LOGGER.warning("List %r: no removal: %s", list_name, decision.reason)
            return
        if leavers == 0:
            outcome.removal, outcome.removal_reason = "ran", f"{reasons}; {decision.reason}"
            return
        if self.settings.dry_run:
            outcome.removed = leavers
            outcome.removal = "dry run"
            outcome.removal_reason = f"{decision.reason}; would remove {leavers}"
            return
        with self.activity.doing(f"removing {leavers} leavers from list {list_name!r}"):
            outcome.removed = remove_from_list(
                self.client, outcome.list_id or self._require_directory().find(list_name) or "",
                snapshot.leavers(), poll_interval=self.settings.job_poll_interval,
                timeout=self.settings.job_timeout,
            )
        outcome.removal, outcome.removal_reason = "ran", f"{reasons}; {decision.reason}"

    def _skip_unreadable(self, list_name: str, outcome: ListOutcome) -> bool:
        # Its snapshot is empty, so it has no leavers; say so instead of "ran", and stay safe
        # should an empty snapshot ever report leavers.
        reason = self._unreadable.get(list_name)
        if reason is None:
            return False
        outcome.removal, outcome.removal_reason = "skipped", f"list export unreadable: {reason}"
        LOGGER.warning("List %r: no removal: %s", list_name, outcome.removal_reason)
        return True

    def close(self) -> None:
        """Release files and the temporary directory (safe to call twice)."""
        if self._uploader is not None:
            self._uploader.close()  # no more polls; the contacts it set aside go with the folder
        for snapshot in self._snapshots.values():
            snapshot.close()
        self._snapshots.clear()
        if self._spool is not None:
            self._spool.close()
            self._spool = None
        if self._seen is not None:
            self._seen.close()
            self._seen = None
        if self._rejects is not None:
            self._rejects.close()
        shutil.rmtree(self._workdir, ignore_errors=True)

    # ----- helpers ------------------------------------------------------------------------

    def _require_directory(self) -> ListDirectory:
        if self._directory is None:
            raise RuntimeError("SyncRun.start() was not called")
        return self._directory

    def _require_rejects(self) -> RejectsWriter:
        if self._rejects is None:
            raise RuntimeError("SyncRun.start() was not called")
        return self._rejects

    @property
    def sendgrid_rejections(self) -> int:
        """Contacts SendGrid refused so far."""
        return self._uploader.sendgrid_rejections if self._uploader else 0

    def _require_uploader(self) -> Uploader:
        if self._uploader is None:
            raise RuntimeError("SyncRun.start() was not called")
        return self._uploader

    def require_fields(self) -> CustomFields:
        """The run's custom fields (after :meth:`start`).

        Returns:
            The custom fields.

        Raises:
            RuntimeError: The run was not started.
        """
        if self.fields is None:
            raise RuntimeError("SyncRun.start() was not called")
        return self.fields

    def _require_seen(self) -> SeenEmails:
        if self._seen is None:
            raise RuntimeError("SyncRun.start() was not called")
        return self._seen

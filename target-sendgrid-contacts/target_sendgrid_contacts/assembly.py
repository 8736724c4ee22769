"""The one factory of a run: every part built, in order, before the first record arrives."""

from __future__ import annotations

import atexit
import datetime
import logging
from contextlib import ExitStack

from target_sendgrid_contacts.batching import MAX_CONTACTS_PER_REQUEST
from target_sendgrid_contacts.cohort_tracker import CohortTracker
from target_sendgrid_contacts.custom_fields import CustomFields
from target_sendgrid_contacts.duplicates import SeenEmails
from target_sendgrid_contacts.intake import COHORT_MEMBERS_STREAM, Intakes
from target_sendgrid_contacts.interruption import Activity
from target_sendgrid_contacts.list_names import ListNamer
from target_sendgrid_contacts.mirroring import ListMirror
from target_sendgrid_contacts.outcomes import Ledger
from target_sendgrid_contacts.rejects import RejectsWriter
from target_sendgrid_contacts.run import SyncRun
from target_sendgrid_contacts.sender import Sender
from target_sendgrid_contacts.sendgrid.client import SendGridClient
from target_sendgrid_contacts.sendgrid.lists import ListDirectory, check_access
from target_sendgrid_contacts.settings import Settings
from target_sendgrid_contacts.snapshots import ListSnapshots
from target_sendgrid_contacts.spool import Spool
from target_sendgrid_contacts.upserts import Uploader
from target_sendgrid_contacts.work_folders import create_work_folder, remove_work_folder
from target_sendgrid_contacts.writers import DryRunWriter, LiveWriter, Writer

LOGGER = logging.getLogger("target_sendgrid_contacts")


def start_run(settings: Settings, client: SendGridClient) -> SyncRun:
    """Check the key with a real call, read lists and fields, and build the run; nothing is written.

    Args:
        settings: The checked settings.
        client: The SendGrid client.

    Returns:
        The run, complete.

    Raises:
        SendGridAPIError: The key is invalid (401) or lacks Marketing permission (403).
        ValueError: A configured custom field is missing and may not be created.
    """
    started_at = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    check_access(client)
    directory = ListDirectory(client)
    fields = CustomFields(
        client,
        settings.custom_fields,
        create=settings.create_missing_custom_fields,
        dry_run=settings.dry_run,
    )
    workdir = create_work_folder()
    with ExitStack() as undo:  # a part that fails to build releases those built before it
        undo.callback(remove_work_folder, workdir)
        rejects = RejectsWriter(settings.rejects_path)
        undo.callback(rejects.close)
        activity = Activity()
        request_limit = min(MAX_CONTACTS_PER_REQUEST, settings.batch_size_rows)
        writer: Writer
        if settings.dry_run:
            writer = DryRunWriter(directory)
        else:
            uploader = Uploader(
                client,
                rejects,
                request_limit=request_limit,
                poll_interval=settings.job_poll_interval_seconds,
                timeout=settings.job_timeout_seconds,
                new_fields=lambda: fields.created_at is not None,
                max_in_flight=settings.max_jobs_in_flight,
                workdir=workdir,
            )
            writer = LiveWriter(
                client,
                directory,
                uploader,
                activity=activity,
                poll_interval=settings.job_poll_interval_seconds,
                timeout=settings.job_timeout_seconds,
            )
        undo.callback(writer.close)
        seen = SeenEmails(workdir / "seen.bin")
        undo.callback(seen.close)
        snapshots = ListSnapshots(
            client,
            directory,
            field_names=fields.names_by_id,
            workdir=workdir,
            poll_interval=settings.job_poll_interval_seconds,
            timeout=settings.job_timeout_seconds,
            activity=activity,
        )
        ledger = Ledger(mirror=settings.mirror)
        tracker = CohortTracker(
            ListNamer(
                list_name=settings.list_name,
                template=settings.list_name_template,
                stream=COHORT_MEMBERS_STREAM,
                has_cohort_fields=True,
            ),
            mirror=settings.mirror,
            started_at=started_at,
        )
        hold = Spool(workdir / "spool.jsonl") if settings.on_invalid_email == "fail" else None
        sender = Sender(
            ledger=ledger,
            fields=fields,
            seen=seen,
            rejects=rejects,
            snapshots=snapshots,
            writer=writer,
            request_limit=request_limit,
            compare=settings.mirror,
            hold=hold,
        )
        run = SyncRun(
            settings,
            client,
            ledger=ledger,
            tracker=tracker,
            intakes=Intakes(
                settings, fields=fields, ledger=ledger, tracker=tracker, rejects=rejects
            ),
            sender=sender,
            rejects=rejects,
            activity=activity,
            mirror=ListMirror(
                ledger=ledger,
                tracker=tracker,
                snapshots=snapshots,
                writer=writer,
                mirror=settings.mirror,
                max_removal_ratio=settings.max_removal_ratio,
            ),
            workdir=workdir,
        )
        undo.pop_all()
    atexit.register(run.close)  # also when a stop or a failure ends the run early
    LOGGER.info(
        "SendGrid key accepted; %d lists found; sync_mode=%s%s",
        directory.count,
        settings.sync_mode,
        " (dry run: nothing will be written)" if settings.dry_run else "",
    )
    return run

"""Writers: what reaches SendGrid. The live one sends; a dry run's records instead of sending.

Everything that differs in a dry run lives here, so the rest of the run does not ask.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Protocol

from target_sendgrid_contacts.interruption import Activity
from target_sendgrid_contacts.items import Item
from target_sendgrid_contacts.outcomes import ListOutcome
from target_sendgrid_contacts.removal import RemovalPlan, RemovalStatus
from target_sendgrid_contacts.sendgrid.client import SendGridClient
from target_sendgrid_contacts.sendgrid.lists import ListDirectory
from target_sendgrid_contacts.sendgrid.removals import remove_from_list
from target_sendgrid_contacts.upserts import Uploader

Sent = list[tuple[Item, dict]]  # items with the exact contact dict to send


class Writer(Protocol):
    """Upserts, list creation and removals, as SendGrid (or a dry run) sees them.

    Attributes:
        directory: The account's lists.
        writes: Whether anything reaches SendGrid (no STATE may leave otherwise).
    """

    directory: ListDirectory
    writes: bool

    def upsert(self, outcome: ListOutcome, to_send: Sent) -> None:
        """Send contacts to a list (their jobs are followed while input flows)."""

    def settle(self) -> None:
        """Wait until SendGrid finished every import job, and account for them."""

    def give_list(self, outcome: ListOutcome) -> bool:
        """Create a cohort's list that does not exist; True when it was created."""

    def remove(self, outcome: ListOutcome, plan: RemovalPlan, leavers: Iterator[str]) -> None:
        """Take the plan's leavers off the list and say so in the outcome."""

    @property
    def busy(self) -> bool:
        """Whether a call is under way (a signal may interrupt it)."""

    @property
    def contacts_sent(self) -> int:
        """Contacts in accepted requests."""

    @property
    def jobs_finished(self) -> int:
        """Import jobs followed to their end."""

    @property
    def sendgrid_rejections(self) -> int:
        """Contacts SendGrid refused."""

    def close(self) -> None:
        """Stop sending and following."""


class LiveWriter:
    """Writes to SendGrid."""

    writes = True

    def __init__(
        self,
        client: SendGridClient,
        directory: ListDirectory,
        uploader: Uploader,
        *,
        activity: Activity,
        poll_interval: float,
        timeout: float,
    ) -> None:
        """Create the writer.

        Args:
            client: The SendGrid client (removals).
            directory: The account's lists.
            uploader: Sends contacts and follows their jobs.
            activity: What the run is doing (for the line a signal leaves).
            poll_interval: First wait between removal job polls.
            timeout: Bound on one removal job.
        """
        self.directory = directory
        self._client = client
        self._uploader = uploader
        self._activity = activity
        self._poll_interval = poll_interval
        self._timeout = timeout
        self._unsettled: Counter[str] = Counter()  # contacts sent per list, jobs not settled

    def upsert(self, outcome: ListOutcome, to_send: Sent) -> None:
        """Send contacts to a list, creating it on first use.

        Args:
            outcome: The list's counts.
            to_send: Items with the contact to send.
        """
        outcome.list_id = self.directory.find_or_create(outcome.name)
        with self._activity.doing(
            f"sending {len(to_send)} contacts to list {outcome.name!r} (SendGrid import)"
        ):
            # Not waited for here: jobs are followed while input flows, and settled before
            # any STATE and before any removal.
            self._uploader.send(outcome, outcome.list_id, to_send)
        self._unsettled[outcome.name] += len(to_send)

    def settle(self) -> None:
        """Wait until SendGrid finished every import job sent so far, and account for them."""
        unsettled, self._unsettled = self._unsettled, Counter()
        if not unsettled:
            self._uploader.settle()
            return
        lists = " and ".join(repr(name) for name in unsettled)
        plural = "s" if len(unsettled) > 1 else ""
        with self._activity.doing(
            f"upserting {sum(unsettled.values())} contacts into list{plural} {lists} "
            f"(waiting for SendGrid's import job{plural})"
        ):
            self._uploader.settle()

    def give_list(self, outcome: ListOutcome) -> bool:
        """Create the list.

        Args:
            outcome: The list's counts (its ``list_id`` is set).

        Returns:
            True (it was created).
        """
        outcome.list_id = self.directory.find_or_create(outcome.name)
        return True

    def remove(self, outcome: ListOutcome, plan: RemovalPlan, leavers: Iterator[str]) -> None:
        """Remove the leavers, waiting for SendGrid's removal jobs.

        Args:
            outcome: The list's counts.
            plan: The removal plan (``remove`` leavers).
            leavers: Their contact ids.
        """
        with self._activity.doing(f"removing {plan.remove} leavers from list {outcome.name!r}"):
            outcome.removed = remove_from_list(
                self._client,
                outcome.list_id or self.directory.find(outcome.name) or "",
                leavers,
                poll_interval=self._poll_interval,
                timeout=self._timeout,
            )
        outcome.removal, outcome.removal_reason = plan.status, plan.reason

    @property
    def busy(self) -> bool:
        """Whether the uploader is in the middle of a call."""
        return self._uploader.busy

    @property
    def contacts_sent(self) -> int:
        """Contacts in accepted requests."""
        return self._uploader.contacts_sent

    @property
    def jobs_finished(self) -> int:
        """Import jobs followed to their end."""
        return self._uploader.jobs_finished

    @property
    def sendgrid_rejections(self) -> int:
        """Contacts SendGrid refused."""
        return self._uploader.sendgrid_rejections

    def close(self) -> None:
        """No more polls; the contacts the uploader set aside go with the run's folder."""
        self._uploader.close()


class DryRunWriter:
    """Records what would be written; writes nothing."""

    writes = False
    busy = False
    contacts_sent = 0
    jobs_finished = 0
    sendgrid_rejections = 0

    def __init__(self, directory: ListDirectory) -> None:
        """Create the writer.

        Args:
            directory: The account's lists (read only).
        """
        self.directory = directory

    def upsert(self, outcome: ListOutcome, to_send: Sent) -> None:
        """Count the contacts as upserted.

        Args:
            outcome: The list's counts.
            to_send: What would be sent.
        """
        outcome.upserted += len(to_send)
        outcome.list_id = outcome.list_id or self.directory.find(outcome.name)

    def settle(self) -> None:
        """Nothing was sent."""

    def give_list(self, outcome: ListOutcome) -> bool:
        """Create nothing.

        Args:
            outcome: Unused.

        Returns:
            False.
        """
        return False

    def remove(self, outcome: ListOutcome, plan: RemovalPlan, leavers: Iterator[str]) -> None:
        """Say who would be removed.

        Args:
            outcome: The list's counts.
            plan: The removal plan.
            leavers: Unused.
        """
        outcome.removed = plan.remove
        outcome.removal = RemovalStatus.DRY_RUN
        outcome.removal_reason = f"{plan.decision}; would remove {plan.remove}"

    def close(self) -> None:
        """Nothing to stop."""

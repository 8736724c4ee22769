"""The run's list snapshots: each list's export read once, on first need; unreadable ones noted."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from target_sendgrid_contacts.interruption import Activity
from target_sendgrid_contacts.outcomes import ListOutcome
from target_sendgrid_contacts.removal import Members
from target_sendgrid_contacts.sendgrid.client import SendGridClient
from target_sendgrid_contacts.sendgrid.exports import ExportError
from target_sendgrid_contacts.sendgrid.lists import ListDirectory
from target_sendgrid_contacts.snapshot import ListSnapshot

LOGGER = logging.getLogger("target_sendgrid_contacts")


class ListSnapshots:
    """One :class:`ListSnapshot` per list, read at most once per run."""

    def __init__(
        self,
        client: SendGridClient,
        directory: ListDirectory,
        *,
        field_names: Callable[[], dict[str, str]],
        workdir: Path,
        poll_interval: float,
        timeout: float,
        activity: Activity,
    ) -> None:
        """Prepare (nothing is read yet).

        Args:
            client: The SendGrid client.
            directory: The account's lists.
            field_names: Custom field id to name, asked when an export is read.
            workdir: The run's private folder.
            poll_interval: First wait between export polls.
            timeout: Bound on the wait for one export.
            activity: What the run is doing (for the line a signal leaves).
        """
        self._client = client
        self._directory = directory
        self._field_names = field_names
        self._workdir = workdir
        self._poll_interval = poll_interval
        self._timeout = timeout
        self._activity = activity
        self._snapshots: dict[str, ListSnapshot] = {}
        self._unreadable: dict[str, str] = {}  # list name -> why its export could not be read

    def __contains__(self, list_name: object) -> bool:
        """Whether the list's snapshot was read (or set empty) in this run."""
        return list_name in self._snapshots

    def of(self, outcome: ListOutcome) -> ListSnapshot:
        """The list's snapshot, its export read now if this is the first need.

        An export that cannot be read gives an empty snapshot (every contact is sent, nobody
        is removed) and is noted as unreadable: one list must not stop the others.

        Args:
            outcome: The list's counts (its ``list_id`` is filled in).

        Returns:
            The snapshot.
        """
        name = outcome.name
        snapshot = self._snapshots.get(name)
        if snapshot is not None:
            return snapshot
        list_id = self._directory.find(name)
        if list_id is None:
            snapshot = ListSnapshot.empty(self._workdir)
        else:
            outcome.list_id = list_id
            try:
                with self._activity.doing(f"reading the export of list {name!r}"):
                    snapshot = ListSnapshot.load(
                        self._client,
                        list_id,
                        custom_field_names=self._field_names(),
                        workdir=self._workdir,
                        poll_interval=self._poll_interval,
                        timeout=self._timeout,
                    )
            except ExportError as exc:
                LOGGER.warning(
                    "List %r: its export could not be read (%s); all its contacts are "
                    "upserted and nobody is removed from it in this run",
                    name,
                    exc,
                )
                self._unreadable[name] = str(exc)
                snapshot = ListSnapshot.empty(self._workdir)
        self._snapshots[name] = snapshot
        return snapshot

    def start_empty(self, list_name: str) -> None:
        """Note that a list was just created: it has no members.

        Args:
            list_name: The list.
        """
        if list_name not in self._snapshots:
            self._snapshots[list_name] = ListSnapshot.empty(self._workdir)

    def members(self, list_name: str) -> Members | None:
        """The snapshot's figures, when it was read.

        Args:
            list_name: The list.

        Returns:
            Size and leavers, or None.
        """
        snapshot = self._snapshots.get(list_name)
        if snapshot is None:
            return None
        return Members(snapshot.size, snapshot.count_leavers())

    def unreadable(self, list_name: str) -> str | None:
        """Why the list's export could not be read, if it could not.

        Args:
            list_name: The list.

        Returns:
            The reason, or None.
        """
        return self._unreadable.get(list_name)

    def close(self) -> None:
        """Close and delete every snapshot (safe to call twice)."""
        for snapshot in self._snapshots.values():
            snapshot.close()
        self._snapshots.clear()

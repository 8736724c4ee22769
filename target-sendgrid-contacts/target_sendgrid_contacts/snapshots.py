"""The run's list snapshots: exports started when a list is first seen, read in the background.

Each list's export is read while input goes on and used only once whole; unreadable ones noted.

Contacts of a list whose snapshot is not ready yet wait (``waiting.py``) and are compared once it
is; an export that cannot be read lets them all be sent and removes nobody.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

from target_sendgrid_contacts.interruption import Activity
from target_sendgrid_contacts.items import Item
from target_sendgrid_contacts.outcomes import ListOutcome
from target_sendgrid_contacts.removal import Members
from target_sendgrid_contacts.sendgrid.client import SendGridClient
from target_sendgrid_contacts.sendgrid.exports import ExportError
from target_sendgrid_contacts.sendgrid.lists import ListDirectory
from target_sendgrid_contacts.snapshot import Comparison, ListSnapshot
from target_sendgrid_contacts.snapshot_loading import SnapshotLoad
from target_sendgrid_contacts.waiting import Payload, WaitingContacts, decode
from target_sendgrid_contacts.writers import Sent

LOGGER = logging.getLogger("target_sendgrid_contacts")


class _Decoded:
    """Waiting payloads decoded on first need (most unchanged contacts never are)."""

    def __init__(self, payloads: list[Payload]) -> None:
        self._payloads = payloads
        self._pairs: dict[int, tuple[Item, dict]] = {}

    def pair(self, position: int) -> tuple[Item, dict]:
        pair = self._pairs.get(position)
        if pair is None:
            pair = self._pairs[position] = decode(self._payloads[position])
        return pair

    def contact(self, position: int) -> dict:
        return self.pair(position)[1]


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
        self._loads: dict[str, SnapshotLoad] = {}
        self._waiting = WaitingContacts(workdir)

    def __contains__(self, list_name: object) -> bool:
        """Whether the list's snapshot was read (or set empty) in this run."""
        return list_name in self._snapshots

    def begin(self, outcome: ListOutcome) -> None:
        """Start reading the list's export in the background, unless it was started already.

        Args:
            outcome: The list's counts (its ``list_id`` is filled in).
        """
        name = outcome.name
        if name in self._snapshots or name in self._loads:
            return
        list_id = self._directory.find(name)
        if list_id is None:
            self._snapshots[name] = ListSnapshot.empty(self._workdir)
            return
        outcome.list_id = list_id
        self._loads[name] = SnapshotLoad(
            self._client,
            list_id,
            custom_field_names=self._field_names(),
            workdir=self._workdir,
            poll_interval=self._poll_interval,
            timeout=self._timeout,
        )

    def compare(self, outcome: ListOutcome, pairs: Sent) -> Iterator[Sent]:
        """Compare contacts with their list; those read before its snapshot is ready wait.

        Unchanged contacts are counted in ``outcome``; the rest come back to be sent.

        Args:
            outcome: The list's counts.
            pairs: De-duplicated ``(item, contact)`` pairs of the list (contact keyed by ids).

        Yields:
            Batches of pairs to send: every contact that waited for the list, then ``pairs``;
            nothing while the export is still being read.
        """
        name = outcome.name
        self.begin(outcome)
        load = self._loads.get(name)
        if load is not None and not load.ready:
            prehashed = load.hashes.prehash_many([contact for _, contact in pairs])
            self._waiting.add(name, prehashed, pairs)
            return
        if name in self._waiting:
            yield from self._release(outcome)
        snapshot = self.of(outcome)
        if snapshot.size == 0:  # a new or empty list (or an unreadable export): all are new
            yield pairs
            return
        verdicts = snapshot.compare_many([contact for _, contact in pairs])
        yield self._to_send(outcome, pairs, verdicts)

    def release_waiting(self, outcomes: Mapping[str, ListOutcome]) -> Iterator[tuple[str, Sent]]:
        """Compare every waiting contact (waiting for its snapshot if need be).

        Args:
            outcomes: Counts per list name.

        Yields:
            ``(list name, pairs to send)``, in arrival order per list.
        """
        for name in self._waiting.lists():
            for to_send in self._release(outcomes[name]):
                yield name, to_send

    def _release(self, outcome: ListOutcome) -> Iterator[Sent]:
        snapshot = self.of(outcome)
        LOGGER.info(
            "List %s: %d contacts read while its export was read are compared now",
            outcome.list_id,
            self._waiting.counts.get(outcome.name, 0),
        )
        for prehashed, payloads in self._waiting.take(outcome.name):
            if snapshot.size == 0:
                yield [decode(payload) for payload in payloads]
                continue
            lazy = _Decoded(payloads)
            verdicts = snapshot.compare_prehashed(prehashed, lazy.contact)
            outcome.unchanged += verdicts.count("unchanged")
            yield [lazy.pair(at) for at, verdict in enumerate(verdicts) if verdict != "unchanged"]

    @staticmethod
    def _to_send(outcome: ListOutcome, pairs: Sent, verdicts: list[Comparison]) -> Sent:
        outcome.unchanged += verdicts.count("unchanged")
        return [
            pair for pair, verdict in zip(pairs, verdicts, strict=True) if verdict != "unchanged"
        ]

    def of(self, outcome: ListOutcome) -> ListSnapshot:
        """The list's snapshot, waiting for its export if it is still being read.

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
        self.begin(outcome)
        snapshot = self._snapshots.get(name)
        if snapshot is not None:
            return snapshot
        load = self._loads[name]  # kept until it answered: close() stops it on a signal
        try:
            with self._activity.doing(f"reading the export of list {name!r}"):
                snapshot = load.result()
            del self._loads[name]
            snapshot.log_absent()
            LOGGER.info("Snapshot of list %s: %d members", outcome.list_id, snapshot.size)
        except ExportError as exc:
            LOGGER.warning(
                "List %r: its export could not be read (%s); all its contacts are "
                "upserted and nobody is removed from it in this run",
                name,
                exc,
            )
            del self._loads[name]
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
        """Stop every export read, close and delete every snapshot (safe to call twice)."""
        for load in self._loads.values():
            load.cancel()
        self._loads.clear()
        self._waiting.close()
        for snapshot in self._snapshots.values():
            snapshot.close()
        self._snapshots.clear()

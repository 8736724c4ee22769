"""Contacts that wait for their list's snapshot: in memory up to a bound, then in a private file.

While a list's export is read in the background the run keeps taking input; the contacts of
that list wait here and are compared once the snapshot is there. The files hold personal data:
they live in the run's private folder (0700), are created 0600 and deleted once read back.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import msgspec

from target_sendgrid_contacts.items import Item

MEMORY_LIMIT = 20_000  # contacts kept in memory across all lists; more go to disk
READ_BACK_BATCH = 10_000

_ENCODER = msgspec.json.Encoder()


class WaitingContacts:
    """Per list, the contacts read before the list's snapshot was ready, in arrival order."""

    def __init__(self, workdir: Path, *, memory_limit: int | None = None) -> None:
        """Prepare (no file is created until the memory bound is reached).

        Args:
            workdir: The run's private folder.
            memory_limit: Contacts kept in memory before they go to disk (default
                ``MEMORY_LIMIT``).
        """
        self._workdir = Path(workdir)
        self._memory_limit = MEMORY_LIMIT if memory_limit is None else memory_limit
        self._in_memory: dict[str, list[Item]] = {}
        self._held = 0
        self._files: dict[str, tuple[Path, BinaryIO]] = {}
        self.counts: dict[str, int] = {}

    def __contains__(self, list_name: object) -> bool:
        """Whether contacts of the list wait."""
        return isinstance(list_name, str) and bool(self.counts.get(list_name))

    def add(self, list_name: str, items: list[Item]) -> None:
        """Let contacts wait.

        Args:
            list_name: Their list.
            items: The contacts.
        """
        self.counts[list_name] = self.counts.get(list_name, 0) + len(items)
        if list_name in self._files or self._held + len(items) > self._memory_limit:
            self._to_disk(list_name, items)
            return
        self._in_memory.setdefault(list_name, []).extend(items)
        self._held += len(items)

    def _to_disk(self, list_name: str, items: list[Item]) -> None:
        entry = self._files.get(list_name)
        if entry is None:
            path = self._workdir / f"waiting-{len(self._files)}-{os.getpid()}.jsonl"
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            entry = (path, os.fdopen(descriptor, "wb"))
            self._files[list_name] = entry
        entry[1].write(b"\n".join(_ENCODER.encode(tuple(item)) for item in items) + b"\n")

    def take(self, list_name: str) -> Iterator[list[Item]]:
        """Hand the list's contacts back, in arrival order, in batches; forget them.

        Args:
            list_name: The list.

        Yields:
            Batches of contacts.
        """
        self.counts.pop(list_name, None)
        items = self._in_memory.pop(list_name, [])
        self._held -= len(items)
        if items:
            yield items
        entry = self._files.pop(list_name, None)
        if entry is None:
            return
        path, file = entry
        file.close()
        try:
            decoder = msgspec.json.Decoder()
            batch: list[Item] = []
            with path.open("rb") as spooled:
                for line in spooled:
                    batch.append(Item(*decoder.decode(line)))
                    if len(batch) >= READ_BACK_BATCH:
                        yield batch
                        batch = []
            if batch:
                yield batch
        finally:
            path.unlink(missing_ok=True)

    def lists(self) -> list[str]:
        """The lists with waiting contacts.

        Returns:
            List names, in the order their first contact waited.
        """
        return [name for name, count in self.counts.items() if count]

    def close(self) -> None:
        """Drop every waiting contact and delete the files (safe to call twice)."""
        for path, file in self._files.values():
            file.close()
            path.unlink(missing_ok=True)
        self._files.clear()
        self._in_memory.clear()
        self.counts.clear()
        self._held = 0

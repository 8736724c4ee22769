"""The spool of ``on_invalid_email: fail``: valid contacts wait on disk until the input ends."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

import msgspec

from target_sendgrid_contacts.items import Item

_ENCODER = msgspec.json.Encoder()


class Spool:
    """Append-only file of (list name, item) lines, read back in batches."""

    def __init__(self, path: Path) -> None:
        """Create the spool file.

        Args:
            path: File inside the run's temporary directory.
        """
        self.path = path
        self._file = path.open("wb")

    def add(self, batch: Mapping[str, list[Item]]) -> None:
        """Append a sink batch.

        Args:
            batch: Items per list name.
        """
        for list_name, items in batch.items():
            for item in items:
                self._file.write(_ENCODER.encode((list_name, *item)) + b"\n")

    def batches(self, size: int) -> Iterator[dict[str, list[Item]]]:
        """Read everything back, in order, in batches of at most ``size`` items.

        Args:
            size: Items per batch.

        Yields:
            Items per list name.
        """
        self._file.close()
        decoder = msgspec.json.Decoder()
        batch: dict[str, list[Item]] = {}
        pending = 0
        with self.path.open("rb") as spooled:
            for line in spooled:
                list_name, *fields = decoder.decode(line)
                batch.setdefault(list_name, []).append(Item(*fields))
                pending += 1
                if pending >= size:
                    yield batch
                    batch, pending = {}, 0
        if batch:
            yield batch

    def close(self) -> None:
        """Close the file (the run's directory is removed with it)."""
        self._file.close()

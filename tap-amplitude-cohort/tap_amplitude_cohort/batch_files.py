"""Singer BATCH files written straight from the export: JSON lines in a private folder.

The SDK's own batch path runs every record through its per-record machinery and gzips at level
9; here records go from the CSV parser through msgspec into the file a thousand at a time, as
structs that encode to the records' exact JSON (``members.record_structs``). The
files are what the SDK's ``jsonl`` encoding defines (one raw record per line, optionally gzip),
so any SDK target reads them with ``process_batch_files``.

The files hold members' personal data: the folder is created 0700 (an existing folder that
others can read is refused) and each file 0600. A file that could not be finished is removed;
a finished file is named in a BATCH message and from then on belongs to the target.
"""

from __future__ import annotations

import gzip
import io
import itertools
import os
import stat
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

import msgspec

if TYPE_CHECKING:
    from singer_sdk.helpers._batch import BatchConfig

ENCODE_CHUNK = 1_000  # records per msgspec call: amortises the call, keeps memory flat
COMPRESS_LEVEL = 1  # the files live for minutes; level 9 costs ~4x the CPU for ~25 % less disk
COMPRESSIONS = {"gzip": ".json.gz", None: ".jsonl", "": ".jsonl", "none": ".jsonl"}


class BatchFolderError(Exception):
    """The batch folder is not private (or cannot be made so)."""


def local_folder(batch_config: BatchConfig) -> Path | None:
    """Return the local folder of a ``file://`` (or plain path) storage root, else None.

    Resolved exactly as the SDK resolves it (relative roots against the working directory),
    so the URLs in the BATCH messages are the ones the SDK would write.
    """
    url = batch_config.storage.get_url("probe")
    parts = urlsplit(url)
    if parts.scheme != "file":
        return None
    return Path(unquote(parts.path)).parent


def fast_path_refusal(batch_config: BatchConfig) -> str | None:
    """Return why these files cannot be written here (the SDK's batcher then does), or None."""
    encoding = batch_config.encoding
    if encoding.format != "jsonl":
        return f"encoding format {encoding.format!r} (only jsonl is written directly)"
    if encoding.compression not in COMPRESSIONS:
        return f"compression {encoding.compression!r} (only gzip or none)"
    if local_folder(batch_config) is None:
        return f"storage root {batch_config.storage.root!r} is not a local file:// folder"
    return None


def ensure_private_folder(folder: Path) -> None:
    """Create ``folder`` with mode 0700, or check that an existing one is private.

    Raises:
        BatchFolderError: If the folder is readable, writable or searchable by group or others,
            or is not a directory.
    """
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        mode = folder.stat().st_mode
    except OSError as exc:
        msg = f"cannot create the batch folder {folder}: {exc.strerror or exc}"
        raise BatchFolderError(msg) from exc
    if not stat.S_ISDIR(mode):
        msg = f"the batch folder {folder} is not a directory"
        raise BatchFolderError(msg)
    if mode & 0o077:
        msg = (
            f"the batch folder {folder} is open to other users (mode {stat.S_IMODE(mode):04o}); "
            f"its files would hold members' personal data. Run `chmod 700 {folder}` or point "
            "batch_config.storage.root at a private folder."
        )
        raise BatchFolderError(msg)


class BatchFileWriter:
    """Writes records into files of at most ``batch_size`` records; yields each file's URL.

    Args:
        batch_config: The SDK batch config (local ``file://`` root, jsonl, gzip or none).
        tap_name: Used in file names, as the SDK names them.
        stream_name: Likewise.
    """

    def __init__(self, batch_config: BatchConfig, *, tap_name: str, stream_name: str) -> None:
        folder = local_folder(batch_config)
        if folder is None:  # pragma: no cover - guarded by fast_path_refusal
            msg = "BatchFileWriter needs a local file:// storage root"
            raise ValueError(msg)
        self.folder = folder
        self.batch_size = max(1, int(batch_config.batch_size))
        self.gzip = batch_config.encoding.compression == "gzip"
        self.suffix = COMPRESSIONS[batch_config.encoding.compression]
        self.prefix = batch_config.storage.prefix or ""
        self.sync_id = f"{tap_name}--{stream_name}-{uuid.uuid4()}"
        self._encoder = msgspec.json.Encoder()
        self._files = 0

    def write(self, records: Iterable[Any]) -> Iterator[tuple[str, int]]:
        """Write ``records`` to as many files as needed; yield each file once closed.

        The folder is made private before the first file. An exception from ``records`` or from
        the disk removes the file being written and propagates; files already yielded stay.

        Args:
            records: The records (dicts, or structs msgspec encodes as the same JSON),
                consumed lazily.

        Yields:
            ``(file:// URL, records in it)`` of each finished file (none for no records).
        """
        ensure_private_folder(self.folder)
        iterator = iter(records)
        while True:
            first = list(itertools.islice(iterator, min(ENCODE_CHUNK, self.batch_size)))
            if not first:
                return
            yield self._write_file(first, iterator)

    def _write_file(self, first: list[Any], rest: Iterator[Any]) -> tuple[str, int]:
        self._files += 1
        path = self.folder / f"{self.prefix}{self.sync_id}-{self._files}{self.suffix}"
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)  # a prefix may name a subfolder
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as raw:
                out: io.BufferedIOBase = raw
                if self.gzip:
                    out = gzip.GzipFile(
                        filename="", fileobj=raw, mode="wb", compresslevel=COMPRESS_LEVEL, mtime=0
                    )
                with out:
                    chunk, written = first, 0
                    while chunk:
                        out.write(self._encoder.encode_lines(chunk))
                        written += len(chunk)
                        want = min(ENCODE_CHUNK, self.batch_size - written)
                        chunk = list(itertools.islice(rest, want)) if want else []
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return path.as_uri(), written

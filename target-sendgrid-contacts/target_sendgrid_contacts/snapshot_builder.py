"""The snapshot builder process: parse, hash and store saved export files on the other core.

Started as ``python -m target_sendgrid_contacts.snapshot_builder`` (not a multiprocessing
``spawn``, which would re-import the target and singer_sdk first: about a CPU-second before any
row is read). The request, hash key included, arrives on stdin; the answer leaves on stdout;
both are msgpack. stderr is discarded by the parent: nothing here may reach a log.
"""

from __future__ import annotations

import gc
import sys
from pathlib import Path

import msgspec

from target_sendgrid_contacts.sendgrid.exports import ExportDownloadError, read_export_columns
from target_sendgrid_contacts.snapshot import ListSnapshot


class BuildRequest(msgspec.Struct, frozen=True):
    """What the builder needs.

    Attributes:
        paths: The saved export files, in order.
        list_id: The exported list.
        status: The ready export's status JSON.
        slots: Field key to slot number.
        columns: Export column of each slot.
        path: The snapshot's contact ids file (it and its companions are kept for the parent).
        key: The run's hash key.
    """

    paths: list[str]
    list_id: str
    status: dict
    slots: dict[str, int]
    columns: list[str]
    path: str
    key: bytes


Answer = tuple  # ("ok", size, absent columns) | ("download", message) | ("error", type name)


def build(request: BuildRequest) -> Answer:
    """Fill the snapshot's files and its lookup file; say how it went.

    Messages carry no email: they come from :func:`read_export_columns`.

    Args:
        request: The build request.

    Returns:
        ``("ok", size, absent columns)``, ``("download", message)`` for a truncated or corrupt
        file (the parent reads the export again) or ``("error", exception type name)``.
    """
    try:
        snapshot = ListSnapshot(Path(request.path), request.slots, key=request.key)
        try:
            snapshot.fill(
                read_export_columns(
                    [Path(p) for p in request.paths],
                    request.list_id,
                    request.status,
                    request.columns,
                )
            )
        except BaseException:
            snapshot.close()
            raise
        snapshot.dump_lookup()
        snapshot.detach()
        return ("ok", snapshot.size, sorted(snapshot.absent))
    except ExportDownloadError as exc:
        return ("download", str(exc))
    except Exception as exc:  # noqa: BLE001  (the parent turns it into "no snapshot")
        return ("error", type(exc).__name__)


def main() -> None:
    """Read one request from stdin, build, write the answer to stdout."""
    # Millions of short-lived rows and no cycles: the collector would only add a tenth.
    gc.disable()
    request = msgspec.msgpack.decode(sys.stdin.buffer.read(), type=BuildRequest)
    sys.stdout.buffer.write(msgspec.msgpack.encode(build(request)))
    sys.stdout.buffer.flush()


if __name__ == "__main__":
    main()

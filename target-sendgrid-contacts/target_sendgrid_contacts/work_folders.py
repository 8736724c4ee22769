"""The run's private work folder, and those that killed runs left behind.

A run's folder holds personal data (contacts of pending jobs, contacts waiting for a snapshot,
export files). A run that ends in any other way removes it; one that is killed (SIGKILL, the
machine stopping) cannot. So each folder carries a lock its run holds while it lives: the next
run to start removes every folder of this target whose lock nobody holds. A lock, unlike a
process id, cannot be mistaken for another process's, also across containers sharing ``/tmp``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

_lock: Callable[[int], None] | None
try:
    import fcntl

    def _lock(descriptor: int) -> None:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)  # OSError when another holds it

except ImportError:  # not POSIX: folders are still private and removed; killed runs' stay
    _lock = None

LOGGER = logging.getLogger("target_sendgrid_contacts")

PREFIX = "target-sendgrid-"
LOCK_NAME = ".run.lock"
_held: dict[Path, int] = {}  # folder -> descriptor of its held lock


def create_work_folder(base: Path | None = None) -> Path:
    """Remove folders of killed runs, then create this run's (0700), its lock held.

    Args:
        base: Where the folders live (default: the system's temporary directory).

    Returns:
        The new folder.
    """
    removed = remove_abandoned(base)
    if removed:
        LOGGER.info("Removed %d work folder(s) left behind by killed runs of this target", removed)
    folder = Path(tempfile.mkdtemp(prefix=PREFIX, dir=base))
    if _lock is not None:
        # Locked under another name first, then renamed: a folder is never seen with its
        # lock file present and not yet held.
        pending = folder / f"{LOCK_NAME}.new"
        descriptor = os.open(pending, os.O_CREAT | os.O_RDWR, 0o600)
        _lock(descriptor)
        pending.rename(folder / LOCK_NAME)
        _held[folder] = descriptor
    return folder


def remove_work_folder(folder: Path) -> None:
    """Remove a run's folder and release its lock (safe to call twice).

    Args:
        folder: From :func:`create_work_folder`.
    """
    shutil.rmtree(folder, ignore_errors=True)
    descriptor = _held.pop(folder, None)
    if descriptor is not None:
        os.close(descriptor)


def remove_abandoned(base: Path | None = None) -> int:
    """Remove this user's work folders whose run no longer holds their lock.

    Folders without a lock file (another version of the target, or one being created) are
    left alone.

    Args:
        base: Where the folders live (default: the system's temporary directory).

    Returns:
        How many folders were removed.
    """
    if _lock is None:
        return 0
    removed = 0
    for folder in Path(base or tempfile.gettempdir()).glob(f"{PREFIX}*"):
        lock = folder / LOCK_NAME
        try:
            if folder in _held or folder.stat().st_uid != os.getuid():
                continue
            descriptor = os.open(lock, os.O_RDWR)
        except OSError:
            continue  # no lock file, or not ours to open
        try:
            try:
                _lock(descriptor)
            except OSError:
                continue  # its run is alive
            shutil.rmtree(folder, ignore_errors=True)
            removed += 1
        finally:
            with contextlib.suppress(OSError):
                os.close(descriptor)
    return removed

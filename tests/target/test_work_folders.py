"""A killed run's work folder (personal data) is removed by the next run; a live run's never."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from target_sendgrid_contacts.work_folders import (
    LOCK_NAME,
    PREFIX,
    create_work_folder,
    remove_abandoned,
    remove_work_folder,
)

HOLD = """
import sys, time
from pathlib import Path
from target_sendgrid_contacts.work_folders import create_work_folder
folder = create_work_folder(Path(sys.argv[1]))
(folder / "pending-1.msgpack").write_bytes(b"contacts")
print(folder, flush=True)
time.sleep(120)
"""


def _start_holder(base: Path) -> tuple[subprocess.Popen, Path]:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(base)], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None
    return holder, Path(holder.stdout.readline().strip())


def test_a_killed_runs_folder_goes_and_a_live_runs_stays(tmp_path):
    live, live_folder = _start_holder(tmp_path)
    killed, killed_folder = _start_holder(tmp_path)
    try:
        assert remove_abandoned(tmp_path) == 0  # both runs alive: nothing touched
        assert (killed_folder / "pending-1.msgpack").exists()
        killed.send_signal(signal.SIGKILL)
        killed.wait(timeout=10)
        mine = create_work_folder(tmp_path)  # what a run does first
        assert not killed_folder.exists()
        assert (live_folder / "pending-1.msgpack").exists()
        assert (mine / LOCK_NAME).exists()
        assert remove_abandoned(tmp_path) == 0  # this run's own folder is held
        remove_work_folder(mine)
        assert not mine.exists()
        remove_work_folder(mine)  # twice is harmless
    finally:
        live.kill()
        live.wait(timeout=10)
    assert remove_abandoned(tmp_path) == 1
    assert not live_folder.exists()


def test_folders_without_a_lock_are_left_alone(tmp_path):
    other = tmp_path / f"{PREFIX}older"  # an older target's, or another tool's
    other.mkdir()
    (other / "seen.bin").write_bytes(b"x")
    unrelated = tmp_path / "something-else"
    unrelated.mkdir()
    assert remove_abandoned(tmp_path) == 0
    assert (other / "seen.bin").exists()
    assert unrelated.exists()

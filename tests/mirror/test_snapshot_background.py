"""The list's export is read in the background: input goes on, waiting contacts are compared."""

from __future__ import annotations

import os
import stat
from array import array

import pytest
from target_sendgrid_contacts import snapshot_loading, waiting
from target_sendgrid_contacts.items import Item
from target_sendgrid_contacts.snapshot import Prehashed
from target_sendgrid_contacts.waiting import WaitingContacts, decode

from .sync import TargetRunner, list_emails, list_name, singer_input

COHORT = "trlrsk2"
EXPORT_FILES = r"^/files/.*/contacts\."


@pytest.fixture
def waits(monkeypatch):
    """Count the contacts that waited for a snapshot (the real store keeps them)."""
    counted: list[int] = []
    real_add = WaitingContacts.add

    def add(self, list_name, prehashed, pairs):
        counted.append(len(pairs))
        real_add(self, list_name, prehashed, pairs)

    monkeypatch.setattr(WaitingContacts, "add", add)
    monkeypatch.setattr(waiting, "MEMORY_LIMIT", 3)  # so most of them wait on disk
    return counted


def _synced_then_churned(sb, runner: TargetRunner) -> tuple[set[str], set[str]]:
    assert runner.run(singer_input(sb, [COHORT])).error is None
    before = sb.generator.expected_emails(COHORT)
    sb.generator.churn(COHORT, remove=20, add=5)
    after = sb.generator.expected_emails(COHORT)
    assert before - after
    assert after - before
    return before, after


@pytest.mark.integration
@pytest.mark.parametrize("builder_process", [False, True], ids=["in-thread", "builder-process"])
def test_contacts_read_while_the_export_is_pending_are_still_compared(
    sandbox_factory, tmp_path, waits, monkeypatch, builder_process
):
    if builder_process:
        monkeypatch.setattr(snapshot_loading, "BUILDER_MIN_CONTACTS", 0)
    slow = sandbox_factory(export_delay_seconds=1.0)
    runner = TargetRunner(slow, tmp_path, batch_size_rows=40)
    before, after = _synced_then_churned(slow, runner)
    waits.clear()

    result = runner.run(singer_input(slow, [COHORT]), batch_size_rows=40)

    assert result.error is None
    assert sum(waits) > 40  # several batches arrived while the export was pending
    entry = result.list_entry(list_name(slow, COHORT))
    assert entry["upserted"] == len(after - before)  # only the joiners were sent
    assert entry["unchanged"] == len(after & before)
    assert entry["removed"] == len(before - after)
    assert list_emails(slow, COHORT) == after
    assert not [p for p in runner.workdir.iterdir() if p.name.startswith("waiting-")]


@pytest.mark.integration
def test_an_export_that_fails_after_input_waited_sends_everyone_and_removes_nobody(
    sandbox_factory, tmp_path, waits
):
    slow = sandbox_factory(export_delay_seconds=1.0)
    runner = TargetRunner(slow, tmp_path, batch_size_rows=40)
    before, after = _synced_then_churned(slow, runner)
    waits.clear()
    # Both readings of the file are not the CSV expected: unreadable once the contacts waited.
    slow.faults.add("storage", "GET", EXPORT_FILES, times=None, status=200, body="not,a,csv\n")

    result = runner.run(singer_input(slow, [COHORT]), batch_size_rows=40)

    assert sum(waits) > 40
    entry = result.list_entry(list_name(slow, COHORT))
    assert entry["upserted"] == len(after)  # every waiting contact was sent
    assert entry["removed"] == 0
    assert entry["removal"] == "skipped"
    assert result.count("DELETE", "/v3/marketing/lists/") == 0
    assert list_emails(slow, COHORT) == before | after


def _waiting(*numbers: int) -> tuple[Prehashed, list]:
    items = [
        Item(f"m{n}@example.com", {"email": f"m{n}@example.com"}, "cohort_members", n, {})
        for n in numbers
    ]
    prehashed = Prehashed(
        array("q", numbers), array("q", [-n for n in numbers]), bytearray([3] * len(numbers))
    )
    return prehashed, [(item, {"email": item.email}) for item in items]


def _numbers(batches) -> list[tuple[int, int, int]]:
    return [
        (email_key, row_key, decode(payload)[0].record_number)
        for prehashed, payloads in batches
        for email_key, row_key, payload in zip(
            prehashed.email_keys, prehashed.row_keys, payloads, strict=True
        )
    ]


def test_waiting_contacts_come_back_in_order_and_their_files_are_private_and_deleted(tmp_path):
    store = WaitingContacts(tmp_path, memory_limit=2)
    store.add("a", *_waiting(1, 2))
    store.add("b", *_waiting(3))  # past the bound: on disk
    store.add("a", *_waiting(4, 5))
    files = sorted(tmp_path.iterdir())
    assert files
    assert all(stat.S_IMODE(os.stat(f).st_mode) == 0o600 for f in files)

    assert store.lists() == ["a", "b"]
    assert _numbers(store.take("a")) == [(n, -n, n) for n in (1, 2, 4, 5)]
    assert _numbers(store.take("b")) == [(3, -3, 3)]
    assert store.lists() == []
    assert not list(tmp_path.iterdir())


def test_many_waiting_contacts_on_disk_come_back_whole(tmp_path):
    store = WaitingContacts(tmp_path, memory_limit=0)
    store.add("a", *_waiting(*range(1, 31)))
    store.add("a", *_waiting(*range(31, 51)))
    assert _numbers(store.take("a")) == [(n, -n, n) for n in range(1, 51)]
    assert not list(tmp_path.iterdir())

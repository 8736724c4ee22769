"""A list whose export cannot be read is upserted whole, removes nobody, and stops no other list."""

from __future__ import annotations

import logging

import pytest

from .sync import TargetRunner, list_emails, list_name, singer_input

pytestmark = pytest.mark.integration

BROKEN, OTHER = "trlrsk2", "pwrusr1"  # BROKEN comes first: its export is the first one read
EXPORT_STATUS = r"/v3/marketing/contacts/exports/[^/]+$"


def test_an_unreadable_export_spares_its_list_and_the_others_sync(sandbox, tmp_path, caplog):
    runner = TargetRunner(sandbox, tmp_path)
    assert runner.run(singer_input(sandbox, [BROKEN, OTHER])).error is None
    before = {cid: list_emails(sandbox, cid) for cid in (BROKEN, OTHER)}
    for cid in (BROKEN, OTHER):
        sandbox.generator.churn(cid, remove=15, add=5)
    after = {cid: sandbox.generator.expected_emails(cid) for cid in (BROKEN, OTHER)}
    assert all(before[cid] - after[cid] and after[cid] - before[cid] for cid in after)

    # The first export status poll (BROKEN's list) says the export failed.
    rule = sandbox.faults.add(
        "sendgrid",
        "GET",
        EXPORT_STATUS,
        times=1,
        status=200,
        body={"id": "x", "status": "failure", "message": "export could not be generated"},
    )
    with caplog.at_level(logging.INFO):
        result = runner.run(singer_input(sandbox, [BROKEN, OTHER]))

    assert rule.hits == 1
    assert result.error is None
    # Nobody left the broken list, its joiners arrived; the other list is mirrored as usual.
    assert list_emails(sandbox, BROKEN) == before[BROKEN] | after[BROKEN]
    assert list_emails(sandbox, OTHER) == after[OTHER]
    broken = result.list_entry(list_name(sandbox, BROKEN))
    assert broken["removed"] == 0
    assert broken["removal"] == "skipped"
    assert broken["removal_reason"].startswith("list export unreadable: ")
    assert "export could not be generated" in broken["removal_reason"]
    assert broken["upserted"] == len(after[BROKEN])  # no snapshot: every contact is sent
    assert result.list_entry(list_name(sandbox, OTHER))["removed"] == len(
        before[OTHER] - after[OTHER]
    )
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(list_name(sandbox, BROKEN) in w and "export" in w for w in warnings)
    assert not any("@" in w for w in warnings)

    rerun = runner.run(singer_input(sandbox, [BROKEN, OTHER]))
    assert rerun.error is None
    assert list_emails(sandbox, BROKEN) == after[BROKEN]
    assert rerun.list_entry(list_name(sandbox, BROKEN))["removed"] == len(
        before[BROKEN] - after[BROKEN]
    )
    assert list_emails(sandbox, OTHER) == after[OTHER]

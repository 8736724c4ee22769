"""A list whose export cannot be read is upserted whole, removes nobody, and stops no other list."""

from __future__ import annotations

import logging

import pytest

from .sync import TargetRunner, list_emails, list_name, singer_input

pytestmark = pytest.mark.integration

COHORTS = ("trlrsk2", "pwrusr1")  # both exports are read at once: either may be the broken one
EXPORT_STATUS = r"/v3/marketing/contacts/exports/[^/]+$"


def test_an_unreadable_export_spares_its_list_and_the_others_sync(sandbox, tmp_path, caplog):
    runner = TargetRunner(sandbox, tmp_path)
    assert runner.run(singer_input(sandbox, COHORTS)).error is None
    before = {cid: list_emails(sandbox, cid) for cid in COHORTS}
    for cid in COHORTS:
        sandbox.generator.churn(cid, remove=15, add=5)
    after = {cid: sandbox.generator.expected_emails(cid) for cid in COHORTS}
    assert all(before[cid] - after[cid] and after[cid] - before[cid] for cid in after)

    # The first export status poll says the export failed (the lists' reads run side by side).
    rule = sandbox.faults.add(
        "sendgrid",
        "GET",
        EXPORT_STATUS,
        times=1,
        status=200,
        body={"id": "x", "status": "failure", "message": "export could not be generated"},
    )
    with caplog.at_level(logging.INFO):
        result = runner.run(singer_input(sandbox, COHORTS))

    assert rule.hits == 1
    assert result.error is None
    unreadable = [
        cid
        for cid in COHORTS
        if (result.list_entry(list_name(sandbox, cid))["removal_reason"] or "").startswith(
            "list export unreadable: "
        )
    ]
    assert len(unreadable) == 1
    broken = unreadable[0]
    other = next(cid for cid in COHORTS if cid != broken)
    # Nobody left the broken list, its joiners arrived; the other list is mirrored as usual.
    assert list_emails(sandbox, broken) == before[broken] | after[broken]
    assert list_emails(sandbox, other) == after[other]
    entry = result.list_entry(list_name(sandbox, broken))
    assert entry["removed"] == 0
    assert entry["removal"] == "skipped"
    assert "export could not be generated" in entry["removal_reason"]
    assert entry["upserted"] == len(after[broken])  # no snapshot: every contact is sent
    assert result.list_entry(list_name(sandbox, other))["removed"] == len(
        before[other] - after[other]
    )
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(list_name(sandbox, broken) in w and "export" in w for w in warnings)
    assert not any("@" in w for w in warnings)

    rerun = runner.run(singer_input(sandbox, COHORTS))
    assert rerun.error is None
    assert list_emails(sandbox, broken) == after[broken]
    assert rerun.list_entry(list_name(sandbox, broken))["removed"] == len(
        before[broken] - after[broken]
    )
    assert list_emails(sandbox, other) == after[other]

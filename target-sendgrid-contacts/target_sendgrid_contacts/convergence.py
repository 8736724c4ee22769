"""Pending and held cohorts in the report (per list and at the top) and in the log."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from target_sendgrid_contacts.bookmarks import HELD, PENDING, Judgement

LOGGER = logging.getLogger("target_sendgrid_contacts")


def report_convergence(
    report: dict,
    judgement: Judgement,
    *,
    seen: Mapping[str, Mapping[str, Mapping]],
    now: str,
    dry_run: bool,
    failed: bool,
) -> None:
    """Put the pending and held cohorts in the report, and say so in the log.

    Args:
        report: From ``report.build_report`` (changed in place).
        judgement: The run's verdicts.
        seen: Markers of the STATEs received, per cohort (their ``since`` is kept).
        now: ISO time of the run's start (``since`` of a new marker).
        dry_run: Nothing was written.
        failed: The run failed.
    """
    for entry in report["lists"]:
        verdict = judgement.lists.get(entry["list_name"])
        entry["pending"] = verdict.reason if verdict and verdict.status == PENDING else None
        entry["held"] = verdict.reason if verdict and verdict.status == HELD else None
    pending: list[dict] = []
    held: list[dict] = []
    for cohort_id, cohort in sorted(judgement.cohorts.items()):
        if cohort.status not in (PENDING, HELD):
            continue
        marker = seen.get(cohort_id, {}).get(cohort.status) or {}
        found: dict = {
            "cohort_id": cohort_id,
            "reason": cohort.reason,
            "since": marker.get("since") or now,
            "lists": list(cohort.lists),
        }
        if cohort.status == HELD:
            found["apply"] = cohort.apply
        (pending if cohort.status == PENDING else held).append(found)
    for cohort_id, markers in sorted(seen.items()):
        past = markers.get(HELD)
        if past is not None and cohort_id not in judgement.cohorts:
            held.append({"cohort_id": cohort_id, **past})  # still held from a past run
    report["pending"], report["held"] = pending, held
    _log(report, dry_run=dry_run, failed=failed)


def _log(report: dict, *, dry_run: bool, failed: bool) -> None:
    """Say which cohorts are pending or held, and what the next run does about them."""
    log = LOGGER.info if dry_run else LOGGER.warning
    after = (
        "dry run: no STATE is written"
        if dry_run
        else "no STATE is written after a failure"
        if failed
        else "the STATE written marks it, so the next run downloads it again"
    )
    for entry in report["pending"]:
        log(
            "Cohort %s pending since %s: %s (%s)",
            entry["cohort_id"],
            entry["since"],
            entry["reason"],
            after,
        )
    for entry in report["held"]:
        log(
            "Cohort %s: removal held by max_removal_ratio since %s: %s. It is not "
            "downloaded again until a person decides; to apply the removal, %s",
            entry["cohort_id"],
            entry.get("since"),
            entry.get("reason"),
            entry.get("apply") or "raise max_removal_ratio and download the cohort again",
        )

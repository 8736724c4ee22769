"""End-of-run report: a table for the log and the same facts as JSON at ``report_path``."""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path

from target_sendgrid_contacts.outcomes import ListOutcome

LOGGER = logging.getLogger("target_sendgrid_contacts")

_COUNTS = ("received", "upserted", "created", "updated", "unchanged", "rejected", "removed")
_COLUMNS = (
    ("list", 40),
    ("received", 9),
    ("upserted", 9),
    ("created", 8),
    ("updated", 8),
    ("unchanged", 9),
    ("rejected", 9),
    ("removed", 8),
)


def build_report(
    outcomes: Iterable[ListOutcome],
    *,
    api_calls: Counter[str],
    seconds: float,
    dry_run: bool,
    sync_mode: str,
    records_read: int,
    sendgrid_rejections_allowed: int,
) -> dict:
    """Assemble the JSON report.

    Args:
        outcomes: One outcome per list.
        api_calls: SendGrid calls by ``METHOD /path-template``.
        seconds: Wall time of the run.
        dry_run: Whether nothing was written.
        sync_mode: ``mirror`` or ``upsert``.
        records_read: Contact records read (all streams that carry contacts).
        sendgrid_rejections_allowed: ``max_sendgrid_rejections``.

    Returns:
        A JSON-ready dict with ``lists`` and ``totals``.
    """
    lists = [o.as_dict() for o in sorted(outcomes, key=lambda o: o.name)]
    rejected: Counter[str] = Counter()
    truncated: Counter[str] = Counter()
    unconvertible: Counter[str] = Counter()
    for entry in lists:
        rejected.update(entry["rejected_by_reason"])
        truncated.update(entry["truncated"])
        unconvertible.update(entry["unconvertible"])
    totals = {key: sum(entry[key] for entry in lists) for key in _COUNTS}
    totals["rejected_by_reason"] = dict(sorted(rejected.items()))
    totals["truncated"] = dict(sorted(truncated.items()))
    totals["unconvertible"] = dict(sorted(unconvertible.items()))
    totals["adds_up"] = totals["received"] == (
        totals["upserted"] + totals["unchanged"] + totals["rejected"]
    )
    return {
        "dry_run": dry_run,
        "sync_mode": sync_mode,
        "seconds": round(seconds, 3),
        "records_read": records_read,
        "records_per_second": round(records_read / seconds, 1) if seconds > 0 else None,
        "api_calls": sum(api_calls.values()),
        "api_calls_by_endpoint": dict(sorted(api_calls.items())),
        "max_sendgrid_rejections": sendgrid_rejections_allowed,
        "lists": lists,
        "totals": totals,
    }


def _row(cells: Iterable[object]) -> str:
    out = []
    for (_, width), cell in zip(_COLUMNS, cells, strict=True):
        text = str(cell)
        if len(text) > width:
            text = text[: width - 1] + "…"
        out.append(text.ljust(width) if width == _COLUMNS[0][1] else text.rjust(width))
    return " ".join(out)


def render_table(report: dict) -> str:
    """Render the report as a readable table (for stderr).

    Args:
        report: From :func:`build_report`.

    Returns:
        Multi-line text.
    """
    keys = list(_COUNTS)
    title = "SendGrid sync summary"
    if report["dry_run"]:
        title += " (DRY RUN: nothing was written)"
    lines = [f"{title}, sync_mode={report['sync_mode']}", _row(name for name, _ in _COLUMNS)]
    for entry in report["lists"]:
        lines.append(_row([entry["list_name"], *(entry[k] for k in keys)]))
        details = [f"list_id={entry['list_id'] or '-'}"]
        if entry["cohort_id"]:
            details.append(f"cohort_id={entry['cohort_id']}")
        if entry["rejected_by_reason"]:
            details.append(
                "rejected: " + ", ".join(f"{k} {v}" for k, v in entry["rejected_by_reason"].items())
            )
        if entry["truncated"]:
            details.append(
                "truncated: " + ", ".join(f"{k} {v}" for k, v in entry["truncated"].items())
            )
        if entry["unconvertible"]:
            details.append(
                "left empty (value did not fit): "
                + ", ".join(f"{k} {v}" for k, v in entry["unconvertible"].items())
            )
        details.append(f"removal {entry['removal']}: {entry['removal_reason'] or '-'}")
        if entry.get("pending"):
            details.append("PENDING (downloaded again next run)")
        elif entry.get("held"):
            details.append("HELD by max_removal_ratio")
        lines.append("    " + "; ".join(details))
    totals = report["totals"]
    lines.append(_row(["TOTAL", *(totals[k] for k in keys)]))
    if totals["rejected_by_reason"]:
        lines.append(
            "    rejected: "
            + ", ".join(f"{k} {v}" for k, v in totals["rejected_by_reason"].items())
        )
    for entry in report.get("pending", []):
        lines.append(
            f"PENDING cohort {entry['cohort_id']} since {entry['since']}: {entry['reason']}"
        )
    for entry in report.get("held", []):
        lines.append(
            f"HELD cohort {entry['cohort_id']} since {entry.get('since')}: {entry.get('reason')}; "
            f"to apply: {entry.get('apply') or '-'}"
        )
    if report.get("error"):
        lines.append(f"THE RUN STOPPED: {report['error']}")
    lines.append(
        f"received = upserted + unchanged + rejected: {'yes' if totals['adds_up'] else 'NO'}; "
        f"API calls {report['api_calls']}; {report['seconds']:.1f} s; "
        f"{report['records_read']} records read"
    )
    return "\n".join(lines)


def write_report(path: str | Path, report: dict) -> None:
    """Write the JSON report, replacing any previous one.

    Args:
        path: ``report_path``.
        report: From :func:`build_report`.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".tmp")
    partial.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    partial.replace(target)


def publish(report: dict, *, rejected: Mapping[str, int], path: str | None) -> None:
    """Log the table and the rejections by reason; write the JSON when ``report_path`` is set.

    Args:
        report: From :func:`build_report`.
        rejected: Rejections by reason over the whole run.
        path: ``report_path``.
    """
    LOGGER.info("%s", render_table(report))
    if rejected:
        LOGGER.info(
            "Rejected records by reason: %s",
            ", ".join(f"{k} {v}" for k, v in sorted(rejected.items())),
        )
    if path:
        write_report(path, report)

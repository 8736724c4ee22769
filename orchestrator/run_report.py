"""Turn what one `meltano run` left behind into run metadata: pure, no Dagster, no Meltano.

The target's ``report_path`` JSON has the per-list counts; the tap's log lines say which
cohorts were downloaded ("Cohort <id> (<name>): export requested").
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

_EXPORT_REQUESTED = re.compile(r"\bCohort (\S+) \(.*\): export requested\b")
_TAP_FAILURE = re.compile(r"\b\d+ cohort\(s\) failed: .*")
# Meltano's console line: "<timestamp> [<level>] <source> <message>" (source: meltano or a plugin).
_MELTANO_LINE = re.compile(r"^\S+\s+\[\s*(\w+)\s*\]\s+(\S+)\s+(.*)$")
# A plugin's closing lines that say only that it stopped, not why (the SDK's, Python's).
_GENERIC = ("Config validation failed", "Traceback", "File ", "^", "raise ", "exit code")
_FAILED_PLUGIN = {"Extractor failed": "extractor", "Loader failed": "loader"}
_COUNTS = ("received", "upserted", "created", "updated", "unchanged", "rejected", "removed")


@dataclass
class ListFigures:
    """One list's figures for the run history."""

    list_name: str
    cohort_id: str | None
    counts: dict[str, int]
    rejected_by_reason: dict[str, int]
    downloads: int
    removal: str | None = None
    removal_reason: str | None = None


@dataclass
class RunFigures:
    """What one run did, per list and in total."""

    lists: list[ListFigures] = field(default_factory=list)
    totals: dict[str, int] = field(default_factory=dict)
    rejected_by_reason: dict[str, int] = field(default_factory=dict)
    downloads: int = 0
    adds_up: bool | None = None
    error: str | None = None


def downloads_by_cohort(log_lines: Iterable[str]) -> Counter[str]:
    """Count the tap's export requests (each is one download of the monthly quota) per cohort."""
    found: Counter[str] = Counter()
    for line in log_lines:
        match = _EXPORT_REQUESTED.search(line)
        if match:
            found[match.group(1)] += 1
    return found


def _parsed(log_lines: list[str]) -> list[tuple[str, str, str]]:
    found = []
    for line in log_lines:
        match = _MELTANO_LINE.match(line.strip())
        if match:
            found.append((match.group(1).lower(), match.group(2), match.group(3).strip()))
    return found


def _last_words(parsed: list[tuple[str, str, str]], plugin: str) -> str | None:
    """The plugin's last line that says why (not a traceback fragment or a generic close)."""
    for _, source, message in reversed(parsed):
        if source != plugin or not message:
            continue
        if message.startswith(_GENERIC) or message.endswith(_GENERIC[0]):
            continue
        return message
    return None


def failure_sentence(
    report: dict | None,
    log_lines: list[str],
    returncode: int,
    plugins: dict[str, str] | None = None,
) -> str | None:
    """The plain sentence that says why a run failed, or None when it did not.

    In order: the target's ``error`` in its report; the tap's line naming the failed cohorts;
    the last line of the plugin Meltano says failed (the target's sentence when it stopped
    before writing a report, e.g. a key without Marketing permission); Meltano's last error.

    Args:
        report: The target's report (None when it wrote none).
        log_lines: Meltano's output.
        returncode: Meltano's exit status.
        plugins: ``{"extractor": name, "loader": name}`` of the job's block.
    """
    if returncode == 0 and not (report or {}).get("error"):
        return None
    if report and report.get("error"):
        return str(report["error"])
    for line in reversed(log_lines):
        match = _TAP_FAILURE.search(line)
        if match:
            return match.group(0).strip()
    parsed = _parsed(log_lines)
    for role_line, role in _FAILED_PLUGIN.items():
        if any(
            source == "meltano" and message.startswith(role_line) for _, source, message in parsed
        ):
            words = _last_words(parsed, (plugins or {}).get(role, ""))
            if words:
                return words
    for level, _, message in reversed(parsed):
        if level == "error" and message not in (
            "Block run completed",
            "Loader failed",
            "Extractor failed",
        ):
            return message[-500:]
    return f"meltano run exited with status {returncode} and wrote no report"


def figures(
    report: dict | None,
    log_lines: list[str],
    returncode: int,
    plugins: dict[str, str] | None = None,
) -> RunFigures:
    """Combine the target's report and the tap's log into the run's figures.

    Args:
        report: The target's report JSON (None when it wrote none, e.g. the tap failed first).
        log_lines: Meltano's output of the run.
        returncode: Meltano's exit status.
        plugins: ``{"extractor": name, "loader": name}`` of the job's block.

    Returns:
        Per-list and total figures, and the failure sentence when the run failed.
    """
    downloads = downloads_by_cohort(log_lines)
    result = RunFigures(
        downloads=sum(downloads.values()),
        error=failure_sentence(report, log_lines, returncode, plugins),
    )
    if not report:
        return result
    for entry in report.get("lists", []):
        cohort_ids = [c for c in (entry.get("cohort_id") or "").split(",") if c]
        result.lists.append(
            ListFigures(
                list_name=entry.get("list_name") or "?",
                cohort_id=entry.get("cohort_id"),
                counts={key: int(entry.get(key) or 0) for key in _COUNTS},
                rejected_by_reason=dict(entry.get("rejected_by_reason") or {}),
                downloads=sum(downloads[c] for c in cohort_ids),
                removal=entry.get("removal"),
                removal_reason=entry.get("removal_reason"),
            )
        )
    totals = report.get("totals") or {}
    result.totals = {key: int(totals.get(key) or 0) for key in _COUNTS}
    result.rejected_by_reason = dict(totals.get("rejected_by_reason") or {})
    result.adds_up = totals.get("adds_up")
    return result

"""Pure mapping of Amplitude cohort objects (``GET /api/3/cohorts``) to ``cohorts`` records."""

from __future__ import annotations

import datetime
import logging
from typing import Any

from tap_amplitude_cohort.members import epoch_to_datetime, format_datetime

logger = logging.getLogger(__name__)

MAX_EXPORTABLE_MEMBERS = 2_000_000  # Amplitude refuses to export larger cohorts


def cohort_timestamp(cohort: dict[str, Any], field: str) -> datetime.datetime | None:
    """Return a cohort timestamp (epoch s or ms) as a datetime; None if absent or unreadable.

    Args:
        cohort: A cohort object from Amplitude.
        field: ``lastComputed``, ``lastMod`` or ``createdAt``.

    Returns:
        A UTC datetime, or None.
    """
    try:
        return epoch_to_datetime(cohort.get(field))
    except (ValueError, OverflowError, OSError):
        logger.warning(
            "Cohort %s has an unreadable %s; treated as unknown", cohort.get("id"), field
        )
        return None


def cohort_size(cohort: dict[str, Any]) -> int | None:
    """Return the cohort's size as an int, or None when Amplitude did not give one."""
    size = cohort.get("size")
    if isinstance(size, bool) or size is None:
        return None
    try:
        return int(size)
    except (TypeError, ValueError):
        return None


def cohort_record(cohort: dict[str, Any]) -> dict[str, Any]:
    """Map one Amplitude cohort object to a ``cohorts`` record.

    Args:
        cohort: A cohort object from Amplitude.

    Returns:
        The record: snake_case names, timestamps as ISO 8601 strings.
    """
    owners = cohort.get("owners")
    return {
        "id": str(cohort["id"]),
        "name": cohort.get("name"),
        "description": cohort.get("description"),
        "size": cohort_size(cohort),
        "archived": cohort.get("archived"),
        "published": cohort.get("published"),
        "owners": [str(o) for o in owners] if isinstance(owners, list) else None,
        "type": cohort.get("type"),
        "last_computed": format_datetime(cohort_timestamp(cohort, "lastComputed")),
        "last_modified": format_datetime(cohort_timestamp(cohort, "lastMod")),
        "created_at": format_datetime(cohort_timestamp(cohort, "createdAt")),
    }


def describe_cohorts(cohorts: list[dict[str, Any]]) -> str:
    """Return 'id (name), ...' for error messages that list the cohorts that exist."""
    if not cohorts:
        return "none (the project has no cohorts)"
    return ", ".join(f"{c.get('id')} ({c.get('name')})" for c in cohorts)

"""Queued work of the fake SendGrid (jobs and exports) and how the API answers about it.

Pure data and rendering: ``SendGridState`` applies the work and holds the lock.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sandbox.sendgrid.files import iso

EXPORT_TTL_SECONDS = 72 * 3600
COUNTS = ("requested_count", "created_count", "updated_count", "deleted_count", "errored_count")


@dataclass
class Job:
    """An import (``upsert_contacts``), list-removal or deletion job.

    Attributes:
        payload: What the job will apply; dropped once applied.
        results: Final counts, set when the job is applied.
        errors_key: Storage key of the errors file, when some contacts failed.
        message: Why the whole job failed, if it did.
        progress: The counts a pending upsert shows past half its delay, once counted.
    """

    id: str
    job_type: str
    due: float
    started_at: float
    requested: int
    payload: Any
    status: str = "pending"
    results: dict[str, Any] = field(default_factory=dict)
    errors_key: str | None = None
    finished_at: float | None = None
    message: str | None = None
    progress: dict[str, int] | None = None


@dataclass
class Export:
    """A contacts export; its files are snapshotted when it becomes ready."""

    id: str
    list_ids: list[str]
    file_type: str
    due: float
    created_at: float
    status: str = "pending"
    keys: list[str] = field(default_factory=list)
    contact_count: int = 0
    completed_at: float | None = None


def job_answer(job: Job, progress: dict[str, int], sign: Callable[[str], str]) -> dict[str, Any]:
    """The body of ``GET /v3/marketing/contacts/imports/{id}`` for ``job``.

    Args:
        job: The job.
        progress: Counts to show while the job is pending (may be empty).
        sign: Mints a fresh signed URL for a storage key.
    """
    results: dict[str, Any] = dict.fromkeys(COUNTS, 0)
    results["requested_count"] = job.requested
    results.update(job.results or progress)
    if job.errors_key:
        results["errors_url"] = sign(job.errors_key)
    answer: dict[str, Any] = {
        "id": job.id,
        "status": job.status,
        "job_type": job.job_type,
        "results": results,
        "started_at": iso(job.started_at),
    }
    if job.finished_at is not None:
        answer["finished_at"] = iso(job.finished_at)
    if job.message:
        answer["errors"] = [{"message": job.message}]
    return answer


def export_answer(export: Export, sign: Callable[[str], str]) -> dict[str, Any]:
    """The body of ``GET /v3/marketing/contacts/exports/{id}``; ``urls`` once ready."""
    answer: dict[str, Any] = {
        "id": export.id,
        "status": export.status,
        "created_at": iso(export.created_at),
        "updated_at": iso(export.completed_at or export.created_at),
        "expires_at": iso(export.created_at + EXPORT_TTL_SECONDS),
        "export_type": "contacts_export",
    }
    if export.status == "ready":
        answer["completed_at"] = iso(export.completed_at or export.created_at)
        answer["urls"] = [sign(key) for key in export.keys]
        answer["contact_count"] = export.contact_count
    return answer


def count_by_status(items: Any) -> dict[str, int]:
    """How many jobs or exports are in each status."""
    counts: dict[str, int] = {}
    for item in items:
        counts[item.status] = counts.get(item.status, 0) + 1
    return counts

"""The core of the fake SendGrid account's state: its lock, data and queue of due work.

Also the parts that need no contact logic: list exports and custom field definitions.
``SendGridState`` (``state.py``) adds contacts, lists and jobs on top.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from sandbox.config import SandboxConfig
from sandbox.sendgrid.account import Account
from sandbox.sendgrid.files import export_body
from sandbox.sendgrid.jobs import Export, Job, export_answer
from sandbox.sendgrid.model import ApiError
from sandbox.storage import Storage

FAILED_JOB_MESSAGE = "the job could not be processed"  # a job the sandbox was told to fail


class StateCore:
    """The account's data and queued work; every public method is thread-safe.

    Attributes:
        clock: Source of "now" (epoch seconds); tests may replace it to skip waiting.
        export_rows_per_file: Past this many contacts an export is split into several urls.
    """

    def __init__(
        self,
        config: SandboxConfig,
        storage: Storage,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.storage = storage
        self.clock = clock
        self.export_rows_per_file = 1_000_000
        self._lock = threading.RLock()
        self.reset()

    def reset(self) -> None:
        """Forget everything: an empty account."""
        with self._lock:
            self._account = Account()
            self._jobs: dict[str, Job] = {}
            self._exports: dict[str, Export] = {}
            self._queue: list[tuple[float, int, Job | Export]] = []
            self._seq = itertools.count()

    def job_sizes(self) -> dict[str, tuple[str, int]]:
        """Every job so far: ``{job id: (job type, contacts requested)}``, for benchmarks."""
        with self._lock:
            return {job_id: (job.job_type, job.requested) for job_id, job in self._jobs.items()}

    def contact_id(self, n: int) -> str:
        """The public id of contact number ``n``."""
        return self._account.contact_id(n)

    # ----- queued work -----------------------------------------------------------------

    def settle(self, *, force: bool = False) -> None:
        """Apply queued work that is due (all of it with ``force``), in due order."""
        with self._lock:
            now = self.clock()
            while self._queue and (force or self._queue[0][0] <= now):
                _, _, work = heapq.heappop(self._queue)
                if isinstance(work, Export):
                    self._finish_export(work, now)
                    continue
                if work.job_type in self.config.failing_jobs:
                    work.status, work.message = "failed", FAILED_JOB_MESSAGE
                    work.results = {"requested_count": work.requested, "errored_count": 0}
                else:
                    self._apply(work)
                work.payload = None
                work.finished_at = now

    def _apply(self, job: Job) -> None:
        """Carry out a due job (``SendGridState`` knows each job type)."""
        raise NotImplementedError

    def _enqueue(self, work: Job | Export) -> None:
        heapq.heappush(self._queue, (work.due, next(self._seq), work))

    def _new_job(self, job_type: str, delay: float, requested: int, payload: Any) -> str:
        now = self.clock()
        job = Job(str(uuid.uuid4()), job_type, now + delay, now, requested, payload)
        self._jobs[job.id] = job
        self._enqueue(job)
        return job.id

    def _put_key(self, body: Any, name: str) -> str:
        # a gzip file as such (no Content-Encoding): clients must decompress it themselves
        url = self.storage.put(
            body, content_type="application/gzip", content_encoding=None, name=name
        )
        return url.split("/files/", 1)[1].split("?", 1)[0]

    # ----- exports ----------------------------------------------------------------------

    def start_export(self, list_ids: list[str], file_type: str) -> str:
        """Queue an export of the lists' members (all contacts without lists); return its id.

        Raises:
            ApiError: 404 for an unknown list.
        """
        with self._lock:
            self.settle()
            for index, list_id in enumerate(list_ids):
                if list_id not in self._account.lists:
                    raise ApiError(404, "list not found", f"list_ids[{index}]")
            now = self.clock()
            due = now + self.config.export_delay_seconds
            export = Export(str(uuid.uuid4()), list_ids, file_type, due, now)
            self._exports[export.id] = export
            self._enqueue(export)
            return export.id

    def _finish_export(self, export: Export, now: float) -> None:
        snapshot = self._account.snapshot(export.list_ids)
        names = self._account.fields.names()
        size = self.export_rows_per_file
        extension = "csv.gz" if export.file_type == "csv" else "json.gz"
        for start in range(0, max(len(snapshot), 1), size):
            body = export_body(
                snapshot[start : start + size], self.contact_id, names, export.file_type
            )
            export.keys.append(self._put_key(body, f"contacts.{extension}"))
        export.status, export.completed_at = "ready", now
        export.contact_count = len(snapshot)

    def export(self, export_id: str) -> dict[str, Any]:
        """An export's status; once ready, with fresh signed ``urls``.

        Raises:
            ApiError: 404 for an unknown export.
        """
        with self._lock:
            self.settle()
            export = self._exports.get(export_id)
            if export is None:
                raise ApiError(404, "export not found", "id")
            return export_answer(export, self.storage.sign)

    def exports(self) -> list[dict[str, Any]]:
        """Every export's status, oldest first."""
        with self._lock:
            return [self.export(export_id) for export_id in list(self._exports)]

    # ----- custom fields and overview --------------------------------------------------

    def field_definitions(self) -> list[dict[str, str]]:
        """The custom field definitions."""
        with self._lock:
            return [f.as_json() for f in self._account.fields.by_id.values()]

    def create_field(self, name: str, field_type: str, *, usable_now: bool = True) -> dict:
        """Create a custom field; its id looks like ``e1_T``.

        Args:
            name: Letters, digits and underscores, not starting with a digit.
            field_type: Text, Number or Date.
            usable_now: False starts the activation delay (as over HTTP); True backdates it,
                as if the field had existed for a while.

        Raises:
            ApiError: 400 for a bad or duplicate name, an unknown type, or past 500 fields.
        """
        with self._lock:
            created = self.clock()
            if usable_now:
                created -= self.config.field_activation_seconds
            return self._account.fields.create(name, field_type, created).as_json()

    def rename_field(self, field_id: str, name: str) -> dict[str, str]:
        """Rename a custom field.

        Raises:
            ApiError: 404 for an unknown field, 400 for a bad or duplicate name.
        """
        with self._lock:
            return self._account.fields.rename(field_id, name).as_json()

    def delete_field(self, field_id: str) -> None:
        """Delete a custom field (values stay stored but are no longer shown).

        Raises:
            ApiError: 404 for an unknown field.
        """
        with self._lock:
            self._account.fields.delete(field_id)

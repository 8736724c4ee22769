"""The fake Amplitude's state: cohorts and their churn, export jobs, limits and the quota."""

from __future__ import annotations

import csv
import io
import secrets
import threading
import time
import zlib
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field

from werkzeug.wrappers import Response

from sandbox.amplitude.responses import error_answer, text_answer
from sandbox.cohort_specs import Churn, base_time_ms
from sandbox.config import SandboxConfig
from sandbox.generator import (
    AMPLITUDE_MAX_COHORT_SIZE,
    BUILTIN_PROPERTIES,
    CohortGenerator,
)
from sandbox.storage import Storage

JOB_IN_PROGRESS = "JOB INPROGRESS"
JOB_COMPLETED = "JOB COMPLETED"
TOO_MANY_CONCURRENT = "Too many concurrent requests. Please try again later."
_ROWS_PER_CHUNK = 2000
_DIRECT_SIZED_MAX = 10_000  # members; a larger direct download is streamed, not held in memory


@dataclass
class ExportJob:
    """One requested cohort export: a snapshot of the cohort taken at request time."""

    request_id: str
    cohort_id: str
    churn: Churn
    columns: list[str]  # bare property names, in order
    polls: int = 0
    storage_key: str | None = None
    created: float = field(default_factory=time.time)


@dataclass
class CohortTimes:
    """Mutable timestamps of one cohort (epoch milliseconds)."""

    created: int
    last_mod: int
    last_computed: int


class AmplitudeState:
    """Everything the fake Amplitude remembers: cohorts, churn, exports, limits and quota."""

    def __init__(self, config: SandboxConfig, generator: CohortGenerator, storage: Storage) -> None:
        self.config = config
        self.generator = generator
        self.storage = storage
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        """Back to the freshly generated cohorts, with no downloads used."""
        with self._lock:
            self.generator.reset()
            self.downloads_used = 0
            self.jobs: dict[str, ExportJob] = {}
            self.in_flight = 0
            self._cohort_requests: deque[float] = deque()
            self.times: dict[str, CohortTimes] = {}
            for cid, spec in self.generator.specs.items():
                created = base_time_ms(spec)
                computed = created + (spec.created_offset_days // 2) * 86_400_000
                self.times[cid] = CohortTimes(created, computed, computed)

    # ----- cohorts -------------------------------------------------------------------------

    def cohorts(self) -> list[dict]:
        """The cohort list as ``GET /api/3/cohorts`` shows it."""
        return [self.cohort(cid) for cid in self.generator.specs]

    def cohort(self, cohort_id: str) -> dict:
        """One cohort object, timestamps in the cohort's unit (ms, or s for some cohorts)."""
        spec = self.generator.spec(cohort_id)
        times = self.times[cohort_id]
        scale = 1000 if spec.timestamps == "s" else 1
        return {
            "appId": 187520,
            "archived": False,
            "chart_id": None,
            "createdAt": times.created // scale,
            "definition": {
                "version": 3,
                "countGroup": {"name": "User", "is_computed": False},
                "cohortType": "UNIQUES",
                "andClauses": [],
            },
            "description": spec.description,
            "edit_id": None,
            "finished": True,
            "hidden": False,
            "id": spec.id,
            "is_official_content": False,
            "is_predictive": False,
            "lastComputed": times.last_computed // scale,
            "lastMod": times.last_mod // scale,
            "last_viewed": times.last_computed // scale,
            "location_id": None,
            "metadata": [],
            "name": spec.name,
            "owners": ["growth-team@acme-corp.io"],
            "popularity": 3,
            "published": True,
            "shortcut_ids": [],
            "size": self.generator.size(cohort_id),
            "type": "redshift",
            "view_count": 12,
            "viewers": [],
        }

    def churn(self, cohort_id: str, **changes: object) -> dict:
        """Change a cohort (see ``CohortGenerator.churn``) and move its lastComputed / lastMod.

        Returns:
            The changed members (``removed``, ``added``, ``renamed``) and the new ``cohort``.
        """
        with self._lock:
            changed = self.generator.churn(cohort_id, **changes)  # type: ignore[arg-type]
            times = self.times[cohort_id]
            now = max(int(time.time() * 1000), times.last_computed + 1000)
            times.last_computed = now
            if any(changed.values()):
                times.last_mod = now
        return {**changed, "cohort": self.cohort(cohort_id)}

    def recompute(self, cohort_id: str) -> dict:
        """Recompute a cohort without changing its members (only lastComputed moves)."""
        return self.churn(cohort_id)

    def members(self, cohort_id: str) -> Iterator[dict]:
        """Current members of a cohort (see ``CohortGenerator.members``)."""
        return self.generator.members(cohort_id)

    def expected_emails(self, cohort_id: str) -> set[str]:
        """What a correct target puts in the cohort's list now."""
        return self.generator.expected_emails(cohort_id)

    # ----- limits --------------------------------------------------------------------------

    def try_enter(self) -> bool:
        """Count a request in flight; False when the concurrency limit is reached."""
        with self._lock:
            if self.in_flight >= self.config.max_concurrent_amplitude_requests:
                return False
            self.in_flight += 1
            return True

    def leave(self) -> None:
        """A request finished (its body was fully sent or abandoned)."""
        with self._lock:
            self.in_flight -= 1

    def _take_cohort_request_slot(self) -> bool:
        window = self.config.amplitude_cohort_request_window_seconds
        now = time.monotonic()
        while self._cohort_requests and self._cohort_requests[0] <= now - window:
            self._cohort_requests.popleft()
        if len(self._cohort_requests) >= self.config.amplitude_cohort_requests_per_window:
            return False
        self._cohort_requests.append(now)
        return True

    # ----- exports -------------------------------------------------------------------------

    def start_export(self, cohort_id: str, columns: list[str]) -> ExportJob | Response:
        """Start an export (counts a download), or return the error response Amplitude gives."""
        with self._lock:
            if cohort_id not in self.generator.specs:
                return error_answer(404, f"Cohort {cohort_id} not found")
            if not self._take_cohort_request_slot():
                limit = self.config.amplitude_cohort_requests_per_window
                return text_answer(
                    429, f"Exceeded rate limit of {limit} cohort requests per window."
                )
            if self.downloads_used >= self.config.amplitude_download_quota:
                return text_answer(
                    429,
                    "Monthly cohort download quota exceeded "
                    f"({self.config.amplitude_download_quota} per month).",
                )
            size = self.generator.size(cohort_id)
            if size > AMPLITUDE_MAX_COHORT_SIZE:
                return error_answer(
                    400,
                    f"Cohort {cohort_id} has {size} users; downloads support at most "
                    f"{AMPLITUDE_MAX_COHORT_SIZE}.",
                )
            if not self.generator.spec(cohort_id).generate:
                # A sandbox limit, not Amplitude's: the cohort exists only in the list.
                return error_answer(
                    400, f"sandbox: cohort {cohort_id} is listed only, not generated"
                )
            self.downloads_used += 1
            job = ExportJob(
                request_id=secrets.token_hex(12),
                cohort_id=cohort_id,
                churn=self.generator.churns[cohort_id],
                columns=columns,
            )
            self.jobs[job.request_id] = job
            return job

    def poll(self, request_id: str) -> tuple[ExportJob, bool] | None:
        """Record one status poll; return the job and whether it is complete (None if unknown)."""
        with self._lock:
            job = self.jobs.get(request_id)
            if job is None:
                return None
            if job.polls < self.config.export_polls_before_ready:
                job.polls += 1
                return job, False
            return job, True

    def is_complete(self, job: ExportJob) -> bool:
        """Whether a job's file may be downloaded."""
        return job.polls >= self.config.export_polls_before_ready

    def headers(self, cohort_id: str, columns: list[str]) -> list[str]:
        """Header row of an export, in the cohort's naming style."""
        spec = self.generator.spec(cohort_id)
        names = ["amplitude_id", "user_id"]
        for key in columns:
            name = key
            if spec.header_style == "gp" and key not in BUILTIN_PROPERTIES:
                name = f"gp:{key}"
                if spec.tab_quirk and key == "plan":
                    name = f"\t{name}"
            names.append(name)
        return names

    def export_chunks(self, job: ExportJob) -> Iterator[bytes]:
        """Stream the job's file: gzip-compressed, fully quoted CSV, generated lazily."""
        spec = self.generator.spec(job.cohort_id)
        gzip = zlib.compressobj(3, zlib.DEFLATED, 31)
        buffer = io.StringIO()
        writer = csv.writer(buffer, quoting=csv.QUOTE_ALL, lineterminator="\n")
        if spec.bom:
            buffer.write("\ufeff")
        writer.writerow(self.headers(job.cohort_id, job.columns))
        rows = self.generator.rows(job.cohort_id, job.columns, job.churn)
        for n, row in enumerate(rows, 1):
            writer.writerow(row)
            if n % _ROWS_PER_CHUNK == 0:
                data = gzip.compress(buffer.getvalue().encode())
                buffer.seek(0)
                buffer.truncate()
                if data:
                    yield data
        yield gzip.compress(buffer.getvalue().encode()) + gzip.flush()

    def file_response(self, job: ExportJob) -> Response:
        """The download: the gzip body itself for small cohorts, else a 302 to fresh storage."""
        size = self.generator.size(job.cohort_id, job.churn)
        if size < self.config.redirect_min_members:
            # Served directly; sized when small, streamed (chunked) when a test makes it large.
            chunks = self.export_chunks(job)
            body = b"".join(chunks) if size < _DIRECT_SIZED_MAX else chunks
            response = Response(
                body,
                status=200,
                content_type="text/csv; charset=utf-8",
                direct_passthrough=not isinstance(body, bytes),
            )
            response.headers["Content-Encoding"] = "gzip"
            return response
        with self._lock:
            if job.storage_key is None:
                url = self.storage.put(
                    lambda: self.export_chunks(job),
                    content_type="text/csv; charset=utf-8",
                    content_encoding="gzip",
                    name=f"{job.cohort_id}_{job.request_id}.csv.gz",
                )
                job.storage_key = url.split("/files/", 1)[1].split("?", 1)[0]
            else:
                url = self.storage.sign(job.storage_key)
        response = Response(status=302)
        response.headers["Location"] = url
        return response

    def summary(self) -> dict:
        """Cohorts (id, name, size, lastComputed) and downloads used, for /_sandbox/summary."""
        return {
            "cohorts": [
                {
                    "id": cid,
                    "name": spec.name,
                    "size": self.generator.size(cid),
                    "lastComputed": self.times[cid].last_computed,
                }
                for cid, spec in self.generator.specs.items()
            ],
            "downloads_used": self.downloads_used,
            "download_quota": self.config.amplitude_download_quota,
        }

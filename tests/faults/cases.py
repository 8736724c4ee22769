"""The fault matrix: every endpoint both plugins call x what can go wrong there.

Each case names the endpoint group and the fault (the README's Reliability table is rendered
from these), the sandbox fault rules or knobs that produce it during the faulty run, and what
the faulty run is expected to do:

- ``ridden``: ridden out within the run (both plugins exit 0, the list equals the cohort);
- ``failed``: the run stops and says so (a plugin exits non-zero), removing nobody in the cohort;
- ``held``: the run succeeds but holds back the list's removals and says why in the report.

Whatever the faulty run did, the healthy rerun with the STATE it left must converge.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

COHORT = "trlrsk2"  # 250 members, fed through the storage redirect (>= 100 members)

# Endpoint groups: (label, service, method, path regex, needs a first sync before the fault).
ENDPOINTS: dict[str, tuple[str, str, str, str]] = {
    "amp-list": ("Amplitude cohort list", "amplitude", "GET", r"^/api/3/cohorts$"),
    "amp-request": (
        "Amplitude export request",
        "amplitude",
        "GET",
        r"^/api/5/cohorts/request/[^/]+$",
    ),
    "amp-status": (
        "Amplitude export status",
        "amplitude",
        "GET",
        r"^/api/5/cohorts/request-status/",
    ),
    "amp-file": (
        "Amplitude export file (redirect)",
        "amplitude",
        "GET",
        r"^/api/5/cohorts/request/[^/]+/file$",
    ),
    "amp-storage": ("Amplitude cohort file (storage)", "storage", "GET", rf"^/files/.*{COHORT}_"),
    "sg-lists": ("SendGrid lists", "sendgrid", "GET", r"^/v3/marketing/lists$"),
    "sg-create-list": ("SendGrid list creation", "sendgrid", "POST", r"^/v3/marketing/lists$"),
    "sg-fields": (
        "SendGrid field definitions",
        "sendgrid",
        "GET",
        r"^/v3/marketing/field_definitions$",
    ),
    "sg-create-field": (
        "SendGrid field creation",
        "sendgrid",
        "POST",
        r"^/v3/marketing/field_definitions$",
    ),
    "sg-upsert": ("SendGrid contacts PUT", "sendgrid", "PUT", r"^/v3/marketing/contacts$"),
    "sg-job": ("SendGrid job status", "sendgrid", "GET", r"^/v3/marketing/contacts/imports/"),
    "sg-export": ("SendGrid export start", "sendgrid", "POST", r"^/v3/marketing/contacts/exports$"),
    "sg-export-status": (
        "SendGrid export status",
        "sendgrid",
        "GET",
        r"^/v3/marketing/contacts/exports/[^/]+$",
    ),
    "sg-export-file": ("SendGrid export download", "storage", "GET", r"^/files/.*/contacts\."),
    "sg-errors-file": ("SendGrid errors file", "storage", "GET", r"^/files/.*/errors\."),
    "sg-removal": (
        "SendGrid list removal",
        "sendgrid",
        "DELETE",
        r"^/v3/marketing/lists/[^/]+/contacts$",
    ),
    "sg-count": (
        "SendGrid list count (removal jobs not pollable)",
        "sendgrid",
        "GET",
        r"^/v3/marketing/lists/[^/]+/contacts/count$",
    ),
}
# The list count is read only to confirm removals whose job cannot be polled.
UNPOLLABLE_REMOVALS = {"config.unpollable_jobs": frozenset({"delete_list_contacts"})}
# Calls made only when something is created: their faults hit the first sync.
FIRST_SYNC_ONLY = {"sg-create-list", "sg-create-field"}

S3_EXPIRED = (
    '<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code>'
    "<Message>Request has expired</Message></Error>"
)


@dataclass(frozen=True)
class Case:
    """One row of the matrix (see module docstring).

    Attributes:
        id: Test id.
        endpoint: Key of ``ENDPOINTS`` (or a free label for knob-only cases).
        fault: Fault label in the README table.
        rules: Fault rules added for the faulty run (``FaultRegistry.add`` keywords beyond
            the endpoint's service, method and path).
        knobs: Sandbox settings changed for the faulty run only (``config.`` or ``storage.``).
        target: Target settings of the faulty run.
        tap: Tap settings of the faulty run.
        expect: ``ridden``, ``failed`` or ``held``.
        short_timeouts: HTTP timeouts of both clients cut to one second (for delay faults).
        refused: Members the sandbox refuses inside its import jobs (reject+ addresses), so
            that an errors file exists.
        custom_fields: Map a custom field in every run (off where a field created by the
            faulty run would be refused as "not ready" by a rerun within seconds: see
            test_field_created_by_a_failed_run_is_waited_for_by_the_rerun).
        log_has: Words the faulty run's log must hold (the sentence that names the cause).
    """

    id: str
    endpoint: str
    fault: str
    rules: tuple[dict, ...] = ()
    knobs: dict = field(default_factory=dict)
    target: dict = field(default_factory=dict)
    tap: dict = field(default_factory=dict)
    expect: str = "ridden"
    short_timeouts: bool = False
    refused: int = 0
    custom_fields: bool = True
    log_has: str | None = None

    @property
    def label(self) -> str:
        return ENDPOINTS[self.endpoint][0] if self.endpoint in ENDPOINTS else self.endpoint

    @property
    def first_sync(self) -> bool:
        """Whether the fault hits the first sync (no earlier list to start from)."""
        return self.endpoint in FIRST_SYNC_ONLY


def _transient(endpoint: str) -> list[Case]:
    """429 with and without a reset header, 500/502/503, a timeout and a dropped connection,
    each hitting the endpoint once: every call rides it out (creations that must not be
    repeated blindly read the lists or fields again before trying once more)."""
    service = ENDPOINTS[endpoint][1]
    once_more = "ridden"
    if service == "sendgrid":
        limited = ("429 + X-RateLimit-Reset", {"rate_limited": True, "reset_in": 0})
    else:  # Amplitude documents no reset header; Retry-After is the one HTTP defines
        limited = (
            "429 + Retry-After",
            {"status": 429, "headers": {"Retry-After": "1"}, "body": "Too many requests"},
        )
    faults = [
        (limited[0], limited[1], "ridden", False),
        ("429, no reset header", {"status": 429, "body": "Too many requests"}, "ridden", False),
        ("500", {"status": 500}, once_more, False),
        ("502", {"status": 502}, once_more, False),
        ("503", {"status": 503}, once_more, False),
        ("timeout", {"delay": 1.6}, once_more, True),
        ("dropped connection", {"drop": True}, once_more, False),
    ]
    return [
        Case(
            f"{endpoint}-{label.split()[0].lower().replace(',', '')}"
            f"{'-reset' if 'Reset' in label or 'Retry' in label else ''}",
            endpoint,
            label,
            ({**rule, "times": 1},),
            expect=expect,
            short_timeouts=short,
            refused=3 if endpoint == "sg-errors-file" else 0,
            custom_fields=endpoint != "sg-create-list",
        )
        for label, rule, expect, short in faults
    ]


def _persistent(endpoint: str, expect: str) -> Case:
    """503 on every attempt: the retries run out."""
    refused = endpoint == "sg-errors-file"
    return Case(
        f"{endpoint}-503-always",
        endpoint,
        "503 on every attempt",
        ({"status": 503, "times": None},),
        expect=expect,
        refused=3 if refused else 0,
        custom_fields=endpoint != "sg-create-list",
    )


def _with_knobs(case: Case) -> Case:
    if case.endpoint != "sg-count":
        return case
    return dataclasses.replace(case, knobs={**UNPOLLABLE_REMOVALS, **case.knobs})


TRANSIENT = [_with_knobs(c) for endpoint in ENDPOINTS for c in _transient(endpoint)]

PERSISTENT = [
    _persistent("amp-list", "failed"),
    _persistent("amp-request", "failed"),
    _persistent("amp-status", "failed"),
    _persistent("amp-file", "failed"),
    _persistent("amp-storage", "failed"),
    _persistent("sg-lists", "failed"),
    _persistent("sg-create-list", "failed"),
    _persistent("sg-fields", "failed"),
    _persistent("sg-create-field", "failed"),
    _persistent("sg-upsert", "failed"),
    _persistent("sg-job", "failed"),
    _persistent("sg-export", "failed"),
    _persistent("sg-export-status", "failed"),
    _persistent("sg-export-file", "failed"),
    _persistent("sg-errors-file", "ridden"),
    _persistent("sg-removal", "failed"),
    _with_knobs(_persistent("sg-count", "failed")),
]


def _download(endpoint: str, read: str, fetch: str) -> list[Case]:
    """A file cut part-way or delivered whole but damaged (``read`` is what follows), or one
    that cannot be fetched at all: hung up on, or its link expired (``fetch``) — every attempt."""
    extra = {"refused": 3 if endpoint == "sg-errors-file" else 0}
    return [
        Case(
            f"{endpoint}-truncated",
            endpoint,
            "truncated download",
            ({"truncate_after": 1500, "times": None},),
            expect=read,
            **extra,
        ),
        Case(
            f"{endpoint}-corrupt",
            endpoint,
            "corrupt file (one byte damaged)",
            ({"corrupt_at": 400, "times": None},),
            expect=read,
            **extra,
        ),
        Case(
            f"{endpoint}-dropped",
            endpoint,
            "dropped download",
            ({"drop": True, "times": None},),
            expect=fetch,
            **extra,
        ),
        Case(
            f"{endpoint}-expired",
            endpoint,
            "expired storage URL",
            ({"status": 403, "body": S3_EXPIRED, "times": None},),
            expect=fetch,
            **extra,
            log_has="The file host refused" if endpoint == "sg-export-file" else None,
        ),
    ]


DOWNLOADS = [
    *_download("amp-storage", "failed", "failed"),
    # An unreadable export holds the list back; one SendGrid will not serve stops the run.
    *_download("sg-export-file", "held", "failed"),
    *_download("sg-errors-file", "ridden", "ridden"),
]

JOBS = [
    Case(
        "amp-status-job-failed",
        "amp-status",
        "export job ends failed",
        (
            {
                "status": 200,
                "times": None,
                "body": {"request_id": "x", "cohort_id": COHORT, "async_status": "JOB FAILED"},
            },
        ),
        expect="failed",
    ),
    Case(
        "amp-status-slow",
        "amp-status",
        "slow job (within the bound)",
        knobs={"config.export_polls_before_ready": 6},
    ),
    Case(
        "amp-status-too-slow",
        "amp-status",
        "job slower than the bound",
        knobs={"config.export_polls_before_ready": 100_000},
        tap={"max_export_wait_seconds": 1},
        expect="failed",
    ),
    Case(
        "all-storage-urls-expired",
        "Storage URLs (every file)",
        "expired storage URL (TTL 0)",
        knobs={"storage.ttl_seconds": 0},
        expect="failed",
    ),
    Case(
        "sg-upsert-job-failed",
        "sg-job",
        "upsert job ends failed",
        knobs={"config.failing_jobs": frozenset({"upsert_contacts"})},
        expect="failed",
    ),
    Case("sg-upsert-job-errored", "sg-job", "upsert job ends errored", refused=3),
    Case(
        "sg-upsert-job-errored-over-limit",
        "sg-job",
        "errored past max_sendgrid_rejections",
        refused=3,
        target={"max_sendgrid_rejections": 0},
        expect="failed",
    ),
    Case(
        "sg-upsert-job-slow",
        "sg-job",
        "slow job (within the bound)",
        knobs={"config.import_delay_seconds": 1.0},
    ),
    Case(
        "sg-upsert-job-too-slow",
        "sg-job",
        "job slower than the bound",
        knobs={"config.import_delay_seconds": 4.0},
        target={"job_timeout_seconds": 1},
        expect="failed",
    ),
    Case(
        "sg-removal-job-failed",
        "sg-removal",
        "removal job ends failed",
        knobs={"config.failing_jobs": frozenset({"delete_list_contacts"})},
        expect="failed",
    ),
    Case(
        "sg-removal-job-unpollable",
        "sg-removal",
        "job status 404 (confirmed by list count)",
        knobs=UNPOLLABLE_REMOVALS,
    ),
    Case(
        "sg-removal-job-slow",
        "sg-removal",
        "slow job (within the bound)",
        knobs={"config.removal_delay_seconds": 1.0},
    ),
    Case(
        "sg-removal-job-too-slow",
        "sg-removal",
        "job slower than the bound",
        knobs={"config.removal_delay_seconds": 4.0},
        target={"job_timeout_seconds": 1},
        expect="failed",
    ),
    Case(
        "sg-export-fails",
        "sg-export-status",
        "export ends failure",
        (
            {
                "status": 200,
                "times": None,
                "body": {
                    "id": "x",
                    "status": "failure",
                    "message": "export could not be generated",
                },
            },
        ),
        expect="held",
    ),
    Case(
        "sg-export-slow",
        "sg-export-status",
        "slow job (within the bound)",
        knobs={"config.export_delay_seconds": 1.0},
    ),
    Case(
        "sg-export-too-slow",
        "sg-export-status",
        "job slower than the bound",
        knobs={"config.export_delay_seconds": 4.0},
        target={"job_timeout_seconds": 1},
        expect="held",
    ),
]

ALL = [*TRANSIENT, *PERSISTENT, *DOWNLOADS, *JOBS]

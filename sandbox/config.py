"""Settings of one sandbox instance."""

from __future__ import annotations

from dataclasses import dataclass, field

AMPLITUDE_API_KEY = "sandbox-amplitude-key"
AMPLITUDE_SECRET_KEY = "sandbox-amplitude-secret"  # noqa: S105 - a sandbox credential, not a secret
SENDGRID_API_KEY = "SG.sandbox-full-access"
SENDGRID_RESTRICTED_KEY = "SG.sandbox-no-marketing"


@dataclass
class SandboxConfig:
    """How a sandbox behaves. Ports 0 pick free ports; the demo uses fixed ones.

    Attributes:
        seed: Seed of the deterministic cohort generator.
        host: Address every server binds to (always loopback).
        amplitude_port: Port of the fake Amplitude API.
        sendgrid_port: Port of the fake SendGrid API.
        storage_port: Port of the fake file storage (S3 / SendGrid export files).
        extra_cohorts: Extra cohorts as generator specs (e.g. a 2,000,000-member benchmark cohort).
        export_polls_before_ready: Amplitude status polls answered 202 before 200.
        redirect_min_members: Cohorts at least this large are served through a 302 to storage.
        max_concurrent_amplitude_requests: Past this, Amplitude answers 429 with a text body.
        import_delay_seconds: How long a SendGrid import (upsert) job stays pending.
        removal_delay_seconds: How long a SendGrid list-removal job stays pending.
        export_delay_seconds: How long a SendGrid contacts export stays pending.
        field_activation_seconds: How long a new custom field is refused after creation.
        contact_limit: Account contact limit; an import past it fails.
        storage_url_ttl_seconds: Validity of a signed storage URL.
        validate_requests: Check every SendGrid request against the OpenAPI documents.
        amplitude_download_quota: Cohort downloads (``request/{id}`` calls) allowed per month.
        amplitude_cohort_requests_per_window: Single-cohort requests allowed per window.
        amplitude_cohort_request_window_seconds: Length of that window (Amplitude: 10 minutes).
        failing_jobs: Job types (``upsert_contacts``, ``delete_list_contacts``) whose jobs end
            ``failed`` with nothing done, as SendGrid reports a job it refused whole. May be
            changed while the sandbox runs (tests fail one phase of a sync).
        unpollable_jobs: Job types whose status endpoint answers 404 (SendGrid does not
            document removal jobs as pollable; a client then has to confirm by list count).
    """

    seed: int = 42
    host: str = "127.0.0.1"
    amplitude_port: int = 0
    sendgrid_port: int = 0
    storage_port: int = 0
    extra_cohorts: list[dict] = field(default_factory=list)
    export_polls_before_ready: int = 2
    redirect_min_members: int = 100
    max_concurrent_amplitude_requests: int = 5
    import_delay_seconds: float = 0.3
    removal_delay_seconds: float = 0.2
    export_delay_seconds: float = 0.3
    field_activation_seconds: float = 1.0
    contact_limit: int = 10_000_000
    storage_url_ttl_seconds: float = 60.0
    validate_requests: bool = True
    amplitude_download_quota: int = 500
    amplitude_cohort_requests_per_window: int = 60
    amplitude_cohort_request_window_seconds: float = 600.0
    # Frozen, so that a test assigns a new set instead of changing one shared by copies.
    failing_jobs: frozenset[str] = frozenset()
    unpollable_jobs: frozenset[str] = frozenset()

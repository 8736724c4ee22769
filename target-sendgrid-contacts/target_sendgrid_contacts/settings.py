"""The target's settings, read once from the config and checked (pure)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from target_sendgrid_contacts.list_names import DEFAULT_TEMPLATE, template_placeholders
from target_sendgrid_contacts.sendgrid.client import api_base_url

_FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
RESERVED_NAMES = frozenset({"email", "first_name", "last_name"})
# A 2,000,000-member cohort is 67 bodies of 30,000: all of them may be pending at once, so a
# first sync never waits for one job before reading on, even at 30 s a job.
DEFAULT_MAX_JOBS_IN_FLIGHT = 100


@dataclass(frozen=True)
class Settings:
    """Checked settings (names as in meltano.yml).

    Attributes:
        api_key: SendGrid API key (never logged).
        base_url: API root from region / api_url.
        email_field: Dotted path of the email.
        first_name_field: Dotted path of the first name.
        last_name_field: Dotted path of the last name.
        custom_fields: SendGrid custom field name to dotted record path.
        create_missing_custom_fields: Create absent custom fields.
        list_name: Fixed list name.
        list_name_template: Template of per-cohort list names.
        sync_mode: ``mirror`` or ``upsert``.
        max_removal_ratio: Largest share of a list one run may remove.
        on_invalid_email: ``skip`` or ``fail``.
        max_sendgrid_rejections: Contacts SendGrid may refuse before the run fails.
        rejects_path: JSON-lines file of rejects.
        report_path: JSON report file.
        dry_run: Write nothing.
        job_poll_interval: First wait between job polls (seconds).
        job_timeout: Bound on one job wait (seconds).
        batch_size_rows: Contacts per upsert request at most (SDK setting).
        max_jobs_in_flight: Import jobs followed at once; the next request waits past it.
    """

    api_key: str = field(repr=False)  # a repr in a traceback or log must not show it
    base_url: str
    email_field: str = "email"
    first_name_field: str | None = None
    last_name_field: str | None = None
    custom_fields: dict[str, str] = field(default_factory=dict)
    create_missing_custom_fields: bool = False
    list_name: str | None = None
    list_name_template: str = DEFAULT_TEMPLATE
    sync_mode: str = "mirror"
    max_removal_ratio: float | None = None
    on_invalid_email: str = "skip"
    max_sendgrid_rejections: int = 0
    rejects_path: str | None = None
    report_path: str | None = None
    dry_run: bool = False
    job_poll_interval: float = 2.0
    job_timeout: float = 1800.0
    batch_size_rows: int | None = None
    max_jobs_in_flight: int = DEFAULT_MAX_JOBS_IN_FLIGHT

    @property
    def mirror(self) -> bool:
        """Whether lists are mirrored (members who left are removed)."""
        return self.sync_mode == "mirror"


def _choice(config: Mapping, name: str, default: str, options: set[str]) -> str:
    value = str(config.get(name) or default)
    if value not in options:
        raise ValueError(f"{name} must be one of {sorted(options)}, not {value!r}")
    return value


def settings_from_config(config: Mapping) -> Settings:
    """Read and check the target's config.

    Args:
        config: The plugin config (after the SDK's JSON-schema validation).

    Returns:
        Settings.

    Raises:
        ValueError: A setting is missing or inconsistent; the message names it.
    """
    api_key = str(config.get("api_key") or "").strip()
    if not api_key:
        raise ValueError("api_key is required (a SendGrid key with Marketing permission)")
    custom = dict(config.get("custom_fields") or {})
    for name, path in custom.items():
        if not _FIELD_NAME.fullmatch(name) or name.lower() in RESERVED_NAMES:
            raise ValueError(
                f"custom_fields: {name!r} is not a usable custom field name (letters, digits "
                "and underscores, not starting with a digit, not a reserved field)"
            )
        if not isinstance(path, str) or not path.strip():
            raise ValueError(f"custom_fields: {name!r} needs a dotted record path")
    template = str(config.get("list_name_template") or DEFAULT_TEMPLATE)
    template_placeholders(template)
    ratio = config.get("max_removal_ratio")
    if ratio is not None:
        ratio = float(ratio)
        if not 0 <= ratio <= 1:
            raise ValueError(f"max_removal_ratio must be between 0 and 1, not {ratio:g}")
    poll = float(config.get("job_poll_interval_seconds") or 2)
    timeout = float(config.get("job_timeout_seconds") or 1800)
    if poll <= 0 or timeout <= 0:
        raise ValueError("job_poll_interval_seconds and job_timeout_seconds must be positive")
    rejections = int(config.get("max_sendgrid_rejections") or 0)
    if rejections < 0:
        raise ValueError("max_sendgrid_rejections cannot be negative")
    batch_rows = config.get("batch_size_rows")
    if batch_rows is not None and int(batch_rows) < 1:
        raise ValueError("batch_size_rows must be at least 1")
    in_flight = config.get("max_jobs_in_flight")
    in_flight = DEFAULT_MAX_JOBS_IN_FLIGHT if in_flight is None else int(in_flight)
    if in_flight < 1:
        raise ValueError("max_jobs_in_flight must be at least 1")
    return Settings(
        api_key=api_key,
        base_url=api_base_url(str(config.get("region") or "global"), config.get("api_url")),
        email_field=str(config.get("email_field") or "email"),
        first_name_field=config.get("first_name_field") or None,
        last_name_field=config.get("last_name_field") or None,
        custom_fields=custom,
        create_missing_custom_fields=bool(config.get("create_missing_custom_fields", False)),
        list_name=(config.get("list_name") or "").strip() or None,
        list_name_template=template,
        sync_mode=_choice(config, "sync_mode", "mirror", {"mirror", "upsert"}),
        max_removal_ratio=ratio,
        on_invalid_email=_choice(config, "on_invalid_email", "skip", {"skip", "fail"}),
        max_sendgrid_rejections=rejections,
        rejects_path=config.get("rejects_path") or None,
        report_path=config.get("report_path") or None,
        dry_run=bool(config.get("dry_run", False)),
        job_poll_interval=poll,
        job_timeout=timeout,
        batch_size_rows=int(batch_rows) if batch_rows is not None else None,
        max_jobs_in_flight=in_flight,
    )

"""The target's settings: one JSON schema declares them all; one typed object is read from it.

``CONFIG_SCHEMA`` is the only place that names a setting, its type, default and bounds: the SDK
validates the config against it (filling defaults), and :func:`settings_from_config` reads the
result once into :class:`Settings`. Only checks a JSON schema cannot express live here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, cast

from singer_sdk import typing as th
from singer_sdk.plugin_base import JSONSchemaValidator

from target_sendgrid_contacts.list_names import DEFAULT_TEMPLATE, template_placeholders
from target_sendgrid_contacts.sendgrid.hosts import api_base_url

SyncMode = Literal["mirror", "upsert"]
OnInvalidEmail = Literal["skip", "fail"]

_FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
RESERVED_NAMES = frozenset({"email", "first_name", "last_name"})
# A 2,000,000-member cohort is 67 bodies of 30,000: all of them may be pending at once, so a
# first sync never waits for one job before reading on, even at 30 s a job.
DEFAULT_MAX_JOBS_IN_FLIGHT = 100

CONFIG_SCHEMA: dict = th.PropertiesList(
    th.Property(
        "api_key",
        th.StringType,
        required=True,
        secret=True,
        title="API key",
        description="SendGrid API key with Full Access, or Restricted Access with "
        "Marketing permission.",
    ),
    th.Property(
        "region",
        th.StringType,
        default="global",
        allowed_values=["global", "eu"],
        description="SendGrid region; picks the API host.",
    ),
    th.Property(
        "api_url",
        th.StringType,
        description="Overrides the region's API host (https, or http on a loopback "
        "address such as the sandbox).",
    ),
    th.Property(
        "email_field",
        th.StringType,
        default="email",
        description="Dotted record path of the email address, e.g. user_properties.email "
        "or user_id.",
    ),
    th.Property(
        "first_name_field", th.StringType, description="Dotted record path of the first name."
    ),
    th.Property(
        "last_name_field", th.StringType, description="Dotted record path of the last name."
    ),
    th.Property(
        "custom_fields",
        th.ObjectType(additional_properties=th.StringType),
        description="Maps a SendGrid custom field name to a dotted record path.",
    ),
    th.Property(
        "create_missing_custom_fields",
        th.BooleanType,
        default=False,
        description="Create custom fields named in custom_fields that SendGrid does not "
        "have yet (type from the stream schema).",
    ),
    th.Property(
        "list_name",
        th.StringType,
        description="One fixed SendGrid list for every record (overrides list_name_template).",
    ),
    th.Property(
        "list_name_template",
        th.StringType,
        default=DEFAULT_TEMPLATE,
        description="List name per cohort; {cohort_name}, {cohort_id} and {stream} are "
        "filled in; cut to 100 characters by shortening the name.",
    ),
    th.Property(
        "sync_mode",
        th.StringType,
        default="mirror",
        allowed_values=["mirror", "upsert"],
        description="mirror makes each list track its cohort exactly; upsert only adds and "
        "updates.",
    ),
    th.Property(
        "max_removal_ratio",
        th.NumberType(minimum=0, maximum=1),
        description="When set (0-1), a run that would remove more than this share of a "
        "list stops before removing.",
    ),
    th.Property(
        "on_invalid_email",
        th.StringType,
        default="skip",
        allowed_values=["skip", "fail"],
        description="What to do with a missing or invalid email.",
    ),
    th.Property(
        "max_sendgrid_rejections",
        th.IntegerType(minimum=0),
        default=0,
        description="How many contacts SendGrid may refuse in import jobs before the run "
        "exits non-zero.",
    ),
    th.Property(
        "rejects_path",
        th.StringType,
        description="JSON-lines file that receives every rejected record with its reason.",
    ),
    th.Property(
        "report_path",
        th.StringType,
        description="JSON file that receives the end-of-run report.",
    ),
    th.Property(
        "dry_run",
        th.BooleanType,
        default=False,
        description="Compute and report everything, write nothing to SendGrid.",
    ),
    th.Property(
        "job_poll_interval_seconds",
        th.NumberType(exclusive_minimum=0),
        default=2,
        description="First wait between polls of SendGrid import, removal and export jobs.",
    ),
    th.Property(
        "job_timeout_seconds",
        th.IntegerType(exclusive_minimum=0),
        default=1800,
        description="Bound on the wait for one SendGrid job.",
    ),
    th.Property(
        "batch_size_rows",
        th.IntegerType(minimum=1),
        default=30000,
        description="Contacts per upsert request at most (SendGrid allows 30,000 and 6 MB; "
        "both are enforced).",
    ),
    th.Property(
        "max_jobs_in_flight",
        th.IntegerType(minimum=1),
        default=DEFAULT_MAX_JOBS_IN_FLIGHT,
        description="SendGrid import jobs followed at once while input keeps flowing; "
        "past it, the next request waits for one to finish.",
    ),
).to_dict()


@dataclass(frozen=True)
class Settings:
    """The checked settings; each attribute is the setting of the same name in ``CONFIG_SCHEMA``.

    Attributes:
        api_key: SendGrid API key (never logged, not in the repr).
        region: ``global`` or ``eu``.
        api_url: Override of the region's host.
        base_url: API root picked from ``region`` and ``api_url``.
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
        job_poll_interval_seconds: First wait between job polls.
        job_timeout_seconds: Bound on one job wait.
        batch_size_rows: Contacts per upsert request at most.
        max_jobs_in_flight: Import jobs followed at once; the next request waits past it.
    """

    api_key: str = field(repr=False)  # a repr in a traceback or log must not show it
    region: str
    api_url: str | None
    base_url: str
    email_field: str
    first_name_field: str | None
    last_name_field: str | None
    custom_fields: dict[str, str]
    create_missing_custom_fields: bool
    list_name: str | None
    list_name_template: str
    sync_mode: SyncMode
    max_removal_ratio: float | None
    on_invalid_email: OnInvalidEmail
    max_sendgrid_rejections: int
    rejects_path: str | None
    report_path: str | None
    dry_run: bool
    job_poll_interval_seconds: float
    job_timeout_seconds: float
    batch_size_rows: int
    max_jobs_in_flight: int

    @property
    def mirror(self) -> bool:
        """Whether lists are mirrored (members who left are removed)."""
        return self.sync_mode == "mirror"


def _unset(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _validated(config: Mapping) -> dict:
    """The config as the SDK sees it: schema-checked, defaults filled; blank means unset."""
    values = {k: v for k, v in config.items() if k in CONFIG_SCHEMA["properties"]}
    values = {k: v for k, v in values.items() if not _unset(v)}
    errors = sorted(
        JSONSchemaValidator(CONFIG_SCHEMA).iter_errors(values), key=lambda e: list(e.path)
    )
    if errors:
        first = errors[0]
        where = ".".join(str(p) for p in first.path)
        raise ValueError(f"{where}: {first.message}" if where else first.message)
    return values


def _check_custom_fields(custom: Mapping[str, str]) -> None:
    for name, path in custom.items():
        if not _FIELD_NAME.fullmatch(name) or name.lower() in RESERVED_NAMES:
            raise ValueError(
                f"custom_fields: {name!r} is not a usable custom field name (letters, digits "
                "and underscores, not starting with a digit, not a reserved field)"
            )
        if not path.strip():
            raise ValueError(f"custom_fields: {name!r} needs a dotted record path")


def settings_from_config(config: Mapping) -> Settings:
    """Read and check the target's config, once.

    Args:
        config: The plugin config.

    Returns:
        Settings.

    Raises:
        ValueError: A setting is missing, out of bounds or inconsistent; the message names it.
    """
    values = _validated(config)
    custom = dict(values.get("custom_fields") or {})
    _check_custom_fields(custom)
    template_placeholders(values["list_name_template"])
    ratio = values.get("max_removal_ratio")
    return Settings(
        api_key=values["api_key"].strip(),
        region=values["region"],
        api_url=values.get("api_url"),
        base_url=api_base_url(values["region"], values.get("api_url")),
        email_field=values["email_field"],
        first_name_field=values.get("first_name_field"),
        last_name_field=values.get("last_name_field"),
        custom_fields=custom,
        create_missing_custom_fields=values["create_missing_custom_fields"],
        list_name=values["list_name"].strip() if "list_name" in values else None,
        list_name_template=values["list_name_template"],
        sync_mode=cast("SyncMode", values["sync_mode"]),
        max_removal_ratio=float(ratio) if ratio is not None else None,
        on_invalid_email=cast("OnInvalidEmail", values["on_invalid_email"]),
        max_sendgrid_rejections=values["max_sendgrid_rejections"],
        rejects_path=values.get("rejects_path"),
        report_path=values.get("report_path"),
        dry_run=values["dry_run"],
        job_poll_interval_seconds=float(values["job_poll_interval_seconds"]),
        job_timeout_seconds=float(values["job_timeout_seconds"]),
        batch_size_rows=values["batch_size_rows"],
        max_jobs_in_flight=values["max_jobs_in_flight"],
    )

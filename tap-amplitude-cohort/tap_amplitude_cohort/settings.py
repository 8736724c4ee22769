"""The tap's settings: declared once (``CONFIG_SCHEMA``), read once into ``TapSettings`` (pure).

``CONFIG_SCHEMA`` is the one source of names, types, defaults and bounds: the SDK validates the
config against it and fills the defaults in; ``TapSettings.from_config`` only converts.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from singer_sdk import typing as th

REGION_URLS = {
    "us": "https://amplitude.com",
    "eu": "https://analytics.eu.amplitude.com",
}

CONFIG_SCHEMA: dict[str, Any] = th.PropertiesList(
    th.Property(
        "api_key",
        th.StringType,
        required=True,
        secret=True,
        description="Amplitude project API key (HTTP Basic user name).",
    ),
    th.Property(
        "secret_key",
        th.StringType,
        required=True,
        secret=True,
        description="Amplitude project secret key (HTTP Basic password).",
    ),
    th.Property(
        "region",
        th.StringType(allowed_values=list(REGION_URLS)),
        default="us",
        description="Amplitude data region; picks the API host "
        "(us: amplitude.com, eu: analytics.eu.amplitude.com).",
    ),
    th.Property(
        "api_url",
        th.StringType,
        description="Overrides the region's API host (https, or http on a loopback "
        "address such as the sandbox).",
    ),
    th.Property(
        "cohort_ids",
        th.ArrayType(th.StringType),
        description="Ids of the cohorts whose members to export. An unknown id is an "
        "error listing the cohorts that exist.",
    ),
    th.Property(
        "user_property_keys",
        th.ArrayType(th.StringType),
        description="User properties to export (sent as repeated propKeys). Absent "
        "means all properties.",
    ),
    th.Property(
        "include_user_properties",
        th.BooleanType,
        default=True,
        description="Export user properties with each member (false sends props=0, "
        "which is faster on large cohorts).",
    ),
    th.Property(
        "skip_unchanged_cohorts",
        th.BooleanType,
        default=True,
        description="Skip the download of a cohort whose lastComputed has not moved since "
        "the last successful sync (saves the 500/month download quota).",
    ),
    th.Property(
        "redownload_cohort_ids",
        th.ArrayType(th.StringType),
        description="Cohorts to download in this run even though lastComputed has not "
        "moved (to apply a removal held by the target's max_removal_ratio). Set it for "
        "one run only.",
    ),
    th.Property(
        "poll_interval_seconds",
        th.NumberType(minimum=0),
        default=5,
        description="First wait between export status polls; it grows on each poll.",
    ),
    th.Property(
        "max_export_wait_seconds",
        th.IntegerType(minimum=1),
        default=3600,
        description="Bound on the total wait for one cohort export; past it the cohort fails.",
    ),
).to_dict()


def _setting(config: Mapping[str, Any], name: str) -> Any:
    """The configured value; the schema's default when absent or null.

    The SDK fills absent keys during validation; an explicit null (the schema's types are
    nullable) and an unvalidated config (``--about``, discovery in tests) get it here, from
    the same declaration.
    """
    value = config.get(name)
    return CONFIG_SCHEMA["properties"][name].get("default") if value is None else value


def _ids(values: Iterable[Any] | None) -> tuple[str, ...]:
    """Ids as stripped strings, without duplicates, in the configured order."""
    return tuple(dict.fromkeys(str(v).strip() for v in values or ()))


@dataclass(frozen=True)
class TapSettings:
    """The tap's settings, converted (names as in meltano.yml).

    Attributes:
        api_key: Amplitude API key (never logged).
        secret_key: Amplitude secret key (never logged).
        region: ``us`` or ``eu``.
        api_url: Overrides the region's host; None to use the region's.
        cohort_ids: Cohorts whose members to export, deduplicated, in order.
        user_property_keys: Property keys to ask for; None for all.
        include_user_properties: False exports no properties (``props=0``).
        skip_unchanged_cohorts: Skip a cohort whose lastComputed has not moved.
        redownload_cohort_ids: Cohorts downloaded although lastComputed has not moved.
        poll_interval_seconds: First wait between export status polls.
        max_export_wait_seconds: Bound on the wait for one export.
    """

    api_key: str = field(repr=False)  # a repr in a traceback or log must not show them
    secret_key: str = field(repr=False)
    region: str
    api_url: str | None
    cohort_ids: tuple[str, ...]
    user_property_keys: tuple[str, ...] | None
    include_user_properties: bool
    skip_unchanged_cohorts: bool
    redownload_cohort_ids: frozenset[str]
    poll_interval_seconds: float
    max_export_wait_seconds: float

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> TapSettings:
        """Read the settings from a (validated) config.

        Args:
            config: The tap config.

        Returns:
            The settings.
        """
        keys = _setting(config, "user_property_keys")
        return cls(
            api_key=str(_setting(config, "api_key") or ""),
            secret_key=str(_setting(config, "secret_key") or ""),
            region=str(_setting(config, "region")),
            api_url=(str(_setting(config, "api_url") or "").strip() or None),
            cohort_ids=_ids(_setting(config, "cohort_ids")),
            user_property_keys=tuple(str(k) for k in keys) if keys else None,
            include_user_properties=bool(_setting(config, "include_user_properties")),
            skip_unchanged_cohorts=bool(_setting(config, "skip_unchanged_cohorts")),
            redownload_cohort_ids=frozenset(_ids(_setting(config, "redownload_cohort_ids"))),
            poll_interval_seconds=float(_setting(config, "poll_interval_seconds")),
            max_export_wait_seconds=float(_setting(config, "max_export_wait_seconds")),
        )

    @property
    def base_url(self) -> str:
        """The API base URL without a trailing slash (see ``api_base_url``)."""
        return api_base_url(self.region, self.api_url)

    @property
    def export_options(self) -> str:
        """What an export asks for; a bookmark only holds for the same options."""
        if not self.include_user_properties:
            return "props=0"
        keys = self.user_property_keys
        return "props=1" + (f";propKeys={','.join(keys)}" if keys else "")


def api_base_url(region: str, api_url: str | None) -> str:
    """Return the API base URL: ``api_url`` if set, else the region's host.

    Args:
        region: The data region.
        api_url: The override, or None.

    Returns:
        The base URL without a trailing slash.

    Raises:
        ValueError: For an unknown region, or an ``api_url`` that is not https and not on a
            loopback address (credentials must not travel in clear text).
    """
    if not api_url:
        if region not in REGION_URLS:
            msg = f"region must be one of {', '.join(REGION_URLS)}, got {region!r}"
            raise ValueError(msg)
        return REGION_URLS[region]
    parts = urlsplit(api_url)
    if not parts.hostname or parts.scheme not in {"http", "https"}:
        msg = f"api_url must be an absolute http(s) URL, got {api_url!r}"
        raise ValueError(msg)
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        msg = (
            f"api_url must use https unless it points at a loopback address (such as the "
            f"sandbox on 127.0.0.1); got http on host {parts.hostname!r}"
        )
        raise ValueError(msg)
    return api_url.rstrip("/")


def resolve_api_url(config: Mapping[str, Any]) -> str:
    """Return the API base URL a config points at (``TapSettings.base_url``).

    Args:
        config: The tap config.

    Returns:
        The base URL without a trailing slash.
    """
    return TapSettings.from_config(config).base_url


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False

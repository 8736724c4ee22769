"""Pure: the API host of a region, or a checked override (https, or http on a loopback address)."""

from __future__ import annotations

import re
from urllib.parse import urlsplit


def api_base_url(region: str, api_url: str | None) -> str:
    """Pick the API host from ``region`` and ``api_url``.

    Args:
        region: ``global`` or ``eu``.
        api_url: Override; must be https unless it points at a loopback address.

    Returns:
        The base URL without a trailing slash.

    Raises:
        ValueError: Unknown region, or plain http to a non-loopback host.
    """
    if api_url:
        parts = urlsplit(api_url)
        loopback = parts.hostname in {"localhost", "127.0.0.1", "::1"} or bool(
            parts.hostname and re.fullmatch(r"127(\.\d{1,3}){3}", parts.hostname)
        )
        if parts.scheme != "https" and not (parts.scheme == "http" and loopback):
            raise ValueError(
                f"api_url must use https (plain http only on a loopback address): {api_url}"
            )
        return api_url.rstrip("/")
    hosts = {"global": "https://api.sendgrid.com", "eu": "https://api.eu.sendgrid.com"}
    if region not in hosts:
        raise ValueError(f"region must be one of {sorted(hosts)}, not {region!r}")
    return hosts[region]

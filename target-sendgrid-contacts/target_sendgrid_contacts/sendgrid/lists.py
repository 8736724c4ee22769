"""Contact lists: the key check, every page of the list index, and creation."""

from __future__ import annotations

import logging
from urllib.parse import parse_qs, urlsplit

from target_sendgrid_contacts.sendgrid.client import SendGridClient
from target_sendgrid_contacts.sendgrid.errors import SendGridUnavailableError

LOGGER = logging.getLogger("target_sendgrid_contacts.sendgrid.lists")

LISTS_PATH = "/v3/marketing/lists"
PAGE_SIZE = 1000


def check_access(client: SendGridClient) -> None:
    """Make the cheapest real Marketing call, so a bad key fails before any input is read.

    Args:
        client: The SendGrid client.

    Raises:
        SendGridAPIError: 401 (bad key) or 403 (no Marketing permission), with a plain sentence.
    """
    client.request("GET", LISTS_PATH, params={"page_size": 1}, ok=(200,))


def _next_token(metadata: object) -> str | None:
    if not isinstance(metadata, dict) or not metadata.get("next"):
        return None
    tokens = parse_qs(urlsplit(str(metadata["next"])).query).get("page_token")
    return tokens[0] if tokens else None


def fetch_all_lists(client: SendGridClient) -> dict[str, str]:
    """Read every page of the list index (following ``_metadata.next`` to the end).

    Only the page token is taken from ``next``: the request always goes to our base URL.

    Args:
        client: The SendGrid client.

    Returns:
        List name to id; with duplicate names, the first listed wins.
    """
    names: dict[str, str] = {}
    duplicates = 0
    params: dict[str, object] = {"page_size": PAGE_SIZE}
    seen_tokens: set[str] = set()
    while True:
        page = client.request("GET", LISTS_PATH, params=params, ok=(200,)).json()
        for item in page.get("result") or []:
            name, list_id = item.get("name"), item.get("id")
            if not name or not list_id:
                continue
            if name in names:
                duplicates += 1
            else:
                names[name] = list_id
        token = _next_token(page.get("_metadata"))
        if token is None or token in seen_tokens:
            break
        seen_tokens.add(token)
        params = {"page_size": PAGE_SIZE, "page_token": token}
    if duplicates:
        LOGGER.warning(
            "%d lists share a name with another list; the first listed is used", duplicates
        )
    return names


class ListDirectory:
    """Finds lists by exact name and creates the missing ones, once each."""

    def __init__(self, client: SendGridClient) -> None:
        """Read the whole list index.

        Args:
            client: The SendGrid client.
        """
        self._client = client
        self._ids = fetch_all_lists(client)
        self.created: list[str] = []

    @property
    def count(self) -> int:
        """Lists known (found at start or created since)."""
        return len(self._ids)

    def find(self, name: str) -> str | None:
        """Return the id of the list with exactly this name, if any.

        Args:
            name: List name.

        Returns:
            The id or None.
        """
        return self._ids.get(name)

    def find_or_create(self, name: str) -> str:
        """Return the list's id, creating the list when it does not exist.

        A creation whose answer was lost is not repeated blindly: the index is read again
        first, so a dropped connection cannot produce two lists of one name.

        Args:
            name: List name (1-100 characters).

        Returns:
            The list id.

        Raises:
            SendGridUnavailableError: The list could not be created.
        """
        found = self._ids.get(name)
        if found:
            return found
        for attempt in range(3):
            try:
                answer = self._client.request(
                    "POST", LISTS_PATH, json={"name": name}, ok=(200, 201), idempotent=False
                )
            except SendGridUnavailableError:
                if attempt == 2:
                    raise
                self._ids = fetch_all_lists(self._client)
                if name in self._ids:
                    return self._ids[name]
                continue
            list_id = answer.json()["id"]
            self._ids[name] = list_id
            self.created.append(list_id)
            LOGGER.info("Created list %s (%s)", name, list_id)
            return list_id
        raise SendGridUnavailableError(f"could not create list {name!r}")  # pragma: no cover

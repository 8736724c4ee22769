"""Fixtures for the mirror unit tests: a real SendGridClient on requests-mock."""

from __future__ import annotations

import pytest
import requests
from target_sendgrid_contacts.sendgrid.client import SendGridClient

from .helpers import BASE, FILES, KEY


@pytest.fixture
def client() -> SendGridClient:
    return SendGridClient(
        requests.Session(), BASE, KEY, max_attempts=2, backoff_seconds=0.01, sleep=lambda _: None
    )


@pytest.fixture
def mock_export(requests_mock):
    """Serve one export of LIST_ID: each call replaces the files and their status."""

    def serve(
        *files: bytes,
        polls_pending: int = 1,
        contact_count: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        requests_mock.post(
            f"{BASE}/v3/marketing/contacts/exports",
            status_code=202,
            json={"id": "exp-1", "_metadata": {}},
        )
        urls = [f"{FILES}/exports/file{i}.csv.gz?X-Amz-Signature=sig{i}" for i in range(len(files))]
        ready = {"id": "exp-1", "status": "ready", "urls": urls}
        if contact_count is not None:
            ready["contact_count"] = contact_count
        pending = {"id": "exp-1", "status": "pending"}
        requests_mock.get(
            f"{BASE}/v3/marketing/contacts/exports/exp-1",
            [{"json": pending}] * polls_pending + [{"json": ready}],
        )
        for url, body in zip(urls, files, strict=True):
            requests_mock.get(url, content=body, headers=headers or {})

    return serve

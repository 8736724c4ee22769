"""The fake SendGrid over real HTTP, mounted in the Sandbox (fixture ``sandbox``)."""

from __future__ import annotations

import csv
import gzip
import io
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

pytestmark = pytest.mark.integration


def session_for(key: str) -> requests.Session:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {key}"
    return session


def wait_for(session: requests.Session, url: str, done: set[str], timeout: float = 10) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        answer = session.get(url, timeout=5)
        assert answer.status_code == 200, answer.text
        if answer.json()["status"] in done:
            return answer.json()
        assert time.monotonic() < deadline, answer.json()
        time.sleep(0.02)


def test_upsert_job_export_and_download_over_http(sandbox):
    api = session_for(sandbox.sendgrid_api_key)
    base = sandbox.sendgrid_url
    list_id = api.post(f"{base}/v3/marketing/lists", json={"name": "http"}, timeout=5).json()["id"]
    contacts = [{"email": f"User{i}@Example.com", "first_name": f"U{i}"} for i in range(250)]
    contacts.append({"email": "reject+x@example.com"})
    upsert = api.put(
        f"{base}/v3/marketing/contacts",
        json={"list_ids": [list_id], "contacts": contacts},
        timeout=5,
    )
    assert upsert.status_code == 202
    job = wait_for(
        api,
        f"{base}/v3/marketing/contacts/imports/{upsert.json()['job_id']}",
        {"completed", "errored", "failed"},
    )
    assert job["status"] == "errored"
    assert (job["results"]["created_count"], job["results"]["errored_count"]) == (250, 1)

    export = api.post(
        f"{base}/v3/marketing/contacts/exports",
        json={"list_ids": [list_id], "file_type": "csv"},
        timeout=5,
    )
    assert export.status_code == 202
    ready = wait_for(
        api, f"{base}/v3/marketing/contacts/exports/{export.json()['id']}", {"ready", "failure"}
    )
    (url,) = ready["urls"]
    assert url.startswith(sandbox.storage_url)
    assert requests.get(url, headers=api.headers, timeout=5).status_code == 400  # no API key
    download = requests.get(url, timeout=5)
    assert download.status_code == 200
    rows = list(csv.DictReader(io.StringIO(gzip.decompress(download.content).decode())))
    assert {r["EMAIL"] for r in rows} == {f"user{i}@example.com" for i in range(250)}

    members = requests.get(f"{base}/_sandbox/lists/{list_id}/members", timeout=5).json()
    assert len(members) == 250
    lists = requests.get(f"{sandbox.amplitude_url}/_sandbox/lists", timeout=5).json()
    assert lists == [{"id": list_id, "name": "http", "member_count": 250}]


def test_refused_requests_show_their_violation_in_the_request_log(sandbox):
    api = session_for(sandbox.sendgrid_api_key)
    response = api.get(
        f"{sandbox.sendgrid_url}/v3/marketing/lists", params={"page_size": 5000}, timeout=5
    )
    assert response.status_code == 400
    (entry,) = [r for r in sandbox.requests if r["service"] == "sendgrid"]
    assert entry["status"] == 400
    assert "page_size" in entry["violation"]


def test_paging_over_http_returns_absolute_next_urls(sandbox):
    api = session_for(sandbox.sendgrid_api_key)
    for i in range(5):
        sandbox.sendgrid.create_list(f"list {i}")
    url, names = f"{sandbox.sendgrid_url}/v3/marketing/lists?page_size=2", []
    while url:
        body = api.get(url, timeout=5).json()
        names += [item["name"] for item in body["result"]]
        url = body["_metadata"].get("next")
        assert url is None or url.startswith(sandbox.sendgrid_url)
    assert names == [f"list {i}" for i in range(5)]


def test_concurrent_upserts_are_all_applied(sandbox):
    base = sandbox.sendgrid_url
    list_id = sandbox.sendgrid.create_list("busy")["id"]

    def send(batch: int) -> str:
        api = session_for(sandbox.sendgrid_api_key)
        contacts = [{"email": f"b{batch}.{i}@example.com"} for i in range(1000)]
        answer = api.put(
            f"{base}/v3/marketing/contacts",
            json={"list_ids": [list_id], "contacts": contacts},
            timeout=10,
        )
        assert answer.status_code == 202
        return answer.json()["job_id"]

    with ThreadPoolExecutor(4) as pool:
        job_ids = list(pool.map(send, range(12)))
    api = session_for(sandbox.sendgrid_api_key)
    for job_id in job_ids:
        job = wait_for(api, f"{base}/v3/marketing/contacts/imports/{job_id}", {"completed"})
        assert job["results"]["created_count"] == 1000
    assert len(sandbox.sendgrid.member_emails(list_id)) == 12_000


def test_limits_and_permissions_over_http(sandbox):
    base = sandbox.sendgrid_url
    restricted = session_for(sandbox.sendgrid_restricted_key)
    assert (
        restricted.get(f"{base}/v3/marketing/lists", params={"page_size": 1}, timeout=5).status_code
        == 403
    )
    assert restricted.get(f"{base}/v3/scopes", timeout=5).status_code == 200
    assert requests.get(f"{base}/v3/scopes", timeout=5).status_code == 401

    api = session_for(sandbox.sendgrid_api_key)
    contacts = [
        {
            "email": f"p{i}@example.com",
            "address_line_1": "a" * 100,
            "address_line_2": "b" * 100,
            "city": "c" * 60,
        }
        for i in range(17_300)
    ]
    too_big = api.put(f"{base}/v3/marketing/contacts", json={"contacts": contacts}, timeout=30)
    assert too_big.status_code == 413
    assert too_big.json()["errors"][0]["field"] is None

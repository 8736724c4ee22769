"""SendGridClient edge cases against canned HTTP answers (requests-mock)."""

from __future__ import annotations

import pytest
import requests
from target_sendgrid_contacts.sendgrid.client import SendGridClient
from target_sendgrid_contacts.sendgrid.errors import (
    JobTimeoutError,
    SendGridAPIError,
    SendGridUnavailableError,
)
from target_sendgrid_contacts.sendgrid.hosts import api_base_url

from tests.fake_time import FakeTime

BASE = "https://sg.test"
KEY = "SG.secret-key-value"


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime(1_000_000.0)


@pytest.fixture
def client(fake_time: FakeTime) -> SendGridClient:
    return SendGridClient(
        requests.Session(),
        BASE + "/",
        KEY,
        max_attempts=4,
        max_wait_seconds=20,
        backoff_seconds=0.5,
        sleep=fake_time.sleep,
        clock=fake_time.clock,
        monotonic=fake_time.clock,
    )


def test_bearer_auth_and_call_counts_by_endpoint(requests_mock, client):
    requests_mock.get(f"{BASE}/v3/marketing/lists/L1/contacts/count", json={"contact_count": 3})
    requests_mock.get(f"{BASE}/v3/marketing/lists/L2/contacts/count", json={"contact_count": 4})
    client.request("GET", "/v3/marketing/lists/L1/contacts/count")
    client.request("GET", "/v3/marketing/lists/L2/contacts/count")
    assert requests_mock.request_history[0].headers["Authorization"] == f"Bearer {KEY}"
    assert client.calls == {"GET /v3/marketing/lists/{id}/contacts/count": 2}


def test_429_waits_until_rate_limit_reset_with_jitter(requests_mock, client, fake_time):
    reset = int(fake_time.now) + 7
    requests_mock.put(
        f"{BASE}/v3/marketing/contacts",
        [
            {
                "status_code": 429,
                "json": {"errors": [{"field": None, "message": "too many requests"}]},
                "headers": {"X-RateLimit-Reset": str(reset)},
            },
            {"status_code": 202, "json": {"job_id": "j1"}},
        ],
    )
    resp = client.request("PUT", "/v3/marketing/contacts", json={"contacts": []})
    assert resp.json() == {"job_id": "j1"}
    assert len(fake_time.sleeps) == 1
    assert 7.0 < fake_time.sleeps[0] <= 8.0
    assert client.calls["PUT /v3/marketing/contacts"] == 2


def test_429_wait_is_capped(requests_mock, client, fake_time):
    requests_mock.get(
        f"{BASE}/v3/marketing/lists",
        [
            {"status_code": 429, "headers": {"X-RateLimit-Reset": str(int(fake_time.now) + 3600)}},
            {"status_code": 200, "json": {"result": []}},
        ],
    )
    client.request("GET", "/v3/marketing/lists")
    assert fake_time.sleeps == [20]


def test_5xx_and_dropped_connections_are_retried_with_growing_backoff(
    requests_mock, client, fake_time
):
    requests_mock.get(
        f"{BASE}/v3/marketing/lists",
        [
            {"status_code": 503, "text": "unavailable"},
            {"exc": requests.exceptions.ConnectionError("reset by peer")},
            {"exc": requests.exceptions.ReadTimeout("slow")},
            {"status_code": 200, "json": {"result": []}},
        ],
    )
    assert client.request("GET", "/v3/marketing/lists").status_code == 200
    assert len(fake_time.sleeps) == 3
    assert fake_time.sleeps[0] < fake_time.sleeps[1] < fake_time.sleeps[2]


def test_retries_are_bounded(requests_mock, client):
    requests_mock.get(f"{BASE}/v3/marketing/lists", status_code=500)
    with pytest.raises(SendGridUnavailableError, match="after 4 attempts"):
        client.request("GET", "/v3/marketing/lists")
    assert requests_mock.call_count == 4


def test_non_idempotent_call_is_not_repeated_after_a_dropped_connection(requests_mock, client):
    requests_mock.post(f"{BASE}/v3/marketing/lists", exc=requests.exceptions.ConnectionError)
    with pytest.raises(SendGridUnavailableError):
        client.request("POST", "/v3/marketing/lists", json={"name": "x"}, idempotent=False)
    assert requests_mock.call_count == 1


def test_4xx_raises_with_sendgrids_message_without_retry(requests_mock, client):
    requests_mock.put(
        f"{BASE}/v3/marketing/contacts",
        status_code=400,
        json={
            "errors": [{"field": "contacts[0].email", "message": "Jane.Doe@Example.com is invalid"}]
        },
    )
    with pytest.raises(SendGridAPIError) as info:
        client.request("PUT", "/v3/marketing/contacts", json={"contacts": []})
    assert requests_mock.call_count == 1
    assert info.value.status == 400
    assert "contacts[0].email: <email> is invalid" in str(info.value)
    assert "Jane.Doe" not in str(info.value)


def test_allowed_status_is_returned(requests_mock, client):
    requests_mock.post(
        f"{BASE}/v3/marketing/contacts/search/emails",
        status_code=404,
        json={"errors": [{"message": "contacts not found"}]},
    )
    resp = client.request(
        "POST",
        "/v3/marketing/contacts/search/emails",
        json={"emails": ["a@b.co"]},
        ok=(200,),
        allow=(404,),
    )
    assert resp.status_code == 404


def test_401_and_403_become_plain_sentences_without_the_key(requests_mock, client):
    requests_mock.get(
        f"{BASE}/v3/marketing/lists",
        [
            {"status_code": 401, "json": {"errors": [{"message": "authorization required"}]}},
            {"status_code": 403, "json": {"errors": [{"message": "access forbidden"}]}},
        ],
    )
    with pytest.raises(SendGridAPIError) as unauthorized:
        client.request("GET", "/v3/marketing/lists")
    with pytest.raises(SendGridAPIError) as forbidden:
        client.request("GET", "/v3/marketing/lists")
    assert "api_key" in str(unauthorized.value)
    assert "Full Access, or Restricted Access with Marketing" in str(forbidden.value)
    assert KEY not in str(unauthorized.value) + str(forbidden.value)


def test_download_sends_no_api_key_and_retries(requests_mock, client):
    url = "https://files.test/export.csv.gz?sig=abc"
    requests_mock.get(url, [{"status_code": 502}, {"status_code": 200, "content": b"data"}])
    resp = client.download(url)
    assert resp.content == b"data"
    assert all("Authorization" not in r.headers for r in requests_mock.request_history)


def test_wait_for_job_polls_until_not_pending(requests_mock, client, fake_time):
    requests_mock.get(
        f"{BASE}/v3/marketing/contacts/imports/j9",
        [
            {"json": {"id": "j9", "status": "pending", "results": {"created_count": 1}}},
            {"json": {"id": "j9", "status": "pending"}},
            {"json": {"id": "j9", "status": "completed", "results": {"created_count": 2}}},
        ],
    )
    job = client.wait_for_job("j9", poll_interval=1.0, timeout=60)
    assert job["status"] == "completed"
    assert fake_time.sleeps == [1.0, 1.5]


def test_wait_for_job_times_out(requests_mock, client):
    requests_mock.get(f"{BASE}/v3/marketing/contacts/imports/j9", json={"status": "pending"})
    with pytest.raises(JobTimeoutError, match="still pending"):
        client.wait_for_job("j9", poll_interval=2.0, timeout=5)


@pytest.mark.parametrize(
    ("region", "api_url", "expected"),
    [
        ("global", None, "https://api.sendgrid.com"),
        ("eu", None, "https://api.eu.sendgrid.com"),
        ("global", "http://127.0.0.1:8762/", "http://127.0.0.1:8762"),
        ("eu", "https://proxy.example.com", "https://proxy.example.com"),
    ],
)
def test_api_base_url(region, api_url, expected):
    assert api_base_url(region, api_url) == expected


@pytest.mark.parametrize(("region", "api_url"), [("us", None), ("global", "http://example.com")])
def test_api_base_url_refuses(region, api_url):
    with pytest.raises(ValueError, match="must"):
        api_base_url(region, api_url)


def test_a_429_seen_by_one_thread_holds_back_its_twin_and_counts_are_shared(
    requests_mock, client, fake_time
):
    reset = fake_time.now + 5
    requests_mock.put(
        f"{BASE}/v3/marketing/contacts",
        [
            {"status_code": 429, "headers": {"X-RateLimit-Reset": str(reset)}},
            {"status_code": 202, "json": {"job_id": "j"}},
        ],
    )
    requests_mock.get(f"{BASE}/v3/marketing/contacts/imports/j", json={"status": "pending"})
    twin = client.with_session(requests.Session())  # e.g. the job follower's thread

    client.request("PUT", "/v3/marketing/contacts", json={}, ok=(202,))
    slept = sum(fake_time.sleeps)
    fake_time.now -= slept  # the twin asks at the moment the 429 came in
    twin.request("GET", "/v3/marketing/contacts/imports/j")

    assert slept >= 5
    assert fake_time.sleeps[-1] == pytest.approx(slept)  # the twin waited out the same hold
    assert twin.calls is client.calls
    assert client.calls == {
        "PUT /v3/marketing/contacts": 2,
        "GET /v3/marketing/contacts/imports/{id}": 1,
    }

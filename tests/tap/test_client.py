"""AmplitudeClient against canned HTTP answers (requests-mock): retries, polling, downloads."""

from __future__ import annotations

import base64
import gzip
import io
import threading
import time

import pytest
import requests
from tap_amplitude_cohort.amplitude.client import AmplitudeClient
from tap_amplitude_cohort.amplitude.errors import (
    AmplitudeAPIError,
    ExportConnectionLost,
    ExportCorrupt,
    ExportFailed,
    ExportTimedOut,
    RateLimited,
    RetriesExhausted,
)

from tests.fake_time import FakeTime

BASE = "https://amplitude.test"
BASIC = "Basic " + base64.b64encode(b"key:secret").decode()
CSV = b'"amplitude_id","user_id","email"\n"1","u1","a@x.io"\n"2","","b@x.io"\n'


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime(1000.0)


@pytest.fixture
def client(fake_time: FakeTime) -> AmplitudeClient:
    return AmplitudeClient(
        requests.Session(),
        BASE + "/",
        "key",
        "secret",
        max_retries=3,
        backoff_seconds=1.0,
        sleep=fake_time.sleep,
        clock=fake_time.clock,
    )


def test_list_cohorts_authenticates_and_returns_cohorts(client, requests_mock):
    requests_mock.get(f"{BASE}/api/3/cohorts", json={"cohorts": [{"id": "a"}, {"id": "b"}]})
    assert [c["id"] for c in client.list_cohorts()] == ["a", "b"]
    assert requests_mock.last_request.headers["Authorization"] == BASIC


def test_wrong_keys_are_a_clear_error_without_retries(client, requests_mock):
    requests_mock.get(f"{BASE}/api/3/cohorts", status_code=401, text='{"error": "Invalid API key"}')
    with pytest.raises(AmplitudeAPIError, match="refused the cohort list: HTTP 401") as info:
        client.list_cohorts()
    assert info.value.status == 401
    assert requests_mock.call_count == 1
    assert "secret" not in str(info.value)


def test_request_export_sends_props_and_repeated_prop_keys(client, requests_mock):
    route = requests_mock.get(
        f"{BASE}/api/5/cohorts/request/abc", status_code=202, json={"request_id": "r1"}
    )
    assert client.request_export("abc", property_keys=["email", "gp:plan"]) == "r1"
    query = route.last_request.qs
    assert query["props"] == ["1"]
    assert route.last_request.url.count("propKeys=") == 2
    assert "propKeys%5B%5D" not in route.last_request.url
    assert [v.lower() for v in query["propkeys"]] == ["email", "gp:plan"]
    assert client.export_requests == 1


def test_request_export_without_properties_sends_props_0(client, requests_mock):
    route = requests_mock.get(
        f"{BASE}/api/5/cohorts/request/abc", status_code=202, json={"request_id": "r1"}
    )
    client.request_export("abc", include_properties=False, property_keys=["email"])
    assert route.last_request.qs == {"props": ["0"]}


def test_429_then_success_is_retried_with_backoff(client, requests_mock, fake_time):
    requests_mock.get(
        f"{BASE}/api/5/cohorts/request/abc",
        [
            {"status_code": 429, "text": "Too many concurrent requests"},
            {"status_code": 429, "text": "Too many concurrent requests"},
            {"status_code": 202, "json": {"request_id": "r9"}},
        ],
    )
    assert client.request_export("abc") == "r9"
    assert requests_mock.call_count == 3
    assert len(fake_time.sleeps) == 2
    assert 0.5 <= fake_time.sleeps[0] <= 1.0  # 1 s base, jittered down to half
    assert 1.0 <= fake_time.sleeps[1] <= 2.0  # doubled
    assert client.export_requests == 1  # only the accepted call used quota


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_5xx_then_success_is_retried(client, requests_mock, status):
    requests_mock.get(
        f"{BASE}/api/3/cohorts",
        [{"status_code": status, "text": "oops"}, {"json": {"cohorts": []}}],
    )
    assert client.list_cohorts() == []
    assert requests_mock.call_count == 2


def test_connection_error_then_success_is_retried(client, requests_mock):
    requests_mock.get(
        f"{BASE}/api/3/cohorts",
        [{"exc": requests.ConnectionError("reset")}, {"json": {"cohorts": [{"id": "a"}]}}],
    )
    assert len(client.list_cohorts()) == 1


def test_retry_after_header_is_honoured(client, requests_mock, fake_time):
    requests_mock.get(
        f"{BASE}/api/3/cohorts",
        [{"status_code": 429, "headers": {"Retry-After": "7"}}, {"json": {"cohorts": []}}],
    )
    client.list_cohorts()
    assert fake_time.sleeps == [7.0]


def test_a_huge_retry_after_is_capped_so_the_retries_stay_bounded(client, requests_mock, fake_time):
    requests_mock.get(f"{BASE}/api/3/cohorts", status_code=429, headers={"Retry-After": "86400"})
    with pytest.raises(RateLimited):
        client.list_cohorts()
    assert fake_time.sleeps == [30.0, 30.0, 30.0]  # max_backoff_seconds, not a day each


def test_persistent_429_gives_up_after_the_bound_naming_the_cohort(client, requests_mock):
    requests_mock.get(
        f"{BASE}/api/5/cohorts/request/abc",
        status_code=429,
        text="Monthly cohort download quota exceeded (500 per month).",
    )
    with pytest.raises(RateLimited, match="cohort abc kept failing after 4 attempts") as info:
        client.request_export("abc")
    assert "Monthly cohort download quota exceeded" in str(info.value)
    assert requests_mock.call_count == 4  # 1 + max_retries


def test_persistent_5xx_gives_up_after_the_bound(client, requests_mock):
    requests_mock.get(f"{BASE}/api/3/cohorts", status_code=503)
    with pytest.raises(RetriesExhausted, match="HTTP 503"):
        client.list_cohorts()
    assert requests_mock.call_count == 4


def test_other_4xx_is_a_clear_error_naming_the_cohort(client, requests_mock):
    requests_mock.get(
        f"{BASE}/api/5/cohorts/request/zzz",
        status_code=404,
        json={"error": {"message": "Cohort zzz not found"}},
    )
    with pytest.raises(AmplitudeAPIError, match=r"cohort zzz: HTTP 404.*not found"):
        client.request_export("zzz")
    assert requests_mock.call_count == 1


def status_answer(done: bool) -> dict:
    return {
        "status_code": 200 if done else 202,
        "json": {"async_status": "JOB COMPLETED" if done else "JOB INPROGRESS"},
    }


def test_wait_for_export_polls_with_a_growing_interval(client, requests_mock, fake_time):
    requests_mock.get(
        f"{BASE}/api/5/cohorts/request-status/r1",
        [status_answer(False)] * 4 + [status_answer(True)],
    )
    client.wait_for_export("r1", cohort_id="abc", poll_interval=2, max_wait=600)
    assert fake_time.sleeps == [2, 3, 4.5, 6.75]


def test_poll_interval_stops_growing_at_a_minute(client, requests_mock, fake_time):
    requests_mock.get(
        f"{BASE}/api/5/cohorts/request-status/r1",
        [status_answer(False)] * 4 + [status_answer(True)],
    )
    client.wait_for_export("r1", cohort_id="abc", poll_interval=30, max_wait=3600)
    assert fake_time.sleeps == [30, 45, 60, 60]


def test_wait_for_export_gives_up_at_the_deadline(client, requests_mock, fake_time):
    requests_mock.get(f"{BASE}/api/5/cohorts/request-status/r1", **status_answer(False))
    with pytest.raises(ExportTimedOut, match="cohort abc did not complete within 60 s"):
        client.wait_for_export("r1", cohort_id="abc", poll_interval=5, max_wait=60)
    assert sum(fake_time.sleeps) == pytest.approx(60)
    assert max(fake_time.sleeps) <= 60


@pytest.mark.parametrize(
    "answer",
    [
        {"status_code": 200, "json": {"async_status": "JOB FAILED"}},
        {"status_code": 200, "json": {}},
        {"status_code": 204, "text": ""},
    ],
)
def test_unexpected_export_status_fails_the_cohort(client, requests_mock, answer):
    requests_mock.get(f"{BASE}/api/5/cohorts/request-status/r1", **answer)
    with pytest.raises(ExportFailed, match="export of cohort abc failed"):
        client.wait_for_export("r1", cohort_id="abc", poll_interval=1, max_wait=60)


def read_export(client: AmplitudeClient) -> bytes:
    with client.open_export_file("r1", cohort_id="abc") as body:
        return body.read()


def test_direct_gzip_body_is_decompressed(client, requests_mock):
    requests_mock.get(
        f"{BASE}/api/5/cohorts/request/r1/file",
        content=gzip.compress(CSV),
        headers={"Content-Encoding": "gzip"},
    )
    assert read_export(client) == CSV


def test_redirect_to_storage_is_followed_without_credentials(client, requests_mock):
    storage = "https://bucket.s3.test/export.csv.gz?X-Amz-Signature=abc"
    requests_mock.get(
        f"{BASE}/api/5/cohorts/request/r1/file", status_code=302, headers={"Location": storage}
    )
    stored = requests_mock.get(storage, content=gzip.compress(CSV))
    assert read_export(client) == CSV
    assert "Authorization" not in stored.last_request.headers
    assert requests_mock.request_history[0].headers["Authorization"] == BASIC


def test_expired_storage_link_is_replaced_by_a_fresh_one(client, requests_mock):
    requests_mock.get(
        f"{BASE}/api/5/cohorts/request/r1/file",
        [
            {"status_code": 302, "headers": {"Location": "https://s3.test/old"}},
            {"status_code": 302, "headers": {"Location": "https://s3.test/new"}},
        ],
    )
    requests_mock.get("https://s3.test/old", status_code=403, text="<Error>expired</Error>")
    requests_mock.get("https://s3.test/new", content=gzip.compress(CSV))
    assert read_export(client) == CSV


def test_truncated_download_raises_export_corrupt(client, requests_mock):
    data = gzip.compress(CSV * 100)
    requests_mock.get(f"{BASE}/api/5/cohorts/request/r1/file", content=data[: len(data) // 2])
    with pytest.raises(ExportCorrupt, match="cohort abc is truncated"):
        read_export(client)


class DroppingBody(io.RawIOBase):
    """A body that yields some bytes, then fails as a reset connection does."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if not self._data:
            raise ConnectionResetError("connection reset by peer")
        size = min(len(buffer), len(self._data))
        buffer[:size] = self._data[:size]
        self._data = self._data[size:]
        return size


def test_dropped_connection_raises_export_connection_lost(client, requests_mock):
    data = gzip.compress(CSV * 1000)
    requests_mock.get(
        f"{BASE}/api/5/cohorts/request/r1/file", body=DroppingBody(data[: len(data) // 3])
    )
    with pytest.raises(ExportConnectionLost, match="connection dropped while reading"):
        read_export(client)


class SlowSession(requests.Session):
    """Answers every call after a pause, counting how many calls are in flight at once."""

    def __init__(self) -> None:
        super().__init__()
        self.in_flight = 0
        self.peak = 0
        self.calls = 0
        self._lock = threading.Lock()

    def request(self, method, url, **kwargs):
        with self._lock:
            self.calls += 1
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
        time.sleep(0.05)
        with self._lock:
            self.in_flight -= 1
        response = requests.Response()
        response.status_code = 200
        response._content = b'{"cohorts": []}'
        return response


def test_no_more_than_five_requests_in_flight():
    session = SlowSession()
    client = AmplitudeClient(session, BASE, "key", "secret")
    threads = [threading.Thread(target=client.list_cohorts) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert session.calls == 12
    assert session.peak == 5

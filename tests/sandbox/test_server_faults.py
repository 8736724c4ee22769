"""The Sandbox server: ports, request log, inspection endpoints, reset and every fault kind."""

from __future__ import annotations

import time

import pytest
import requests

from sandbox import Sandbox, SandboxConfig

pytestmark = pytest.mark.integration


def _cohorts(sb, **kwargs) -> requests.Response:
    return requests.get(
        f"{sb.amplitude_url}/api/3/cohorts",
        auth=(sb.amplitude_api_key, sb.amplitude_secret_key),
        timeout=kwargs.pop("timeout", 10),
        **kwargs,
    )


def _storage_url(sb) -> str:
    """A signed storage URL to the pwrusr1 export (a streamed, gzip body)."""
    auth = (sb.amplitude_api_key, sb.amplitude_secret_key)
    request_id = requests.get(
        f"{sb.amplitude_url}/api/5/cohorts/request/pwrusr1", auth=auth, timeout=5
    ).json()["request_id"]
    while (
        requests.get(
            f"{sb.amplitude_url}/api/5/cohorts/request-status/{request_id}", auth=auth, timeout=5
        ).status_code
        != 200
    ):
        pass
    return requests.get(
        f"{sb.amplitude_url}/api/5/cohorts/request/{request_id}/file",
        auth=auth,
        allow_redirects=False,
        timeout=5,
    ).headers["Location"]


def test_three_services_on_distinct_loopback_ports_and_stop_frees_them():
    sb = Sandbox(SandboxConfig()).start()
    urls = [sb.amplitude_url, sb.sendgrid_url, sb.storage_url]
    try:
        assert all(u.startswith("http://127.0.0.1:") and not u.endswith("/") for u in urls)
        assert len(set(urls)) == 3
        for url in urls:
            assert requests.get(f"{url}/_sandbox/summary", timeout=5).status_code == 200
    finally:
        sb.stop()
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{urls[0]}/_sandbox/summary", timeout=2)
    with Sandbox(SandboxConfig(amplitude_port=int(urls[0].rsplit(":", 1)[1]))) as again:
        assert again.amplitude_url == urls[0]  # the port was released
        assert _cohorts(again).status_code == 200


def test_request_log_records_service_calls_without_credentials(sandbox):
    _cohorts(sandbox)
    requests.get(
        f"{sandbox.amplitude_url}/api/5/cohorts/request/pwrusr1?props=1&propKeys=a&propKeys=b",
        auth=(sandbox.amplitude_api_key, "wrong"),
        timeout=5,
    )
    requests.get(f"{sandbox.amplitude_url}/_sandbox/summary", timeout=5)
    log = sandbox.requests
    assert [(r["service"], r["method"], r["path"], r["status"]) for r in log] == [
        ("amplitude", "GET", "/api/3/cohorts", 200),
        ("amplitude", "GET", "/api/5/cohorts/request/pwrusr1", 401),
    ]
    assert log[1]["query"] == {"props": ["1"], "propKeys": ["a", "b"]}
    assert log[0]["violation"] is None
    assert isinstance(log[0]["ts"], float)
    assert sandbox.amplitude_secret_key not in repr(log)
    over_http = requests.get(f"{sandbox.sendgrid_url}/_sandbox/requests", timeout=5).json()
    assert [r["path"] for r in over_http] == [r["path"] for r in log]


def test_summary_is_the_same_on_every_port_and_reset_forgets_everything(sandbox):
    requests.get(
        f"{sandbox.amplitude_url}/api/5/cohorts/request/empty03",
        auth=(sandbox.amplitude_api_key, sandbox.amplitude_secret_key),
        timeout=5,
    )
    sandbox.amplitude.churn("pwrusr1", remove=5)
    sandbox.faults.add("sendgrid", status=500, times=None)
    summaries = [
        requests.get(f"{url}/_sandbox/summary", timeout=5).json()
        for url in (sandbox.amplitude_url, sandbox.sendgrid_url, sandbox.storage_url)
    ]
    assert summaries[0] == summaries[1] == summaries[2]
    assert summaries[0]["downloads_used"] == 1
    assert {c["id"]: c["size"] for c in summaries[0]["cohorts"]}["pwrusr1"] == 995
    assert "sendgrid" in summaries[0]
    reset = requests.post(f"{sandbox.storage_url}/_sandbox/reset", timeout=5)
    assert reset.status_code == 200
    assert sandbox.amplitude.downloads_used == 0
    assert sandbox.generator.size("pwrusr1") == 1000
    assert sandbox.faults.rules() == []
    assert sandbox.requests == []


def test_unknown_inspection_path_is_404(sandbox):
    answer = requests.get(f"{sandbox.amplitude_url}/_sandbox/nothing-here", timeout=5)
    assert answer.status_code == 404


def test_respond_fault_hits_only_matching_requests_the_given_number_of_times(sandbox):
    sandbox.faults.add(
        "amplitude", "GET", r"^/api/3/cohorts$", times=2,
        status=503, body={"error": "maintenance"}, headers={"X-Why": "test"},
    )  # fmt: skip
    first = _cohorts(sandbox)
    assert (first.status_code, first.json(), first.headers["X-Why"]) == (
        503, {"error": "maintenance"}, "test",
    )  # fmt: skip
    assert (
        requests.post(  # another method is not matched
            f"{sandbox.amplitude_url}/api/3/cohorts",
            auth=(sandbox.amplitude_api_key, sandbox.amplitude_secret_key),
            timeout=5,
        ).status_code
        == 405
    )
    assert _cohorts(sandbox).status_code == 503
    assert _cohorts(sandbox).status_code == 200  # exhausted after two hits
    assert [r["fault"] for r in sandbox.requests] == ["respond", None, "respond", None]


def test_rate_limited_fault_answers_sendgrids_429(sandbox):
    sandbox.faults.add("sendgrid", "PUT", "/v3/marketing/contacts", rate_limited=True, reset_in=5)
    answer = requests.put(
        f"{sandbox.sendgrid_url}/v3/marketing/contacts",
        headers={"Authorization": f"Bearer {sandbox.sendgrid_api_key}"},
        json={"contacts": [{"email": "a@b.co"}]},
        timeout=5,
    )
    assert answer.status_code == 429
    assert answer.json() == {"errors": [{"field": None, "message": "too many requests"}]}
    assert answer.headers["X-RateLimit-Remaining"] == "0"
    assert int(answer.headers["X-RateLimit-Limit"]) > 0
    reset = int(answer.headers["X-RateLimit-Reset"])
    assert time.time() + 3 < reset <= time.time() + 6  # epoch seconds, reset_in ahead
    assert "Retry-After" not in answer.headers


def test_delay_fault_makes_a_short_client_timeout_expire(sandbox):
    sandbox.faults.add("amplitude", path="/api/3/cohorts", delay=1.0)
    with pytest.raises(requests.ReadTimeout):
        _cohorts(sandbox, timeout=0.2)
    assert _cohorts(sandbox, timeout=2).status_code == 200


def test_delayed_request_is_answered_normally_afterwards(sandbox):
    sandbox.faults.add("amplitude", path="/api/3/cohorts", delay=0.1)
    answer = _cohorts(sandbox)
    assert answer.status_code == 200
    assert len(answer.json()["cohorts"]) == 4


def test_truncate_fault_cuts_a_sized_body(sandbox):
    sandbox.faults.add("amplitude", path="/api/3/cohorts", truncate_after=100)
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        _cohorts(sandbox)
    assert _cohorts(sandbox).status_code == 200


def test_truncate_fault_cuts_a_streamed_storage_download(sandbox):
    url = _storage_url(sandbox)
    sandbox.faults.add("storage", "GET", "^/files/", truncate_after=500)
    with pytest.raises((requests.exceptions.ChunkedEncodingError, requests.ConnectionError)):
        requests.get(url, timeout=5)
    assert len(requests.get(url, timeout=5).content) > 10_000


def test_corrupt_fault_delivers_the_whole_body_with_one_byte_damaged(sandbox):
    url = _storage_url(sandbox)

    def raw_bytes() -> bytes:  # as sent: the file is gzip, requests would inflate it
        with requests.get(url, timeout=10, stream=True) as answer:
            return answer.raw.read(decode_content=False)

    whole = raw_bytes()
    sandbox.faults.add("storage", "GET", "/files/", corrupt_at=30)
    damaged = raw_bytes()
    assert len(damaged) == len(whole)
    assert [i for i, (a, b) in enumerate(zip(whole, damaged, strict=True)) if a != b] == [30]
    assert damaged[30] == whole[30] ^ 0xFF
    assert raw_bytes() == whole  # times=1: the next read is whole


def test_drop_fault_closes_the_connection_without_an_answer(sandbox):
    sandbox.faults.add("amplitude", path="/api/3/cohorts", drop=True)
    with pytest.raises(requests.ConnectionError):
        _cohorts(sandbox)
    assert sandbox.requests[0]["status"] is None
    assert sandbox.requests[0]["fault"] == "drop"
    assert _cohorts(sandbox).status_code == 200


def test_faults_over_http_add_list_and_delete(sandbox):
    base = f"{sandbox.sendgrid_url}/_sandbox/faults"
    added = requests.post(
        base,
        json={"service": "amplitude", "path": "cohorts", "status": 500, "times": None},
        timeout=5,
    )
    assert added.status_code == 201
    assert added.json()["action"] == "respond"
    assert requests.get(base, timeout=5).json()[0]["id"] == added.json()["id"]
    assert _cohorts(sandbox).status_code == 500
    assert _cohorts(sandbox).status_code == 500  # times: null hits every request
    assert requests.delete(base, timeout=5).status_code == 200
    assert _cohorts(sandbox).status_code == 200
    bad = requests.post(base, json={"service": "amplitude", "status": 500, "drop": True}, timeout=5)
    assert bad.status_code == 400
    assert requests.post(base, json={"service": "ftp", "drop": True}, timeout=5).status_code == 400
    zero = requests.post(base, json={"drop": True, "times": 0}, timeout=5)
    assert zero.status_code == 400
    assert sandbox.faults.rules() == []


def test_faults_can_be_removed_one_by_one(sandbox):
    keep = sandbox.faults.add("amplitude", path="/nothing", status=500)
    gone = sandbox.faults.add("amplitude", path="cohorts", status=500)
    answer = requests.delete(f"{sandbox.amplitude_url}/_sandbox/faults?id={gone.id}", timeout=5)
    assert answer.status_code == 200
    assert [r.id for r in sandbox.faults.rules()] == [keep.id]
    assert _cohorts(sandbox).status_code == 200


def test_inspection_paths_are_never_faulted(sandbox):
    sandbox.faults.add("*", path=".*", drop=True, times=None)
    assert requests.get(f"{sandbox.amplitude_url}/_sandbox/summary", timeout=5).status_code == 200


def test_request_log_shows_the_sendgrid_openapi_violation(sandbox):
    answer = requests.put(
        f"{sandbox.sendgrid_url}/v3/marketing/contacts",
        headers={"Authorization": f"Bearer {sandbox.sendgrid_api_key}"},
        json={"contacts": "not a list"},
        timeout=5,
    )
    assert answer.status_code == 400
    entry = sandbox.requests[-1]
    assert (entry["service"], entry["status"]) == ("sendgrid", 400)
    assert entry["violation"]
    assert sandbox.sendgrid_api_key not in repr(sandbox.requests)


def test_fault_path_can_be_given_as_path_regex(sandbox):
    sandbox.faults.add("amplitude", "get", path_regex=r"^/api/3/", status=502)
    assert _cohorts(sandbox).status_code == 502
    assert _cohorts(sandbox).status_code == 200

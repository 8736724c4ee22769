"""The fake Amplitude over real HTTP: auth, cohort list, the export flow, limits and churn."""

from __future__ import annotations

import csv
import gzip
import io
import threading

import pytest
import requests
from werkzeug.test import EnvironBuilder

from sandbox.amplitude import limit_concurrency

pytestmark = pytest.mark.integration


def _auth(sb) -> tuple[str, str]:
    return (sb.amplitude_api_key, sb.amplitude_secret_key)


def _get(sb, path: str, **kwargs) -> requests.Response:
    return requests.get(f"{sb.amplitude_url}{path}", auth=_auth(sb), timeout=10, **kwargs)


def _request_export(sb, cohort_id: str, **params) -> str:
    answer = _get(sb, f"/api/5/cohorts/request/{cohort_id}", params=params)
    assert answer.status_code == 202, answer.text
    assert answer.json()["cohort_id"] == cohort_id
    return answer.json()["request_id"]


def _wait_ready(sb, request_id: str) -> list[int]:
    statuses = []
    for _ in range(10):
        answer = _get(sb, f"/api/5/cohorts/request-status/{request_id}")
        statuses.append(answer.status_code)
        if answer.status_code == 200:
            assert answer.json()["async_status"] == "JOB COMPLETED"
            return statuses
        assert answer.json()["async_status"] == "JOB INPROGRESS"
    pytest.fail(f"export never completed: {statuses}")


def _rows(content: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(content.decode("utf-8-sig"), newline="")))


def _export_rows(sb, cohort_id: str, **params) -> list[list[str]]:
    request_id = _request_export(sb, cohort_id, **params)
    _wait_ready(sb, request_id)
    answer = _get(sb, f"/api/5/cohorts/request/{request_id}/file")
    assert answer.status_code == 200
    return _rows(answer.content)


def _cohorts(sb) -> dict[str, dict]:
    answer = _get(sb, "/api/3/cohorts")
    assert answer.status_code == 200
    return {c["id"]: c for c in answer.json()["cohorts"]}


def test_requests_without_valid_basic_auth_get_401(sandbox):
    url = f"{sandbox.amplitude_url}/api/3/cohorts"
    assert requests.get(url, timeout=5).status_code == 401
    wrong = requests.get(url, auth=(sandbox.amplitude_api_key, "nope"), timeout=5)
    assert wrong.status_code == 401
    assert "error" in wrong.json()
    bearer = requests.get(url, headers={"Authorization": "Bearer x"}, timeout=5)
    assert bearer.status_code == 401


def test_cohort_list_describes_every_cohort_with_both_timestamp_units(sandbox):
    cohorts = _cohorts(sandbox)
    assert list(cohorts) == ["pwrusr1", "trlrsk2", "empty03", "allusr9"]
    power, trial = cohorts["pwrusr1"], cohorts["trlrsk2"]
    assert power["name"] == "Power users"
    assert trial["name"] == "Trial users at risk of churning — EU"
    assert (power["size"], trial["size"], cohorts["empty03"]["size"]) == (1000, 250, 0)
    assert cohorts["allusr9"]["size"] == 2_500_000
    for cohort in cohorts.values():
        for key in ("description", "archived", "published", "owners", "type", "createdAt"):
            assert key in cohort
    assert power["lastComputed"] > 10**12  # epoch milliseconds
    assert 10**9 < trial["lastComputed"] < 10**11  # epoch seconds


def test_small_cohort_file_is_served_gzip_after_the_polls(sandbox_factory):
    sb = sandbox_factory(export_polls_before_ready=2)
    request_id = _request_export(sb, "empty03", props=1)
    early = _get(sb, f"/api/5/cohorts/request/{request_id}/file")
    assert early.status_code >= 400
    assert _wait_ready(sb, request_id) == [202, 202, 200]
    answer = _get(sb, f"/api/5/cohorts/request/{request_id}/file", stream=True)
    assert answer.status_code == 200
    assert answer.headers["Content-Encoding"] == "gzip"
    raw = answer.raw.read()  # undecoded bytes
    assert gzip.decompress(raw).startswith(b'"amplitude_id","user_id"')  # quoted CSV
    assert len(_rows(gzip.decompress(raw))) == 1  # header only: a whole, empty cohort


def test_large_cohort_file_redirects_to_storage_that_matches_the_generator(sandbox):
    request_id = _request_export(sandbox, "pwrusr1", props=1)
    _wait_ready(sandbox, request_id)
    redirect = _get(sandbox, f"/api/5/cohorts/request/{request_id}/file", allow_redirects=False)
    assert redirect.status_code == 302
    location = redirect.headers["Location"]
    assert location.startswith(sandbox.storage_url)
    download = requests.get(location, timeout=10)
    assert download.status_code == 200
    assert download.headers["Content-Encoding"] == "gzip"
    rows = _rows(download.content)
    header, body = rows[0], rows[1:]
    assert header[:3] == ["amplitude_id", "user_id", "email"]
    members = list(sandbox.generator.members("pwrusr1"))
    assert len(body) == len(members) == 1000
    by_column = [dict(zip(header, row, strict=True)) for row in body]
    assert [r["email"] for r in by_column] == [m["email"] for m in members]
    assert [r["company"] for r in by_column] == [m["company"] for m in members]
    assert [r["user_id"] for r in by_column] == [m["user_id"] for m in members]
    assert {
        r["email"].strip().lower()
        for r, m in zip(by_column, members, strict=True)
        if m["expected_email"]
    } == sandbox.generator.expected_emails("pwrusr1")


def test_file_link_mints_a_fresh_storage_url_each_call(sandbox):
    request_id = _request_export(sandbox, "pwrusr1")
    _wait_ready(sandbox, request_id)
    first = _get(sandbox, f"/api/5/cohorts/request/{request_id}/file")
    second = _get(sandbox, f"/api/5/cohorts/request/{request_id}/file")
    assert first.status_code == second.status_code == 200
    assert first.content == second.content


def test_storage_refuses_a_request_carrying_the_api_credentials(sandbox):
    request_id = _request_export(sandbox, "pwrusr1")
    _wait_ready(sandbox, request_id)
    location = _get(
        sandbox, f"/api/5/cohorts/request/{request_id}/file", allow_redirects=False
    ).headers["Location"]
    refused = requests.get(location, auth=_auth(sandbox), timeout=10)
    assert refused.status_code == 400
    assert "Only one auth mechanism allowed" in refused.text


def test_storage_refuses_a_tampered_signed_url(sandbox):
    request_id = _request_export(sandbox, "pwrusr1")
    _wait_ready(sandbox, request_id)
    location = _get(
        sandbox, f"/api/5/cohorts/request/{request_id}/file", allow_redirects=False
    ).headers["Location"]
    assert requests.get(location, timeout=10).status_code == 200
    expires = location.split("&Expires=", 1)[1].split("&", 1)[0]
    later = location.replace(f"&Expires={expires}", f"&Expires={int(expires) + 3600}")
    assert requests.get(later, timeout=10).status_code == 403  # the signature covers expiry
    unsigned = location.split("&X-Amz-Signature=", 1)[0]
    assert requests.get(unsigned, timeout=10).status_code == 403


def test_expired_storage_url_is_refused(sandbox_factory):
    sb = sandbox_factory(storage_url_ttl_seconds=0)
    request_id = _request_export(sb, "pwrusr1")
    _wait_ready(sb, request_id)
    answer = _get(sb, f"/api/5/cohorts/request/{request_id}/file")  # follows the 302
    assert answer.status_code == 403
    assert "Request has expired" in answer.text


def test_gp_headers_tab_quirk_and_bom(sandbox):
    request_id = _request_export(sandbox, "trlrsk2", props=1)
    _wait_ready(sandbox, request_id)
    content = _get(sandbox, f"/api/5/cohorts/request/{request_id}/file").content
    assert content.startswith("\ufeff".encode())
    header = _rows(content)[0]
    assert header[:3] == ["amplitude_id", "user_id", "gp:email"]
    assert "\tgp:plan" in header
    assert "country" in header  # a built-in property keeps its bare name
    assert len(_rows(content)) - 1 == 250


def test_prop_keys_limit_the_columns_and_props_0_drops_them(sandbox):
    limited = _export_rows(sandbox, "pwrusr1", props=1, propKeys=["email", "gp:first_name"])
    assert limited[0] == ["amplitude_id", "user_id", "email", "first_name"]
    assert all(len(row) == 4 for row in limited)
    bare = _export_rows(sandbox, "pwrusr1", props=0)
    assert bare[0] == ["amplitude_id", "user_id"]
    assert len(bare) == 1001


def test_unknown_cohort_is_404_and_an_oversized_one_cannot_be_exported(sandbox):
    assert _get(sandbox, "/api/5/cohorts/request/nosuch1").status_code == 404
    assert _get(sandbox, "/api/5/cohorts/request-status/deadbeef").status_code == 404
    too_big = _get(sandbox, "/api/5/cohorts/request/allusr9")
    assert too_big.status_code == 400
    assert "2000000" in too_big.text


def test_the_size_limit_holds_for_generated_cohorts_too(sandbox_factory):
    sb = sandbox_factory(
        extra_cohorts=[{"id": "over2m", "name": "One too many", "size": 2_000_001}]
    )
    refused = _get(sb, "/api/5/cohorts/request/over2m")
    assert refused.status_code == 400
    assert "has 2000001 users" in refused.text
    assert sb.amplitude.downloads_used == 0


def test_each_export_request_counts_against_the_monthly_quota(sandbox_factory):
    sb = sandbox_factory(amplitude_download_quota=2)
    for _ in range(2):
        request_id = _request_export(sb, "empty03")
    _wait_ready(sb, request_id)
    _get(sb, f"/api/5/cohorts/request/{request_id}/file")
    assert sb.amplitude.downloads_used == 2  # polls and the file do not count
    refused = _get(sb, "/api/5/cohorts/request/empty03")
    assert refused.status_code == 429
    assert "quota" in refused.text
    assert sb.amplitude.downloads_used == 2
    summary = requests.get(f"{sb.amplitude_url}/_sandbox/summary", timeout=5).json()
    assert summary["downloads_used"] == 2


def test_single_cohort_requests_are_limited_per_window(sandbox_factory):
    sb = sandbox_factory(
        amplitude_cohort_requests_per_window=2, amplitude_cohort_request_window_seconds=0.3
    )
    _request_export(sb, "empty03")
    _request_export(sb, "empty03")
    assert _get(sb, "/api/5/cohorts/request/empty03").status_code == 429
    threading.Event().wait(0.35)
    _request_export(sb, "empty03")


def test_requests_past_the_concurrency_limit_get_429_with_a_text_body(sandbox_factory):
    sb = sandbox_factory(max_concurrent_amplitude_requests=2)
    sb.faults.add("amplitude", "GET", "^/api/3/cohorts$", times=2, delay=0.5)
    answers: list[int] = []
    slow = [
        threading.Thread(target=lambda: answers.append(_get(sb, "/api/3/cohorts").status_code))
        for _ in range(2)
    ]
    for thread in slow:
        thread.start()
    for _ in range(200):
        if sb.amplitude.in_flight == 2:
            break
        threading.Event().wait(0.01)
    refused = _get(sb, "/api/3/cohorts")
    assert refused.status_code == 429
    assert refused.headers["Content-Type"].startswith("text/plain")
    for thread in slow:
        thread.join()
    assert answers == [200, 200]
    assert _get(sb, "/api/3/cohorts").status_code == 200  # slots are given back


def test_churn_changes_members_and_moves_last_computed(sandbox):
    before = _cohorts(sandbox)["pwrusr1"]
    answer = requests.post(
        f"{sandbox.amplitude_url}/_sandbox/cohorts/pwrusr1/churn",
        json={"remove": 20, "add": 7, "rename": 3},
        timeout=10,
    )
    assert answer.status_code == 200
    body = answer.json()
    assert (len(body["removed"]), len(body["added"]), len(body["renamed"])) == (20, 7, 3)
    after = _cohorts(sandbox)["pwrusr1"]
    assert after["size"] == 987
    assert after["lastComputed"] > before["lastComputed"]
    assert after["lastMod"] > before["lastMod"]
    rows = _export_rows(sandbox, "pwrusr1", props=1)
    ids = {int(row[0]) for row in rows[1:]}
    assert not ids & set(body["removed"])
    assert set(body["added"]) <= ids
    exported = {r[2].strip().lower() for r in rows[1:]}
    assert sandbox.generator.expected_emails("pwrusr1") <= exported


def test_recompute_without_changes_moves_only_last_computed(sandbox):
    before = _cohorts(sandbox)["trlrsk2"]
    rows_before = _export_rows(sandbox, "trlrsk2", props=1)
    answer = requests.post(f"{sandbox.amplitude_url}/_sandbox/cohorts/trlrsk2/churn", timeout=10)
    assert answer.status_code == 200
    after = _cohorts(sandbox)["trlrsk2"]
    assert after["lastComputed"] > before["lastComputed"]
    assert after["lastMod"] == before["lastMod"]
    assert _export_rows(sandbox, "trlrsk2", props=1) == rows_before


def test_churn_of_an_unknown_cohort_or_with_unknown_keys_is_refused(sandbox):
    url = f"{sandbox.amplitude_url}/_sandbox/cohorts/%s/churn"
    assert requests.post(url % "nosuch1", json={"remove": 1}, timeout=5).status_code == 404
    assert requests.post(url % "pwrusr1", json={"delete": 1}, timeout=5).status_code == 400
    assert requests.post(url % "allusr9", json={"remove": 1}, timeout=5).status_code == 400


def test_export_serves_the_cohort_as_it_was_when_requested(sandbox):
    request_id = _request_export(sandbox, "pwrusr1", props=1)
    sandbox.amplitude.churn("pwrusr1", remove=50, add=10)
    _wait_ready(sandbox, request_id)
    rows = _rows(_get(sandbox, f"/api/5/cohorts/request/{request_id}/file").content)
    assert len(rows) - 1 == 1000
    assert _cohorts(sandbox)["pwrusr1"]["size"] == 960


def test_expected_emails_over_http_follow_churn(sandbox):
    url = f"{sandbox.amplitude_url}/_sandbox/cohorts/pwrusr1/expected"
    before = set(requests.get(url, timeout=5).json())
    assert before == sandbox.generator.expected_emails("pwrusr1")
    sandbox.amplitude.churn("pwrusr1", remove=30)
    after = set(requests.get(url, timeout=5).json())
    assert after == sandbox.generator.expected_emails("pwrusr1")
    assert after < before


def test_churn_by_index_over_http(sandbox):
    url = f"{sandbox.amplitude_url}/_sandbox/cohorts/trlrsk2/churn"
    member = sandbox.generator.member("trlrsk2", 3)
    answer = requests.post(url, json={"remove_indices": [3], "rename_indices": [4]}, timeout=5)
    assert answer.status_code == 200
    assert answer.json()["removed"] == [member["amplitude_id"]]
    assert len(answer.json()["renamed"]) == 1
    again = requests.post(url, json={"remove_indices": [3]}, timeout=5)
    assert again.status_code == 400
    assert "no member 3" in again.json()["error"]


def test_direct_download_of_a_large_cohort_streams_the_same_rows(sandbox_factory):
    sb = sandbox_factory(
        redirect_min_members=10**9,
        extra_cohorts=[{"id": "mid20k", "name": "Mid", "size": 20_000}],
    )
    request_id = _request_export(sb, "mid20k", props=1, propKeys=["email"])
    _wait_ready(sb, request_id)
    answer = _get(sb, f"/api/5/cohorts/request/{request_id}/file", allow_redirects=False)
    assert answer.status_code == 200
    assert answer.headers.get("Transfer-Encoding") == "chunked"
    rows = _rows(answer.content)
    assert len(rows) == 20_001
    assert [r[2] for r in rows[1:]] == [m["email"] for m in sb.generator.members("mid20k")]


def test_a_response_holds_its_concurrency_slot_until_the_server_closes_it(sandbox_factory):
    sb = sandbox_factory(max_concurrent_amplitude_requests=1)
    statuses: list[str] = []

    def app(environ, start_response):
        start_response("200 OK", [])
        return iter([b"streamed"])

    gated = limit_concurrency(app, sb.amplitude)
    env = EnvironBuilder(path="/api/3/cohorts").get_environ
    body = gated(env(), lambda status, headers: statuses.append(status))
    assert b"".join(body) == b"streamed"
    refused = gated(env(), lambda status, headers: statuses.append(status))  # not closed yet
    assert b"".join(refused).startswith(b"Too many concurrent requests")
    body.close()
    assert sb.amplitude.in_flight == 0
    gated(env(), lambda status, headers: statuses.append(status)).close()
    assert [s.split()[0] for s in statuses] == ["200", "429", "200"]

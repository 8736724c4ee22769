"""Taking leavers off a list: short chunked DELETEs, every job followed to its end."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from target_sendgrid_contacts.sendgrid.errors import SendGridAPIError
from target_sendgrid_contacts.sendgrid.removals import RemovalError, remove_from_list

from .helpers import BASE, LIST_ID

LIST_PATH = f"{BASE}/v3/marketing/lists/{LIST_ID}/contacts"
COUNT_PATH = f"{BASE}/v3/marketing/lists/{LIST_ID}/contacts/count"
IMPORTS = f"{BASE}/v3/marketing/contacts/imports/"


def _uuid(n: int) -> str:
    return f"{n:08x}-0000-4000-8000-000000000000"


def _deleted_ids(requests_mock) -> list[list[str]]:
    chunks = []
    for request in requests_mock.request_history:
        if request.method == "DELETE":
            query = urlsplit(request.url).query
            assert "%2C" not in query  # literal commas keep the URL short
            chunks.append(parse_qs(query)["contact_ids"][0].split(","))
    return chunks


def _remove(client, ids, **kw):
    return remove_from_list(
        client, LIST_ID, ids, poll_interval=0.001, timeout=kw.pop("timeout", 5), **kw
    )


def _jobs(requests_mock, statuses):
    """DELETE answers job-1, job-2, ...; each job answers the given status sequence."""
    counter = iter(range(1, 10_000))
    requests_mock.delete(
        LIST_PATH, status_code=202, json=lambda req, ctx: {"job_id": f"job-{next(counter)}"}
    )
    requests_mock.get(COUNT_PATH, json={"contact_count": 5000})
    for n in range(1, 30):
        requests_mock.get(
            f"{IMPORTS}job-{n}", [{"json": {"id": f"job-{n}", "status": s}} for s in statuses]
        )


def test_ids_go_in_chunks_and_each_job_is_followed_to_completion(client, requests_mock):
    _jobs(requests_mock, ["pending", "completed"])
    ids = [_uuid(n) for n in range(450)]
    assert _remove(client, iter(ids)) == 450
    chunks = _deleted_ids(requests_mock)
    assert [len(c) for c in chunks] == [200, 200, 50]
    assert [i for c in chunks for i in c] == ids
    for request in requests_mock.request_history:
        if request.method == "DELETE":
            assert len(request.url) < 8000
    polled = {r.url.rsplit("/", 1)[1] for r in requests_mock.request_history if IMPORTS in r.url}
    assert polled == {"job-1", "job-2", "job-3"}
    # Contacts are only taken off the list: nothing deletes contacts themselves.
    assert not any(
        r.path == "/v3/marketing/contacts" and r.method == "DELETE"
        for r in requests_mock.request_history
    )


def test_chunk_size_is_honoured_and_long_ids_shorten_chunks(client, requests_mock):
    _jobs(requests_mock, ["completed"])
    assert _remove(client, [_uuid(n) for n in range(7)], chunk_size=3) == 7
    assert [len(c) for c in _deleted_ids(requests_mock)] == [3, 3, 1]
    requests_mock.reset_mock()
    long_ids = [f"{'x' * 990}{n:010d}" for n in range(20)]  # 1,000-character ids
    _remove(client, long_ids)
    assert all(len(c) <= 7 for c in _deleted_ids(requests_mock))


def test_no_leavers_means_no_request(client, requests_mock):
    assert _remove(client, []) == 0
    assert requests_mock.call_count == 0


def test_a_removal_job_that_errors_is_an_error(client, requests_mock):
    _jobs(requests_mock, ["pending", "errored"])
    with pytest.raises(RemovalError, match=r"job-1.*errored"):
        _remove(client, [_uuid(1), _uuid(2)])


def test_unpollable_removal_jobs_are_confirmed_by_the_list_count(client, requests_mock):
    requests_mock.delete(LIST_PATH, status_code=202, json={"job_id": "rm-1"})
    requests_mock.get(
        f"{IMPORTS}rm-1",
        status_code=404,
        json={"errors": [{"field": None, "message": "job not found"}]},
    )
    requests_mock.get(
        COUNT_PATH,
        [
            {"json": {"contact_count": 1000}},  # before removing
            {"json": {"contact_count": 1000}},  # job still running
            {"json": {"contact_count": 1000}},
            {"json": {"contact_count": 550}},  # 450 fewer: done
        ],
    )
    assert _remove(client, [_uuid(n) for n in range(450)]) == 450
    assert len(_deleted_ids(requests_mock)) == 3
    counts = [r for r in requests_mock.request_history if r.url == COUNT_PATH]
    assert len(counts) == 4


def test_count_that_never_falls_is_an_error(client, requests_mock):
    requests_mock.delete(LIST_PATH, status_code=202, json={"job_id": "rm-1"})
    requests_mock.get(f"{IMPORTS}rm-1", status_code=404, json={})
    requests_mock.get(COUNT_PATH, json={"contact_count": 1000})
    with pytest.raises(RemovalError, match="still counts more than 998"):
        _remove(client, [_uuid(1), _uuid(2)], timeout=0.1)


def test_refused_delete_is_raised_not_swallowed(client, requests_mock):
    requests_mock.get(COUNT_PATH, json={"contact_count": 10})
    requests_mock.delete(LIST_PATH, status_code=404, json={"errors": [{"message": "not found"}]})
    with pytest.raises(SendGridAPIError) as caught:
        _remove(client, [_uuid(1)])
    assert caught.value.status == 404

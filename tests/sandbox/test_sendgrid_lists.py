"""The fake SendGrid's auth, lists, paging, removal jobs, exports and OpenAPI refusals."""

from __future__ import annotations

import gzip
import json
from urllib.parse import parse_qs, urlsplit

import pytest

from sandbox.config import SENDGRID_API_KEY, SENDGRID_RESTRICTED_KEY
from sandbox.sendgrid.testing import Api, Clock, fetch_file, make_app, read_csv_gz, violation_of


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def api(clock: Clock) -> Api:
    return Api(
        make_app(clock, import_delay_seconds=1, removal_delay_seconds=2, export_delay_seconds=3)
    )


def add_members(api: Api, list_id: str, n: int, clock: Clock) -> None:
    contacts = [{"email": f"m{i}@example.com", "first_name": f"M{i}"} for i in range(n)]
    assert api.upsert(contacts, [list_id]).status_code == 202
    clock.advance(1)


# ----- auth -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer SG.wrong"}, {"Authorization": SENDGRID_API_KEY}]
)
def test_unknown_or_missing_key_gets_401(api, headers):
    response = api.get("/v3/marketing/lists", headers=headers)
    assert response.status_code == 401
    assert response.json == {"errors": [{"field": None, "message": "authorization required"}]}


def test_key_without_marketing_permission_gets_403_but_may_read_its_scopes(api):
    restricted = Api(api.app, key=SENDGRID_RESTRICTED_KEY)
    for response in (
        restricted.get("/v3/marketing/lists", query_string={"page_size": 1}),
        restricted.upsert([{"email": "a@example.com"}]),
    ):
        assert response.status_code == 403
        assert response.json == {"errors": [{"field": None, "message": "access forbidden"}]}
    scopes = restricted.get("/v3/scopes")
    assert scopes.status_code == 200
    assert not any(s.startswith("marketing") for s in scopes.json["scopes"])
    assert "marketing.write" in api.get("/v3/scopes").json["scopes"]


# ----- lists ----------------------------------------------------------------------------


def test_create_get_and_count_a_list(api, clock):
    created = api.post("/v3/marketing/lists", {"name": "[Amplitude] Power users: pwrusr1"})
    assert created.status_code == 201
    list_id = created.json["id"]
    assert len(list_id) == 36
    assert created.json["contact_count"] == 0
    add_members(api, list_id, 3, clock)
    assert api.get(f"/v3/marketing/lists/{list_id}").json["contact_count"] == 3
    count = api.get(f"/v3/marketing/lists/{list_id}/contacts/count")
    assert count.json["contact_count"] == 3
    missing = api.get("/v3/marketing/lists/3f1c6a3e-0000-4000-8000-000000000000")
    assert missing.status_code == 404


def test_duplicate_list_names_are_allowed_as_separate_lists(api):
    assert api.create_list("same") != api.create_list("same")
    assert [lst["name"] for lst in api.app.state.lists()] == ["same", "same"]


@pytest.mark.parametrize("name", ["", "x" * 101])
def test_list_names_must_have_1_to_100_characters(api, name):
    response = api.post("/v3/marketing/lists", {"name": name})
    assert response.status_code == 400
    assert response.json["errors"][0]["field"] == "name"


def test_an_account_holds_at_most_1000_lists(api):
    for i in range(1000):
        api.app.state.create_list(f"list {i}")
    response = api.post("/v3/marketing/lists", {"name": "one too many"})
    assert response.status_code == 400
    assert len(api.app.state.lists()) == 1000


def test_paging_follows_next_to_the_last_page(api):
    names = [f"list {i}" for i in range(7)]
    for name in names:
        api.create_list(name)
    seen, pages = [], 0
    response = api.get("/v3/marketing/lists", query_string={"page_size": 3})
    while True:
        pages += 1
        body = response.json
        assert body["_metadata"]["count"] == 7
        seen += [item["name"] for item in body["result"]]
        next_url = body["_metadata"].get("next")
        if not next_url:
            break
        parts = urlsplit(next_url)
        assert parts.scheme == "http"  # absolute, on the host that was called
        assert parse_qs(parts.query)["page_size"] == ["3"]
        response = api.get(parts.path, query_string=parts.query)
    assert pages == 3
    assert seen == names


def test_a_foreign_page_token_is_refused(api):
    response = api.get("/v3/marketing/lists", query_string={"page_token": "bm90LWEtdG9rZW4="})
    assert response.status_code == 400
    assert response.json["errors"][0]["field"] == "page_token"


# ----- removal --------------------------------------------------------------------------


def test_removal_job_takes_contacts_off_the_list_only(api, clock):
    list_id = api.create_list("cohort")
    add_members(api, list_id, 4, clock)
    members = api.client.get(f"/_sandbox/lists/{list_id}/members").json
    gone = [m["contact_id"] for m in members if m["email"] in ("m1@example.com", "m3@example.com")]

    response = api.delete(
        f"/v3/marketing/lists/{list_id}/contacts", query_string={"contact_ids": ",".join(gone)}
    )
    assert response.status_code == 202
    job_id = response.json["job_id"]
    assert api.job(job_id)["status"] == "pending"
    assert len(api.app.state.member_emails(list_id)) == 4

    clock.advance(2)
    job = api.job(job_id)
    assert job["status"] == "completed"
    assert job["results"]["deleted_count"] == 2
    assert api.app.state.member_emails(list_id) == {"m0@example.com", "m2@example.com"}
    assert api.app.state.contact("m1@example.com") is not None  # the contact stays


def test_removal_refuses_unknown_lists_too_many_ids_and_non_ids(api, clock):
    list_id = api.create_list("cohort")
    add_members(api, list_id, 1, clock)
    unknown = api.delete(
        "/v3/marketing/lists/3f1c6a3e-0000-4000-8000-000000000000/contacts",
        query_string={"contact_ids": "3f1c6a3e-0000-4000-8000-000000000001"},
    )
    assert unknown.status_code == 404
    ids = ",".join(f"3f1c6a3e-0000-4000-8000-{i:012x}" for i in range(501))
    too_many = api.delete(
        f"/v3/marketing/lists/{list_id}/contacts", query_string={"contact_ids": ids}
    )
    assert too_many.status_code == 400
    emails = api.delete(
        f"/v3/marketing/lists/{list_id}/contacts", query_string={"contact_ids": "m0@example.com"}
    )
    assert emails.status_code == 400


# ----- exports --------------------------------------------------------------------------


def start_export(api: Api, list_id: str, file_type: str = "csv") -> str:
    response = api.post(
        "/v3/marketing/contacts/exports", {"list_ids": [list_id], "file_type": file_type}
    )
    assert response.status_code == 202
    assert "_metadata" in response.json
    return response.json["id"]


def test_export_is_pending_then_ready_with_gzip_csv_urls_fetched_without_auth(api, clock):
    api.app.state.create_field("plan", "Text")
    list_id = api.create_list("cohort")
    other = api.create_list("other")
    api.upsert(
        [
            {"email": "a@example.com", "first_name": "Ann", "custom_fields": {"e1_T": "pro"}},
            {"email": "b@example.com", "last_name": "Bo"},
        ],
        [list_id],
    )
    api.upsert([{"email": "c@example.com"}], [other])
    clock.advance(1)
    export_id = start_export(api, list_id)
    pending = api.get(f"/v3/marketing/contacts/exports/{export_id}").json
    assert pending["status"] == "pending"
    assert "urls" not in pending

    clock.advance(3)
    ready = api.get(f"/v3/marketing/contacts/exports/{export_id}").json
    assert ready["status"] == "ready"
    assert len(ready["urls"]) == 1
    response = fetch_file(api.app, ready["urls"][0])
    assert response.status_code == 200
    text = gzip.decompress(response.get_data()).decode()
    header = text.splitlines()[0].replace('"', "").split(",")
    assert header[:4] == ["CONTACT_ID", "EMAIL", "FIRST_NAME", "LAST_NAME"]
    assert header[-3:] == ["CREATED_AT", "UPDATED_AT", "plan"]
    rows = read_csv_gz(response.get_data())
    assert [(r["EMAIL"], r["FIRST_NAME"], r["LAST_NAME"], r["plan"]) for r in rows] == [
        ("a@example.com", "Ann", "", "pro"),
        ("b@example.com", "", "Bo", ""),
    ]
    contact = api.app.state.contact("a@example.com")
    assert rows[0]["CONTACT_ID"] == contact["id"]


def test_export_as_json_lines(api, clock):
    list_id = api.create_list("cohort")
    add_members(api, list_id, 2, clock)
    export_id = start_export(api, list_id, "json")
    clock.advance(3)
    url = api.get(f"/v3/marketing/contacts/exports/{export_id}").json["urls"][0]
    lines = gzip.decompress(fetch_file(api.app, url).get_data()).decode().splitlines()
    records = [json.loads(line) for line in lines]
    assert [(r["EMAIL"], r["FIRST_NAME"]) for r in records] == [
        ("m0@example.com", "M0"),
        ("m1@example.com", "M1"),
    ]


def test_export_is_a_snapshot_taken_when_it_becomes_ready(api, clock):
    list_id = api.create_list("cohort")
    add_members(api, list_id, 2, clock)
    export_id = start_export(api, list_id)
    api.upsert([{"email": "early@example.com"}], [list_id])  # applied before the export is due
    clock.advance(3)
    url = api.get(f"/v3/marketing/contacts/exports/{export_id}").json["urls"][0]
    api.upsert([{"email": "late@example.com"}], [list_id])
    clock.advance(1)
    emails = {r["EMAIL"] for r in read_csv_gz(fetch_file(api.app, url).get_data())}
    assert emails == {"m0@example.com", "m1@example.com", "early@example.com"}


def test_large_export_is_split_into_several_files(api, clock):
    api.app.state.export_rows_per_file = 2
    list_id = api.create_list("cohort")
    add_members(api, list_id, 5, clock)
    export_id = start_export(api, list_id)
    clock.advance(3)
    ready = api.get(f"/v3/marketing/contacts/exports/{export_id}").json
    assert len(ready["urls"]) == 3
    emails = [
        r["EMAIL"]
        for url in ready["urls"]
        for r in read_csv_gz(fetch_file(api.app, url).get_data())
    ]
    assert sorted(emails) == [f"m{i}@example.com" for i in range(5)]


# ----- OpenAPI refusals -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "field"),
    [
        ("GET", "/v3/marketing/lists", {"query_string": {"page_size": 1001}}, "page_size"),
        ("GET", "/v3/marketing/lists", {"query_string": {"page_size": 0}}, "page_size"),
        ("GET", "/v3/marketing/lists", {"query_string": {"pagesize": 10}}, "pagesize"),
        ("GET", "/v3/marketing/listz", {}, None),
        ("POST", "/v3/marketing/contacts", {"json": {"contacts": []}}, None),
        (
            "PUT",
            "/v3/marketing/contacts",
            {"json": {"contacts": [{"email": "a@example.com", "first_name": "x" * 51}]}},
            "contacts[0].first_name",
        ),
        (
            "PUT",
            "/v3/marketing/contacts",
            {"json": {"list_ids": ["a"], "contacts": []}},
            "list_ids[0]",
        ),
        ("POST", "/v3/marketing/contacts/exports", {"json": {"file_type": "xlsx"}}, "file_type"),
        ("DELETE", "/v3/marketing/lists/abc/contacts", {}, "contact_ids"),
    ],
)
def test_requests_the_documents_refuse_get_400_and_are_logged(api, method, path, kwargs, field):
    response = api.call(method, path, **kwargs)
    assert response.status_code == 400
    error = response.json["errors"][0]
    assert error["field"] == field
    assert error["message"].startswith("sandbox: request violates the OpenAPI document: ")
    status, violation = violation_of(api.app, method, path, **kwargs)
    assert status == 400
    assert violation


def test_validation_can_be_switched_off(clock):
    api = Api(make_app(clock, validate_requests=False))
    long_name = [{"email": "a@example.com", "first_name": "x" * 51}]
    assert api.upsert(long_name).status_code == 202
    assert api.get("/v3/marketing/lists", query_string={"pagesize": 10}).status_code == 200


def test_documented_but_unsimulated_operations_answer_501(api):
    response = api.post("/v3/marketing/contacts/search", {"query": "email LIKE 'a%'"})
    assert response.status_code == 501


def test_inspection_lists_and_members(api, clock):
    list_id = api.create_list("cohort")
    add_members(api, list_id, 2, clock)
    lists = api.client.get("/_sandbox/lists").json
    assert lists == [{"id": list_id, "name": "cohort", "member_count": 2}]
    members = api.client.get(f"/_sandbox/lists/{list_id}/members").json
    assert [(m["email"], m["first_name"]) for m in members] == [
        ("m0@example.com", "M0"),
        ("m1@example.com", "M1"),
    ]
    assert api.client.get("/_sandbox/lists/nope/members").status_code == 404
    assert api.app.inspect.__self__ is api.app
    summary = api.app.state.summary()
    assert summary["contact_count"] == 2
    assert summary["jobs"] == {"completed": 1}


def test_rename_and_delete_a_list(api, clock):
    list_id = api.create_list("old")
    add_members(api, list_id, 2, clock)
    renamed = api.call("PATCH", f"/v3/marketing/lists/{list_id}", json={"name": "new"})
    assert renamed.json["name"] == "new"
    assert api.delete(f"/v3/marketing/lists/{list_id}").status_code == 204
    assert api.get(f"/v3/marketing/lists/{list_id}").status_code == 404
    assert api.app.state.contact_count == 2  # deleting a list keeps its contacts


def test_deleting_contacts_is_a_job_that_also_ends_memberships(api, clock):
    list_id = api.create_list("cohort")
    add_members(api, list_id, 3, clock)
    gone = api.app.state.contact("m1@example.com")["id"]
    response = api.delete("/v3/marketing/contacts", query_string={"ids": gone})
    assert response.status_code == 202
    clock.advance(2)
    assert api.job(response.json["job_id"])["results"]["deleted_count"] == 1
    assert api.app.state.contact("m1@example.com") is None
    assert api.app.state.member_emails(list_id) == {"m0@example.com", "m2@example.com"}

"""The fake SendGrid's contacts: upsert jobs, limits, email rules, search, custom fields."""

from __future__ import annotations

import json

import pytest

from sandbox.config import SENDGRID_API_KEY
from sandbox.sendgrid.testing import Api, Clock, fetch_file, make_app, read_csv_gz


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(params=[True, False], ids=["validated", "unvalidated"])
def api(clock: Clock, request: pytest.FixtureRequest) -> Api:
    # Unvalidated (as in the benchmarks), an upsert body is decoded straight into structs: the
    # same contacts must be stored, and the same ones refused, as on the validated path.
    return Api(
        make_app(
            clock,
            import_delay_seconds=1.0,
            field_activation_seconds=5.0,
            validate_requests=request.param,
        )
    )


def people(n: int, start: int = 0, **fields: str) -> list[dict]:
    return [{"email": f"person{i}@example.com", **fields} for i in range(start, start + n)]


def search(api: Api, *emails: str):
    return api.post("/v3/marketing/contacts/search/emails", {"emails": list(emails)})


def test_upsert_is_queued_then_completes_with_created_and_updated_counts(api, clock):
    list_id = api.create_list("cohort")
    first = api.upsert(people(3), [list_id])
    assert first.status_code == 202
    pending = api.job(first.json["job_id"])
    assert pending["status"] == "pending"
    assert pending["results"]["requested_count"] == 3
    assert search(api, "person0@example.com").status_code == 404  # not visible yet

    clock.advance(1.0)
    done = api.job(first.json["job_id"])
    assert done["status"] == "completed"
    assert done["results"]["created_count"] == 3
    assert done["results"]["updated_count"] == 0
    assert api.get(f"/v3/marketing/lists/{list_id}/contacts/count").json["contact_count"] == 3

    # two known contacts (one written in upper case) and one new one
    second = api.upsert([{"email": "PERSON0@Example.com"}, *people(2, start=1)[1:], *people(1, 7)])
    clock.advance(1.0)
    results = api.job(second.json["job_id"])["results"]
    assert (results["created_count"], results["updated_count"]) == (1, 2)
    assert api.app.state.contact_count == 4


def test_a_pending_job_can_already_show_its_counts(api, clock):
    job_id = api.upsert(people(3)).json["job_id"]
    clock.advance(0.6)  # past half the 1 s delay
    job = api.job(job_id)
    assert job["status"] == "pending"
    assert job["results"]["created_count"] == 3  # counts alone do not mean done
    assert api.app.state.contact_count == 0


def test_emails_are_stored_lower_cased_and_omitted_fields_keep_their_values(api, clock):
    list_a = api.create_list("a")
    list_b = api.create_list("b")
    api.upsert(
        [{"email": "Ann.Smith@Example.COM", "first_name": "Ann", "last_name": "Smith"}], [list_a]
    )
    clock.advance(1.0)
    api.upsert([{"email": "ann.smith@example.com", "last_name": "Jones"}], [list_b])
    clock.advance(1.0)

    found = search(api, "ANN.SMITH@example.com").json["result"]["ANN.SMITH@example.com"]["contact"]
    assert found["email"] == "ann.smith@example.com"
    assert found["first_name"] == "Ann"  # omitted: kept
    assert found["last_name"] == "Jones"  # sent: replaced
    assert sorted(found["list_ids"]) == sorted([list_a, list_b])  # added to, never replaced


def test_reserved_and_custom_fields_merge_key_by_key_and_export_as_sent(api, clock):
    plan = api.app.state.create_field("plan", "Text")["id"]
    seats = api.app.state.create_field("seats", "Number")["id"]
    list_id = api.create_list("merged")
    first = {"email": "Bo@Example.com", "first_name": 'Bo "B"', "city": "Oslo"}
    sent = api.upsert([{**first, "custom_fields": {plan: "pro", seats: 3}}], [list_id])
    assert sent.status_code == 202, sent.json
    clock.advance(1.0)
    later = {"email": "bo@example.com", "country": "NO", "custom_fields": {seats: 4.5}}
    sent = api.upsert([later, {"email": "al@example.com", "last_name": "Al"}], [list_id])
    assert sent.status_code == 202, sent.json
    clock.advance(1.0)

    found = search(api, "bo@example.com").json["result"]["bo@example.com"]["contact"]
    assert (found["first_name"], found["city"], found["country"]) == ('Bo "B"', "Oslo", "NO")
    assert found["custom_fields"] == {"plan": "pro", "seats": 4.5}
    export_id = api.post("/v3/marketing/contacts/exports", {"list_ids": [list_id]}).json["id"]
    clock.advance(10)
    url = api.get(f"/v3/marketing/contacts/exports/{export_id}").json["urls"][0]
    rows = {r["EMAIL"]: r for r in read_csv_gz(fetch_file(api.app, url).data)}
    assert (rows["bo@example.com"]["FIRST_NAME"], rows["bo@example.com"]["CITY"]) == (
        'Bo "B"',
        "Oslo",
    )
    assert (rows["bo@example.com"]["plan"], rows["bo@example.com"]["seats"]) == ("pro", "4.5")
    assert (rows["al@example.com"]["FIRST_NAME"], rows["al@example.com"]["plan"]) == ("", "")


def test_a_contact_that_is_not_an_object_refuses_the_request(api, clock):
    response = api.upsert([{"email": "a@example.com"}, "b@example.com"])
    assert response.status_code == 400
    assert "b@example.com" not in json.dumps(response.json)
    clock.advance(10)
    assert api.app.state.contact_count == 0


def test_one_invalid_email_refuses_the_whole_request(api, clock):
    contacts = people(5)
    contacts[3]["email"] = "person3@example"
    response = api.upsert(contacts)
    assert response.status_code == 400
    assert response.json["errors"][0]["field"] == "contacts[3].email"
    assert "person3" not in json.dumps(response.json)  # emails are not echoed
    clock.advance(10)
    assert api.app.state.contact_count == 0
    assert api.app.state.jobs() == []


@pytest.mark.parametrize(
    "email",
    [
        "",
        "plain",
        "a@",
        "@example.com",
        "a@@example.com",
        "a b@example.com",
        "a@example",
        "a@exa..mple.com",
        ".a@example.com",
        "a@example.com,",
        " a@example.com",
    ],
)
def test_malformed_emails_are_refused(api, email):
    response = api.upsert([{"email": email}])
    assert response.status_code == 400
    assert response.json["errors"][0]["field"] == "contacts[0].email"


@pytest.mark.parametrize(
    "email", ["o'brien+tag@example.co.uk", "x_y-z@acme-corp.io", "chloé@exämple.fr", "A@B.CO"]
)
def test_unusual_but_valid_emails_are_accepted(api, email):
    assert api.upsert([{"email": email}]).status_code == 202


def test_two_equal_emails_in_one_request_are_refused(api):
    response = api.upsert(
        [{"email": "a@example.com"}, {"email": "b@example.com"}, {"email": "A@EXAMPLE.com"}]
    )
    assert response.status_code == 400
    error = response.json["errors"][0]
    assert error["field"] == "contacts[2].email"
    assert "contacts[0]" in error["message"]


def test_30000_contacts_are_accepted_and_30001_refused(api):
    assert api.upsert(people(30_000)).status_code == 202
    refused = api.upsert(people(30_001))
    assert refused.status_code == 400
    assert refused.json["errors"][0]["field"] == "contacts"


def test_a_body_over_6_000_000_bytes_is_refused_with_413(api):
    # 17,300 contacts of ~353 bytes: 6.1 MB, under 6 MiB, so the decimal reading applies
    contacts = people(17_300, city="c" * 60, address_line_1="a" * 100, address_line_2="b" * 100)
    body = json.dumps({"contacts": contacts}).encode()
    assert 6_000_000 < len(body) < 6 * 1024 * 1024
    response = api.call(
        "PUT",
        "/v3/marketing/contacts",
        data=body,
        headers={"Authorization": f"Bearer {SENDGRID_API_KEY}", "Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert "6000000" in response.json["errors"][0]["message"]

    smaller = json.dumps({"contacts": contacts[:16_900]}).encode()
    assert len(smaller) < 6_000_000
    response = api.call(
        "PUT",
        "/v3/marketing/contacts",
        data=smaller,
        headers={"Authorization": f"Bearer {SENDGRID_API_KEY}", "Content-Type": "application/json"},
    )
    assert response.status_code == 202


def test_reject_addresses_error_inside_the_job_with_an_errors_file(api, clock):
    response = api.upsert(
        [
            {"email": "ok@example.com"},
            {"email": "reject+1@example.com"},
            {"email": "Reject+2@example.com"},
        ]
    )
    assert response.status_code == 202  # the request itself is fine
    clock.advance(1.0)
    job = api.job(response.json["job_id"])
    assert job["status"] == "errored"
    results = job["results"]
    assert (results["created_count"], results["errored_count"]) == (1, 2)

    data = fetch_file(api.app, results["errors_url"])
    assert data.status_code == 200
    rows = read_csv_gz(data.get_data())
    assert sorted(r["email"] for r in rows) == ["reject+1@example.com", "reject+2@example.com"]
    assert all(r["error"] for r in rows)
    with_key = fetch_file(
        api.app, results["errors_url"], headers={"Authorization": f"Bearer {SENDGRID_API_KEY}"}
    )
    assert with_key.status_code == 400  # storage refuses credentials, like S3
    assert search(api, "reject+1@example.com").status_code == 404


def test_a_job_past_the_contact_limit_fails_and_changes_nothing(clock):
    api = Api(make_app(clock, import_delay_seconds=0.5, contact_limit=3))
    first = api.upsert(people(2))
    clock.advance(1)
    assert api.job(first.json["job_id"])["status"] == "completed"

    over = api.upsert([{"email": "person0@example.com", "first_name": "Zed"}, *people(2, 5)])
    clock.advance(1)
    job = api.job(over.json["job_id"])
    assert job["status"] == "failed"
    assert job["errors"][0]["message"] == "you have hit your contact limit"
    assert api.app.state.contact_count == 2
    assert "first_name" not in api.app.state.contact("person0@example.com")

    updates_only = api.upsert(people(2))  # updates never hit the limit
    clock.advance(1)
    assert api.job(updates_only.json["job_id"])["status"] == "completed"


def test_a_job_type_told_to_fail_ends_failed_and_one_told_so_cannot_be_polled(clock):
    app = make_app(clock, import_delay_seconds=0.5, removal_delay_seconds=0.5)
    api = Api(app)
    list_id = api.create_list("L")
    done = api.upsert(people(2), [list_id])
    clock.advance(1)
    assert api.job(done.json["job_id"])["status"] == "completed"

    app.state.config.failing_jobs = frozenset({"delete_list_contacts"})
    member = app.state.contact("person0@example.com")["id"]
    removal = api.delete(
        f"/v3/marketing/lists/{list_id}/contacts", query_string={"contact_ids": member}
    )
    clock.advance(1)
    job = api.job(removal.json["job_id"])
    assert job["status"] == "failed"
    assert job["errors"][0]["message"] == "the job could not be processed"
    assert app.state.member_emails(list_id) == {"person0@example.com", "person1@example.com"}

    app.state.config.unpollable_jobs = frozenset({"delete_list_contacts"})
    assert api.get(f"/v3/marketing/contacts/imports/{removal.json['job_id']}").status_code == 404
    assert api.job(done.json["job_id"])["status"] == "completed"  # other types still answer

    app.state.config.failing_jobs = frozenset({"delete_list_contacts", "upsert_contacts"})
    refused = api.upsert(people(1, 5), [list_id])
    clock.advance(1)
    assert api.job(refused.json["job_id"])["status"] == "failed"
    assert app.state.contact("person5@example.com") is None


def test_unknown_list_in_upsert_is_refused(api):
    response = api.upsert(people(1), ["3f1c6a3e-0000-4000-8000-000000000000"])
    assert response.status_code == 400
    assert response.json["errors"][0]["field"] == "list_ids[0]"


def test_search_by_email_answers_found_and_not_found_and_404_when_none(api, clock):
    api.upsert(people(2, first_name="P"))
    clock.advance(1)
    response = search(api, "person0@example.com", "PERSON1@example.com", "nobody@example.com")
    assert response.status_code == 200
    result = response.json["result"]
    assert result["person0@example.com"]["contact"]["first_name"] == "P"
    assert result["PERSON1@example.com"]["contact"]["email"] == "person1@example.com"
    assert result["nobody@example.com"] == {"error": "contact not found"}
    assert search(api, "nobody@example.com").status_code == 404
    assert search(api, *[f"x{i}@example.com" for i in range(101)]).status_code == 400


def test_custom_fields_are_created_activated_and_used_by_id(api, clock):
    created = api.post("/v3/marketing/field_definitions", {"name": "plan", "field_type": "Text"})
    assert created.status_code == 200
    field_id = created.json["id"]
    assert field_id == "e1_T"
    definitions = api.get("/v3/marketing/field_definitions").json
    assert {"id": "e1_T", "name": "plan", "field_type": "Text"} in definitions["custom_fields"]
    assert "email" in {f["name"] for f in definitions["reserved_fields"]}

    too_soon = api.upsert([{"email": "a@example.com", "custom_fields": {field_id: "pro"}}])
    assert too_soon.status_code == 400
    assert too_soon.json["errors"][0]["message"] == "invalid custom field ids supplied"

    clock.advance(5.0)
    later = api.upsert([{"email": "a@example.com", "custom_fields": {field_id: "pro"}}])
    assert later.status_code == 202
    clock.advance(1.0)
    contact = search(api, "a@example.com").json["result"]["a@example.com"]["contact"]
    assert contact["custom_fields"] == {"plan": "pro"}  # SendGrid answers by name


def test_custom_field_ids_must_exist_and_values_fit_the_type(api):
    api.app.state.create_field("score", "Number")
    unknown = api.upsert([{"email": "a@example.com", "custom_fields": {"e9_T": "x"}}])
    assert unknown.json["errors"][0]["message"] == "invalid custom field ids supplied"
    by_name = api.upsert([{"email": "a@example.com", "custom_fields": {"score": 3}}])
    assert by_name.status_code == 400  # keyed by name instead of id
    wrong_type = api.upsert([{"email": "a@example.com", "custom_fields": {"e1_N": "3"}}])
    assert wrong_type.status_code == 400
    assert wrong_type.json["errors"][0]["field"] == "contacts[0].custom_fields.e1_N"
    fits = api.upsert([{"email": "a@example.com", "custom_fields": {"e1_N": 3.5}}])
    assert fits.status_code == 202


@pytest.mark.parametrize("name", ["1plan", "plan-type", "plan type", "first_name", "Plan"])
def test_bad_or_duplicate_field_names_are_refused(api, name):
    api.app.state.create_field("plan", "Text")
    response = api.post("/v3/marketing/field_definitions", {"name": name, "field_type": "Text"})
    assert response.status_code == 400
    assert response.json["errors"][0]["field"] == "name"


def test_hand_added_contact_is_immediate(api):
    list_id = api.create_list("by hand")
    response = api.client.post(
        "/_sandbox/contacts",
        json={"email": "Walk.In@Example.com", "first_name": "Walk", "list_ids": [list_id]},
    )
    assert response.status_code == 201
    assert api.app.state.member_emails(list_id) == {"walk.in@example.com"}
    found = api.client.get("/_sandbox/contacts", query_string={"email": "walk.in@example.com"})
    assert [c["first_name"] for c in found.json] == ["Walk"]
    assert found.json[0]["contact_id"] == found.json[0]["id"]
    bad = api.client.post("/_sandbox/contacts", json={"email": "walk-in", "list_ids": [list_id]})
    assert bad.status_code == 400


def test_rename_and_delete_a_custom_field(api, clock):
    field_id = api.app.state.create_field("plan", "Text")["id"]
    api.upsert([{"email": "a@example.com", "custom_fields": {field_id: "pro"}}])
    clock.advance(1)
    path = f"/v3/marketing/field_definitions/{field_id}"
    assert api.call("PATCH", path, json={"name": "tier"}).json["name"] == "tier"
    assert api.app.state.contact("a@example.com")["custom_fields"] == {"tier": "pro"}
    assert api.delete(path).status_code == 204
    assert api.get("/v3/marketing/field_definitions").json["custom_fields"] == []
    assert api.app.state.contact("a@example.com")["custom_fields"] == {}

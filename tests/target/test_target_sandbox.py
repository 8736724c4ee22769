"""The target against the sandbox over real HTTP: lists, validation, mirror, failures, report."""

from __future__ import annotations

import json
import logging

import pytest
from target_sendgrid_contacts.sendgrid import lists as lists_module

from sandbox.singer_input import (
    MEMBERS_SCHEMA,
    cohort_lines,
    member_record,
    record,
    schema,
)

pytestmark = pytest.mark.integration

COHORTS = ["pwrusr1", "trlrsk2", "empty03"]


def list_name(sandbox, cohort_id: str) -> str:
    return f"[Amplitude] {sandbox.generator.spec(cohort_id).name}: {cohort_id}"


def members_of(sandbox, name: str) -> set[str]:
    found = sandbox.sendgrid.list_by_name(name)
    assert found is not None, f"no list {name!r}"
    return sandbox.sendgrid.member_emails(found["id"])


def sendgrid_requests(sandbox, method: str | None = None, path: str = "") -> list[dict]:
    return [
        r
        for r in sandbox.requests
        if r["service"] == "sendgrid"
        and (method is None or r["method"] == method)
        and path in r["path"]
    ]


def violations(sandbox) -> list[dict]:
    return [r for r in sandbox.requests if r.get("violation")]


def writes(sandbox) -> list[dict]:
    return [
        r
        for r in sendgrid_requests(sandbox)
        if r["method"] in {"PUT", "DELETE", "PATCH"}
        or (r["method"] == "POST" and not r["path"].endswith("/exports"))
    ]


def test_first_run_fills_each_list_with_the_valid_deduplicated_emails(sandbox, run_target):
    result = run_target(cohort_lines(sandbox.generator, COHORTS), raise_errors=True)

    for cohort_id in ("pwrusr1", "trlrsk2"):
        assert members_of(sandbox, list_name(sandbox, cohort_id)) == (
            sandbox.generator.expected_emails(cohort_id)
        )
    assert members_of(sandbox, list_name(sandbox, "empty03")) == set()  # one list per cohort
    assert violations(sandbox) == []
    totals = result.report["totals"]
    members = sum(1 for c in COHORTS for _ in sandbox.generator.members(c))
    assert totals["received"] == members
    assert totals["received"] == totals["upserted"] + totals["unchanged"] + totals["rejected"]
    assert totals["created"] + totals["updated"] == totals["upserted"]
    for entry in result.report["lists"]:
        assert entry["received"] == entry["upserted"] + entry["unchanged"] + entry["rejected"]
    expected_rejects = {
        "missing_email": 0,
        "invalid_email": 0,
        "duplicate_email": 0,
    }
    for cohort_id in COHORTS:
        for member in sandbox.generator.members(cohort_id):
            category = member["category"]
            key = "duplicate_email" if category == "case_duplicate" else category
            if key in expected_rejects:
                expected_rejects[key] += 1
    assert totals["rejected_by_reason"] == {k: v for k, v in expected_rejects.items() if v}
    assert len(result.rejects) == totals["rejected"]
    duplicate = next(r for r in result.rejects if r["reason"] == "duplicate_email")
    assert "cohort_members record #" in duplicate["message"]
    assert "amplitude_id=" in duplicate["message"]
    assert set(duplicate["keys"]) == {"cohort_id", "amplitude_id"}
    assert result.report["dry_run"] is False
    assert result.report["api_calls"] == len(sendgrid_requests(sandbox))


def test_long_last_names_are_cut_to_fifty_characters_and_counted(sandbox, run_target):
    result = run_target(cohort_lines(sandbox.generator, ["pwrusr1"]), raise_errors=True)
    found = sandbox.sendgrid.list_by_name(list_name(sandbox, "pwrusr1"))
    last_names = [m.get("last_name") or "" for m in sandbox.sendgrid.members(found["id"])]
    assert max(len(n) for n in last_names) <= 50
    long_ones = [n for n in last_names if n.startswith("Wolfeschlegel")]
    assert long_ones
    assert result.report["totals"]["truncated"]["last_name"] >= len(long_ones)


def test_second_identical_run_sends_nothing_and_counts_unchanged(sandbox, run_target):
    lines = cohort_lines(sandbox.generator, COHORTS)
    run_target(lines, raise_errors=True)
    puts_before = len(sendgrid_requests(sandbox, "PUT"))

    second = run_target(lines, raise_errors=True)

    assert len(sendgrid_requests(sandbox, "PUT")) == puts_before
    totals = second.report["totals"]
    assert totals["upserted"] == 0
    assert totals["unchanged"] == totals["received"] - totals["rejected"]
    assert totals["removed"] == 0


def test_churn_is_mirrored_leavers_removed_changes_sent(sandbox, run_target):
    run_target(cohort_lines(sandbox.generator, ["pwrusr1"]), raise_errors=True)
    sandbox.generator.churn("pwrusr1", remove=20, add=7, rename=3)
    # a contact added by hand in the SendGrid UI is not in the cohort either
    name = list_name(sandbox, "pwrusr1")
    list_id = sandbox.sendgrid.list_by_name(name)["id"]
    sandbox.sendgrid.add_contact("hand.added@example.com", list_ids=[list_id])

    result = run_target(cohort_lines(sandbox.generator, ["pwrusr1"]), raise_errors=True)

    assert members_of(sandbox, name) == sandbox.generator.expected_emails("pwrusr1")
    entry = result.entry("pwrusr1")
    assert entry["removed"] >= 1
    assert entry["removal"] == "ran"
    assert 0 < entry["upserted"] <= 10
    assert entry["unchanged"] > 900
    assert violations(sandbox) == []


@pytest.mark.parametrize(
    ("status", "offset", "with_syncs", "why"),
    [
        ({"pwrusr1": "failed"}, {}, True, "failed"),
        ({}, {"pwrusr1": 5}, True, "reported"),
        ({}, {}, False, "no cohort_syncs record"),
    ],
)
def test_no_removal_unless_the_cohort_arrived_whole(
    sandbox, run_target, status, offset, with_syncs, why
):
    run_target(cohort_lines(sandbox.generator, ["pwrusr1"]), raise_errors=True)
    sandbox.generator.churn("pwrusr1", remove=30)
    before = members_of(sandbox, list_name(sandbox, "pwrusr1"))

    lines = cohort_lines(
        sandbox.generator, ["pwrusr1"], status=status, count_offset=offset, with_syncs=with_syncs
    )
    result = run_target(lines, raise_errors=True)

    assert members_of(sandbox, list_name(sandbox, "pwrusr1")) == before
    entry = result.entry("pwrusr1")
    assert entry["removed"] == 0
    assert entry["removal"] == "skipped"
    assert why in entry["removal_reason"]
    assert sendgrid_requests(sandbox, "DELETE") == []


def test_a_complete_empty_cohort_empties_its_list(sandbox, run_target):
    run_target(cohort_lines(sandbox.generator, ["pwrusr1"]), raise_errors=True)
    sandbox.generator.churn("pwrusr1", remove=sandbox.generator.size("pwrusr1"))

    result = run_target(cohort_lines(sandbox.generator, ["pwrusr1"]), raise_errors=True)

    assert members_of(sandbox, list_name(sandbox, "pwrusr1")) == set()
    assert result.entry("pwrusr1")["removed"] > 900


def test_max_removal_ratio_stops_a_large_removal(sandbox, run_target):
    run_target(cohort_lines(sandbox.generator, ["pwrusr1"]), raise_errors=True)
    sandbox.generator.churn("pwrusr1", remove=300)
    before = members_of(sandbox, list_name(sandbox, "pwrusr1"))

    result = run_target(
        cohort_lines(sandbox.generator, ["pwrusr1"]), raise_errors=True, max_removal_ratio=0.1
    )

    assert members_of(sandbox, list_name(sandbox, "pwrusr1")) == before
    entry = result.entry("pwrusr1")
    assert entry["removal"] == "skipped"
    assert "max_removal_ratio" in entry["removal_reason"]


def test_upsert_mode_neither_exports_nor_removes(sandbox, run_target):
    run_target(cohort_lines(sandbox.generator, ["pwrusr1"]), raise_errors=True)
    sandbox.generator.churn("pwrusr1", remove=10)
    sandbox.requests.clear()

    result = run_target(
        cohort_lines(sandbox.generator, ["pwrusr1"]), raise_errors=True, sync_mode="upsert"
    )

    assert sendgrid_requests(sandbox, path="/exports") == []
    assert sendgrid_requests(sandbox, "DELETE") == []
    entry = result.entry("pwrusr1")
    assert entry["unchanged"] == 0
    assert entry["removal"] == "not applicable"
    assert result.report["sync_mode"] == "upsert"


def test_dry_run_computes_everything_and_writes_nothing(sandbox, run_target):
    run_target(cohort_lines(sandbox.generator, ["pwrusr1"]), raise_errors=True)
    before = members_of(sandbox, list_name(sandbox, "pwrusr1"))
    sandbox.generator.churn("pwrusr1", remove=20, add=5)
    leavers = before - sandbox.generator.expected_emails("pwrusr1")
    sandbox.requests.clear()

    result = run_target(cohort_lines(sandbox.generator, COHORTS), raise_errors=True, dry_run=True)

    assert writes(sandbox) == []
    assert members_of(sandbox, list_name(sandbox, "pwrusr1")) == before
    assert result.report["dry_run"] is True
    assert result.entry("pwrusr1")["removed"] == len(leavers) > 0
    assert result.entry("pwrusr1")["removal"] == "dry run"
    assert result.entry("trlrsk2")["upserted"] > 0  # would be created
    assert result.entry("trlrsk2")["list_id"] is None
    assert sandbox.sendgrid.list_by_name(list_name(sandbox, "trlrsk2")) is None
    assert "DRY RUN" in result.log


def test_invalid_key_is_one_sentence_and_nothing_is_written(sandbox, run_target):
    result = run_target(cohort_lines(sandbox.generator, ["pwrusr1"]), api_key="SG.wrong")
    assert result.error is not None
    assert "401" in str(result.error)
    assert "api_key" in str(result.error)
    assert [r["method"] for r in sendgrid_requests(sandbox)] == ["GET"]
    assert "SG.wrong" not in result.log


def test_key_without_marketing_permission_names_the_fix(sandbox, run_target):
    result = run_target(
        cohort_lines(sandbox.generator, ["pwrusr1"]), api_key=sandbox.sendgrid_restricted_key
    )
    assert result.error is not None
    assert "Full Access, or Restricted Access with Marketing" in str(result.error)
    assert writes(sandbox) == []
    assert sandbox.sendgrid_restricted_key not in result.log


def test_meltano_config_test_record_without_email_is_rejected_not_a_crash(sandbox, run_target):
    lines = [
        schema(
            "meltano_test_stream", {"type": "object", "properties": {"id": {"type": "string"}}}, []
        ),
        record("meltano_test_stream", {"id": "test"}),
    ]
    result = run_target(lines, raise_errors=True, email_field="email")
    assert [r["reason"] for r in result.rejects] == ["missing_email"]
    assert result.report["totals"]["received"] == 1
    assert result.report["totals"]["rejected"] == 1
    assert writes(sandbox) == []


def test_on_invalid_email_fail_stops_before_writing(sandbox, run_target):
    result = run_target(cohort_lines(sandbox.generator, ["pwrusr1"]), on_invalid_email="fail")
    assert result.error is not None
    assert "nothing was written" in str(result.error)
    assert writes(sandbox) == []
    assert result.rejects
    assert result.rejects[0]["reason"] in {"missing_email", "invalid_email"}


def test_on_invalid_email_fail_sends_everything_when_all_emails_are_valid(sandbox, run_target):
    name = sandbox.generator.spec("pwrusr1").name
    valid = [m for m in sandbox.generator.members("pwrusr1") if m["category"] == "valid"][:50]
    lines = [schema("cohort_members", MEMBERS_SCHEMA, ["cohort_id", "amplitude_id"])]
    lines += [record("cohort_members", member_record("pwrusr1", name, m)) for m in valid]
    result = run_target(lines, raise_errors=True, on_invalid_email="fail", sync_mode="upsert")
    assert result.report["totals"]["upserted"] == 50
    assert members_of(sandbox, list_name(sandbox, "pwrusr1")) == {
        m["expected_email"] for m in valid
    }


def _with_rejected_addresses(sandbox, count: int) -> list[str]:
    name = sandbox.generator.spec("pwrusr1").name
    members = [m for m in sandbox.generator.members("pwrusr1") if m["category"] == "valid"][:40]
    for member in members[:count]:
        member["email"] = "reject+" + member["email"].strip()
    lines = [schema("cohort_members", MEMBERS_SCHEMA, ["cohort_id", "amplitude_id"])]
    lines += [record("cohort_members", member_record("pwrusr1", name, m)) for m in members]
    return lines


def test_contacts_sendgrid_refuses_in_a_job_are_rejects_and_fail_the_run(sandbox, run_target):
    result = run_target(_with_rejected_addresses(sandbox, 3))
    assert result.error is not None
    assert "refused 3 contacts" in str(result.error)
    assert "refused 3 contacts" in result.report["error"]
    refused = [r for r in result.rejects if r["reason"] == "sendgrid_rejected"]
    assert len(refused) == 3
    assert all(r["values"]["email"].startswith("reject+") for r in refused)
    assert all(r["stream"] == "cohort_members" and r["keys"]["amplitude_id"] for r in refused)
    totals = result.report["totals"]
    assert totals["upserted"] == 37
    assert totals["received"] == totals["upserted"] + totals["unchanged"] + totals["rejected"]


def test_max_sendgrid_rejections_tolerates_refusals(sandbox, run_target):
    result = run_target(_with_rejected_addresses(sandbox, 2), max_sendgrid_rejections=2)
    assert result.error is None
    assert result.report["totals"]["rejected_by_reason"] == {"sendgrid_rejected": 2}


def test_a_failed_job_fails_the_run_with_sendgrids_message(
    sandbox_factory, run_target, target_config
):
    small = sandbox_factory(contact_limit=10)
    result = run_target(
        cohort_lines(small.generator, ["pwrusr1"]),
        api_url=small.sendgrid_url,
        api_key=small.sendgrid_api_key,
    )
    assert result.error is not None
    assert "contact limit" in str(result.error)
    assert "contact limit" in result.report["error"]  # the report still says what happened


def test_batches_honour_batch_size_rows_and_group_by_list(sandbox, run_target):
    run_target(
        cohort_lines(sandbox.generator, ["pwrusr1", "trlrsk2"]),
        raise_errors=True,
        batch_size_rows=100,
        sync_mode="upsert",
    )
    puts = sendgrid_requests(sandbox, "PUT", "/v3/marketing/contacts")
    assert len(puts) >= 12
    assert all(r["body_bytes"] <= 6_000_000 for r in puts)
    expected = sandbox.generator.expected_emails("pwrusr1")
    assert members_of(sandbox, list_name(sandbox, "pwrusr1")) == expected
    assert violations(sandbox) == []


def test_lists_are_found_on_any_page_and_created_only_when_missing(
    sandbox, run_target, monkeypatch
):
    monkeypatch.setattr(lists_module, "PAGE_SIZE", 3)
    for i in range(10):
        sandbox.sendgrid.create_list(f"Other list {i}")
    existing = sandbox.sendgrid.create_list(list_name(sandbox, "pwrusr1"))

    run_target(cohort_lines(sandbox.generator, ["pwrusr1"]), raise_errors=True)

    wanted = list_name(sandbox, "pwrusr1")
    named = [lst for lst in sandbox.sendgrid.lists() if lst["name"] == wanted]
    assert [lst["id"] for lst in named] == [existing["id"]]
    assert len(sendgrid_requests(sandbox, "GET", "/v3/marketing/lists")) >= 4
    assert sendgrid_requests(sandbox, "POST", "/v3/marketing/lists") == []


def test_long_cohort_names_give_list_names_of_100_characters(sandbox, run_target):
    long_name = "Users who opened the onboarding email but never finished setting up a project " * 2
    lines = [schema("cohort_members", MEMBERS_SCHEMA, ["cohort_id", "amplitude_id"])]
    member = next(m for m in sandbox.generator.members("pwrusr1") if m["category"] == "valid")
    lines.append(record("cohort_members", member_record("lng4", long_name, member)))
    run_target(lines, raise_errors=True)
    names = [lst["name"] for lst in sandbox.sendgrid.lists()]
    assert len(names) == 1
    assert len(names[0]) == 100
    assert names[0].startswith("[Amplitude] Users who opened")
    assert names[0].endswith("…: lng4")


def test_rate_limits_and_server_errors_are_retried(sandbox, run_target):
    sandbox.faults.add(
        "sendgrid", "PUT", "/v3/marketing/contacts$", times=1, rate_limited=True, reset_in=0
    )
    sandbox.faults.add("sendgrid", "GET", "/imports/", times=1, status=503)
    sandbox.faults.add("sendgrid", "POST", "/v3/marketing/lists$", times=1, status=500)
    sandbox.faults.add("sendgrid", "GET", "/imports/", times=1, drop=True)

    result = run_target(
        cohort_lines(sandbox.generator, ["trlrsk2"]), raise_errors=True, sync_mode="upsert"
    )

    assert members_of(sandbox, list_name(sandbox, "trlrsk2")) == (
        sandbox.generator.expected_emails("trlrsk2")
    )
    assert len(sendgrid_requests(sandbox, "POST", "/v3/marketing/lists")) == 2
    assert [r["status"] for r in sendgrid_requests(sandbox, "PUT")][:2] == [429, 202]
    assert result.report["api_calls"] == len(sendgrid_requests(sandbox))


def test_other_client_errors_stop_with_sendgrids_message(sandbox, run_target):
    sandbox.faults.add(
        "sendgrid",
        "PUT",
        "/v3/marketing/contacts$",
        times=1,
        status=413,
        body={"errors": [{"field": None, "message": "request entity too large"}]},
    )
    result = run_target(cohort_lines(sandbox.generator, ["trlrsk2"]), sync_mode="upsert")
    assert result.error is not None
    assert "request entity too large" in str(result.error)
    assert len(sendgrid_requests(sandbox, "PUT")) == 1


def test_custom_fields_are_created_typed_and_filled(sandbox, run_target):
    custom = {
        "plan": "user_properties.plan",
        "signup_date": "user_properties.signup_date",
        "lifetime_value": "user_properties.lifetime_value",
    }
    result = run_target(
        cohort_lines(sandbox.generator, ["trlrsk2"]),
        raise_errors=True,
        custom_fields=custom,
        create_missing_custom_fields=True,
    )
    fields = {f["name"]: f for f in sandbox.sendgrid.field_definitions()}
    assert fields["plan"]["field_type"] == "Text"
    assert fields["signup_date"]["field_type"] == "Date"
    assert fields["lifetime_value"]["field_type"] == "Number"
    member = next(m for m in sandbox.generator.members("trlrsk2") if m["category"] == "valid")
    stored = sandbox.sendgrid.contact(member["expected_email"])
    values = stored["custom_fields"]
    assert values["plan"] == member["plan"]  # the sandbox shows custom fields by name
    year, month, day = member["signup_date"].split("-")
    assert values["signup_date"] == f"{month}/{day}/{year}"
    assert values["lifetime_value"] == pytest.approx(float(member["lifetime_value"]))
    upserts = sendgrid_requests(sandbox, "PUT", "/v3/marketing/contacts")
    assert upserts[0]["status"] == 400  # the new fields were not accepted yet: waited, resent
    assert upserts[-1]["status"] == 202
    assert violations(sandbox) == []
    assert result.report["totals"]["adds_up"] is True


def test_missing_custom_field_without_create_is_a_clear_error(sandbox, run_target):
    result = run_target(
        cohort_lines(sandbox.generator, ["trlrsk2"]), custom_fields={"plan": "user_properties.plan"}
    )
    assert result.error is not None
    assert "create_missing_custom_fields" in str(result.error)
    assert writes(sandbox) == []


def test_stream_without_cohort_fields_is_upserted_but_never_mirrored(sandbox, run_target):
    other = {
        "type": "object",
        "properties": {"email": {"type": "string"}, "name": {"type": "string"}},
    }
    lines = [schema("signups", other, ["email"])]
    lines += [record("signups", {"email": f"person{i}@example.com"}) for i in range(5)]
    first = run_target(lines, raise_errors=True, email_field="email", list_name="Newsletter")
    assert members_of(sandbox, "Newsletter") == {f"person{i}@example.com" for i in range(5)}
    second = run_target(lines[:3], raise_errors=True, email_field="email", list_name="Newsletter")
    assert members_of(sandbox, "Newsletter") == {f"person{i}@example.com" for i in range(5)}
    entry = second.report["lists"][0]
    assert entry["removal"] == "skipped"
    assert "without cohort fields" in entry["removal_reason"]
    assert first.log.count("never mirrored") == 1


def test_no_secret_or_email_is_logged_at_info_or_above(sandbox, run_target, caplog):
    result = run_target(cohort_lines(sandbox.generator, ["pwrusr1"]), raise_errors=True)
    loud = "\n".join(r.getMessage() for r in caplog.records if r.levelno >= logging.INFO)
    assert sandbox.sendgrid_api_key not in result.log
    assert "@" not in loud.replace("@-sign", "")
    report_text = json.dumps(result.report)
    assert sandbox.sendgrid_api_key not in report_text


def test_progress_is_logged_during_long_runs(sandbox, run_target, monkeypatch):
    from target_sendgrid_contacts import run as run_module

    monkeypatch.setattr(run_module, "PROGRESS_EVERY_SECONDS", 0.0)
    result = run_target(
        cohort_lines(sandbox.generator, ["pwrusr1"]), raise_errors=True, batch_size_rows=300
    )
    progress = [line for line in result.log.splitlines() if "Progress:" in line]
    assert progress
    assert "records read" in progress[-1]
    assert "jobs finished" in progress[-1]


def test_changes_from_many_sink_batches_are_pooled_into_full_requests(sandbox, run_target):
    lines = cohort_lines(sandbox.generator, ["pwrusr1"])
    run_target(lines, raise_errors=True, batch_size_rows=200)
    sandbox.generator.churn("pwrusr1", remove=5, add=5, rename=5)
    puts_before = len(sendgrid_requests(sandbox, "PUT"))

    result = run_target(
        cohort_lines(sandbox.generator, ["pwrusr1"]), raise_errors=True, batch_size_rows=200
    )

    assert len(sendgrid_requests(sandbox, "PUT")) - puts_before == 1
    assert members_of(sandbox, list_name(sandbox, "pwrusr1")) == (
        sandbox.generator.expected_emails("pwrusr1")
    )
    assert result.entry("pwrusr1")["adds_up"] is True


def test_a_contact_named_in_a_400_is_set_aside_and_the_rest_sent(sandbox, run_target):
    sandbox.faults.add(
        "sendgrid",
        "PUT",
        "/v3/marketing/contacts$",
        times=1,
        status=400,
        body={"errors": [{"field": "contacts[1].email", "message": "email address is invalid"}]},
    )
    result = run_target(
        cohort_lines(sandbox.generator, ["trlrsk2"]), sync_mode="upsert", max_sendgrid_rejections=1
    )
    assert result.error is None
    refused = [r for r in result.rejects if r["reason"] == "sendgrid_rejected"]
    assert len(refused) == 1
    assert "email address is invalid" in refused[0]["message"]
    members = members_of(sandbox, list_name(sandbox, "trlrsk2"))
    assert members == sandbox.generator.expected_emails("trlrsk2") - {refused[0]["values"]["email"]}
    assert result.report["totals"]["adds_up"] is True


def test_request_bodies_are_split_at_six_megabytes(sandbox, run_target):
    padding = "x" * 280
    members = [m for m in sandbox.generator.members("pwrusr1") if m["category"] == "valid"]
    name = sandbox.generator.spec("pwrusr1").name
    lines = [schema("cohort_members", MEMBERS_SCHEMA, ["cohort_id", "amplitude_id"])]
    count = 0
    for copy in range(25):
        for member in members:
            rec = member_record("pwrusr1", name, member)
            rec["user_properties"]["email"] = f"c{copy}.{member['expected_email']}"
            rec["user_properties"]["company"] = padding
            lines.append(record("cohort_members", rec))
            count += 1
    result = run_target(
        lines,
        raise_errors=True,
        sync_mode="upsert",
        custom_fields={"company": "user_properties.company"},
        create_missing_custom_fields=True,
    )
    puts = [r for r in sendgrid_requests(sandbox, "PUT") if r["status"] == 202]
    assert count < 30_000
    assert len(puts) >= 2  # not by count: by bytes
    assert all(r["body_bytes"] <= 6_000_000 for r in puts)
    assert max(r["body_bytes"] for r in puts) > 5_000_000
    assert result.report["totals"]["upserted"] == count
    assert violations(sandbox) == []


def test_a_400_naming_every_contact_of_a_request_rejects_them_and_the_run_goes_on(
    sandbox, run_target
):
    # A one-contact request refused by name: the contact is rejected, not the whole run.
    name = sandbox.generator.spec("pwrusr1").name
    valid = [m for m in sandbox.generator.members("pwrusr1") if m["category"] == "valid"][:3]
    lines = [schema("cohort_members", MEMBERS_SCHEMA, ["cohort_id", "amplitude_id"])]
    lines += [record("cohort_members", member_record("pwrusr1", name, m)) for m in valid]
    sandbox.faults.add(
        "sendgrid",
        "PUT",
        "/v3/marketing/contacts$",
        times=1,
        status=400,
        body={"errors": [{"field": "contacts[0].email", "message": "email address is invalid"}]},
    )
    result = run_target(lines, sync_mode="upsert", batch_size_rows=1, max_sendgrid_rejections=1)
    assert result.error is None
    refused = [r for r in result.rejects if r["reason"] == "sendgrid_rejected"]
    assert [r["values"]["email"] for r in refused] == [valid[0]["expected_email"]]
    assert members_of(sandbox, list_name(sandbox, "pwrusr1")) == {
        m["expected_email"] for m in valid[1:]
    }
    totals = result.report["totals"]
    assert (totals["received"], totals["upserted"], totals["rejected"]) == (3, 2, 1)


def test_duplicates_across_sink_batches_are_rejected_naming_the_record_kept(sandbox, run_target):
    name = sandbox.generator.spec("pwrusr1").name
    valid = [m for m in sandbox.generator.members("pwrusr1") if m["category"] == "valid"][:30]
    lines = [schema("cohort_members", MEMBERS_SCHEMA, ["cohort_id", "amplitude_id"])]
    lines += [record("cohort_members", member_record("pwrusr1", name, m)) for m in valid]
    again = member_record("pwrusr1", name, valid[2])  # same person, other case, 27 records later
    again["amplitude_id"] = 999_999_999
    again["user_properties"]["email"] = f"  {valid[2]['expected_email'].upper()} "
    lines.append(record("cohort_members", again))

    result = run_target(lines, raise_errors=True, sync_mode="upsert", batch_size_rows=10)

    assert result.report["totals"]["rejected_by_reason"] == {"duplicate_email": 1}
    (duplicate,) = result.rejects
    assert duplicate["keys"]["amplitude_id"] == 999_999_999
    assert "record #3 " in duplicate["message"]
    assert f"amplitude_id={valid[2]['amplitude_id']}" in duplicate["message"]
    assert result.report["totals"]["upserted"] == 30
    assert violations(sandbox) == []


def test_internationalised_addresses_are_rejected_before_anything_is_sent(sandbox, run_target):
    name = sandbox.generator.spec("pwrusr1").name
    valid = [m for m in sandbox.generator.members("pwrusr1") if m["category"] == "valid"][:3]
    lines = [schema("cohort_members", MEMBERS_SCHEMA, ["cohort_id", "amplitude_id"])]
    lines += [record("cohort_members", member_record("pwrusr1", name, m)) for m in valid]
    for number, address in enumerate(["josé@example.com", "anna@münchen.de"]):
        rec = member_record("pwrusr1", name, valid[0])
        rec["amplitude_id"] = 900 + number
        rec["user_properties"]["email"] = address
        lines.append(record("cohort_members", rec))

    result = run_target(lines, raise_errors=True, sync_mode="upsert")

    assert result.report["totals"]["rejected_by_reason"] == {"invalid_email": 2}
    assert all("non-ASCII" in r["message"] for r in result.rejects)
    assert not any(c["email"].isascii() is False for c in sandbox.sendgrid.contacts())
    assert members_of(sandbox, list_name(sandbox, "pwrusr1")) == {
        m["expected_email"] for m in valid
    }


def test_on_invalid_email_fail_writes_nothing_even_after_many_full_batches(sandbox, run_target):
    name = sandbox.generator.spec("pwrusr1").name
    members = list(sandbox.generator.members("pwrusr1"))
    valid = [m for m in members if m["category"] == "valid"][:60]
    invalid = next(m for m in members if m["category"] == "invalid_email")
    lines = [schema("cohort_members", MEMBERS_SCHEMA, ["cohort_id", "amplitude_id"])]
    lines += [record("cohort_members", member_record("pwrusr1", name, m)) for m in valid]
    lines.append(record("cohort_members", member_record("pwrusr1", name, invalid)))

    result = run_target(lines, on_invalid_email="fail", batch_size_rows=10)

    assert result.error is not None
    assert "nothing was written" in str(result.error)
    assert writes(sandbox) == []
    assert sandbox.sendgrid.list_by_name(list_name(sandbox, "pwrusr1")) is None


def test_custom_fields_that_exist_are_sent_by_id_and_rejects_still_show_their_names(
    sandbox, run_target, monkeypatch
):
    from target_sendgrid_contacts import upserts

    bodies: list[dict] = []
    start = upserts.start_upsert

    def watched(client, body: bytes) -> str:
        bodies.append(json.loads(body))
        return start(client, body)

    monkeypatch.setattr(upserts, "start_upsert", watched)
    custom = {"plan": "user_properties.plan", "company": "user_properties.company"}
    lines = cohort_lines(sandbox.generator, ["trlrsk2"])
    first = run_target(
        lines, raise_errors=True, custom_fields=custom, create_missing_custom_fields=True
    )
    ids = {f["name"]: f["id"] for f in sandbox.sendgrid.field_definitions()}
    bodies.clear()
    second = run_target(lines, raise_errors=True, sync_mode="upsert", custom_fields=custom)

    sent = [c for body in bodies for c in body["contacts"] if c.get("custom_fields")]
    assert sent
    assert all(set(c["custom_fields"]) <= {ids["plan"], ids["company"]} for c in sent)
    member = next(m for m in sandbox.generator.members("trlrsk2") if m["category"] == "valid")
    stored = sandbox.sendgrid.contact(member["expected_email"])
    assert stored["custom_fields"]["plan"] == member["plan"]
    for result in (first, second):
        duplicates = [r for r in result.rejects if r["reason"] == "duplicate_email"]
        shown = [r["values"].get("custom_fields") for r in duplicates]
        assert any(shown)
        assert all(set(s) <= {"plan", "company"} for s in shown if s), shown
        assert result.report["totals"]["adds_up"] is True

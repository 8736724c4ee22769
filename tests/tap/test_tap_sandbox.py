"""The tap against the sandbox over real HTTP: members, completeness, bookmarks, failures."""

from __future__ import annotations

import contextlib
import datetime
import gzip
import io
import logging

import pytest
from singer_sdk.exceptions import ConfigValidationError
from tap_amplitude_cohort.amplitude.client import AmplitudeClient
from tap_amplitude_cohort.tap import TapAmplitudeCohort

from sandbox.generator import PROPERTY_KEYS
from tests.tap.harness import (
    SEEDED_IDS,
    catalog_without,
    export_requests,
    run_tap,
    tap_config,
)

pytestmark = pytest.mark.integration


def test_full_sync_delivers_every_member_then_the_completeness_signal(sandbox):
    run = run_tap(tap_config(sandbox))

    assert run.exit_code == 0
    # Stream order of the contract: cohorts, then every member, then cohort_syncs.
    order = [m["stream"] for m in run.messages if m["type"] == "RECORD"]
    first_member, last_member = (
        order.index("cohort_members"),
        len(order) - 1 - order[::-1].index("cohort_members"),
    )
    assert set(order[:first_member]) == {"cohorts"}
    assert set(order[last_member + 1 :]) == {"cohort_syncs"}

    syncs = run.syncs()
    assert list(syncs) == SEEDED_IDS
    for cohort_id in SEEDED_IDS:
        expected_ids = {m["amplitude_id"] for m in sandbox.amplitude.members(cohort_id)}
        members = run.members(cohort_id)
        assert {int(m["amplitude_id"]) for m in members} == {int(i) for i in expected_ids}
        assert syncs[cohort_id]["status"] == "complete"
        assert syncs[cohort_id]["member_count"] == len(members) == len(expected_ids)
        assert syncs[cohort_id]["message"] is None
    assert syncs["empty03"]["member_count"] == 0  # downloaded, whole and empty
    assert len(export_requests(sandbox)) == 3


def test_member_records_are_normalised_whatever_the_export_style(sandbox):
    run = run_tap(tap_config(sandbox))
    cohorts = {c["id"]: c for c in run.records("cohorts")}
    # trlrsk2: gp: headers, a tab before gp:plan, a BOM, timestamps in seconds.
    # pwrusr1: plain headers, timestamps in milliseconds.
    for cohort_id in ("pwrusr1", "trlrsk2"):
        members = run.members(cohort_id)
        assert all(set(m["user_properties"]) == set(PROPERTY_KEYS) for m in members)
        assert all(m["cohort_name"] == cohorts[cohort_id]["name"] for m in members)
        assert all(
            m["cohort_last_computed"] == cohorts[cohort_id]["last_computed"] for m in members
        )
        assert any(m["user_id"] is None for m in members)
        assert all(m["user_id"] is None or m["user_id"] != "" for m in members)
    raw = {c["id"]: c for c in sandbox.amplitude.cohorts()}
    for cohort_id, factor in (("pwrusr1", 1000), ("trlrsk2", 1)):
        as_seconds = raw[cohort_id]["lastComputed"] * 1000 // factor / 1000
        expected = datetime.datetime.fromtimestamp(as_seconds, tz=datetime.timezone.utc)
        assert cohorts[cohort_id]["last_computed"] == expected.isoformat()
        assert cohorts[cohort_id]["last_computed"].startswith("2025-")


def test_unchanged_cohorts_are_skipped_with_state_and_downloaded_again_after_a_change(
    sandbox, caplog
):
    first = run_tap(tap_config(sandbox))
    assert set(first.bookmarks()) == set(SEEDED_IDS)
    assert all(first.bookmarks().values())
    used = sandbox.amplitude.downloads_used

    with caplog.at_level(logging.INFO):
        second = run_tap(tap_config(sandbox), state=first.final_state)
    assert sandbox.amplitude.downloads_used == used  # no quota spent
    assert {c: s["status"] for c, s in second.syncs().items()} == dict.fromkeys(
        SEEDED_IDS, "unchanged"
    )
    assert second.records("cohort_members") == []
    assert second.exit_code == 0
    assert "0 cohort download(s) used" in caplog.text
    assert "has not moved since the last complete sync" in caplog.text
    assert second.bookmarks() == first.bookmarks()

    sandbox.amplitude.churn("pwrusr1", remove=3, add=2)
    third = run_tap(tap_config(sandbox), state=second.final_state)
    statuses = {c: s["status"] for c, s in third.syncs().items()}
    assert statuses == {"pwrusr1": "complete", "trlrsk2": "unchanged", "empty03": "unchanged"}
    assert len(third.members("pwrusr1")) == 1000 - 3 + 2
    assert sandbox.amplitude.downloads_used == used + 1
    assert third.bookmarks()["pwrusr1"] > first.bookmarks()["pwrusr1"]


def new_bookmarks(state: dict, before: dict[str, str | None]) -> set[str]:
    """Cohorts whose bookmark in a STATE value differs from ``before``."""
    partitions = state.get("bookmarks", {}).get("cohort_members", {}).get("partitions", [])
    moved = {p["context"]["cohort_id"]: p.get("last_computed") for p in partitions}
    return {cohort for cohort, value in moved.items() if value and value != before.get(cohort)}


def assert_bookmarks_follow_their_cohort_syncs(run, before: dict[str, str | None]) -> set[str]:
    """No STATE may move a cohort's bookmark before its cohort_syncs record was written."""
    reported: set[str] = set()
    moved: set[str] = set()
    for message in run.messages:
        if message["type"] == "RECORD" and message["stream"] == "cohort_syncs":
            reported.add(message["record"]["cohort_id"])
        elif message["type"] == "STATE":
            early = new_bookmarks(message["value"], before) - reported
            assert not early, f"STATE moved the bookmark of {early} before its cohort_syncs"
            moved |= new_bookmarks(message["value"], before)
    return moved


def test_a_bookmark_reaches_state_only_after_its_cohort_syncs_record(sandbox):
    first = run_tap(tap_config(sandbox))
    assert assert_bookmarks_follow_their_cohort_syncs(first, {}) == set(SEEDED_IDS)

    sandbox.amplitude.churn("trlrsk2", remove=2)
    second = run_tap(tap_config(sandbox), state=first.final_state)
    moved = assert_bookmarks_follow_their_cohort_syncs(second, first.bookmarks())
    assert moved == {"trlrsk2"}


def test_without_cohort_syncs_selected_complete_downloads_still_move_their_bookmark(sandbox):
    config = tap_config(sandbox)
    catalog = catalog_without(config, "cohort_syncs")
    sandbox.faults.add("storage", "GET", r"/files/.*pwrusr1", truncate_after=3000)
    first = run_tap(config, catalog=catalog)
    assert first.records("cohort_syncs") == []
    assert first.exit_code == 1
    assert first.bookmarks().get("pwrusr1") is None  # failed: no bookmark
    assert first.bookmarks()["trlrsk2"]
    assert first.bookmarks()["empty03"]

    second = run_tap(config, state=first.final_state, catalog=catalog)
    assert second.exit_code == 0
    assert len(second.records("cohort_members")) == len(second.members("pwrusr1")) == 1000
    assert [r["path"] for r in export_requests(sandbox)][3:] == ["/api/5/cohorts/request/pwrusr1"]


def test_the_two_million_guard_lets_exactly_two_million_through(sandbox_factory):
    sandbox = sandbox_factory(
        extra_cohorts=[
            # Listed only: the sandbox refuses to export them, so no member is generated.
            {"id": "edge2m", "name": "At the limit", "size": 2_000_000, "generate": False},
            {"id": "over2m", "name": "One too many", "size": 2_000_001, "generate": False},
        ]
    )
    run = run_tap(tap_config(sandbox, cohort_ids=["edge2m", "over2m"]))
    # At the limit the tap asks Amplitude (which then answers); past it, it does not.
    assert [r["path"] for r in export_requests(sandbox)] == ["/api/5/cohorts/request/edge2m"]
    assert "listed only" in run.syncs()["edge2m"]["message"]
    assert "2,000,001 users" in run.syncs()["over2m"]["message"]


def test_skip_unchanged_cohorts_false_downloads_every_time(sandbox):
    first = run_tap(tap_config(sandbox))
    second = run_tap(tap_config(sandbox, skip_unchanged_cohorts=False), state=first.final_state)
    assert {s["status"] for s in second.syncs().values()} == {"complete"}
    assert len(export_requests(sandbox)) == 6


@pytest.fixture(autouse=True)
def quick_backoff(monkeypatch):
    """Retries back off for milliseconds instead of seconds (the bound is what is tested)."""
    monkeypatch.setitem(AmplitudeClient.__init__.__kwdefaults__, "backoff_seconds", 0.01)


def assert_only_pwrusr1_failed(run, sandbox) -> str:
    syncs = run.syncs()
    assert syncs["pwrusr1"]["status"] == "failed"
    assert syncs["pwrusr1"]["member_count"] == len(run.members("pwrusr1"))
    assert len(run.members("pwrusr1")) < sandbox.generator.size("pwrusr1")
    assert syncs["trlrsk2"]["status"] == "complete"
    assert syncs["empty03"]["status"] == "complete"
    assert run.bookmarks().get("pwrusr1") is None  # its bookmark does not advance
    assert run.bookmarks()["trlrsk2"]
    assert "pwrusr1" in run.tap.ledger.failure_summary()
    assert run.exit_code == 1
    return syncs["pwrusr1"]["message"]


def test_connection_cut_part_way_through_the_stored_file_fails_that_cohort_only(sandbox):
    sandbox.faults.add("storage", "GET", r"/files/.*pwrusr1", truncate_after=3000)
    run = run_tap(tap_config(sandbox))
    message = assert_only_pwrusr1_failed(run, sandbox)
    assert "the export of cohort pwrusr1" in message
    assert "connection dropped" in message or "truncated" in message


def test_connection_cut_part_way_through_a_direct_body_fails_that_cohort_only(sandbox_factory):
    sandbox = sandbox_factory(redirect_min_members=1_000_000)  # /file answers with the body
    sandbox.faults.add("amplitude", "GET", r"/request/\w+/file$", truncate_after=2500)
    run = run_tap(tap_config(sandbox))
    # The cut hits the first download only; the others read whole.
    message = assert_only_pwrusr1_failed(run, sandbox)
    assert "the export of cohort pwrusr1" in message


def test_connection_dropped_on_every_attempt_fails_after_the_retry_bound(sandbox):
    rule = sandbox.faults.add("storage", "GET", r"/files/.*pwrusr1", times=None, drop=True)
    run = run_tap(tap_config(sandbox))
    message = assert_only_pwrusr1_failed(run, sandbox)
    assert "kept failing after 7 attempts" in message
    assert rule.hits == 7


def test_connection_dropped_once_is_retried(sandbox):
    sandbox.faults.add("storage", "GET", r"/files/.*pwrusr1", drop=True)
    run = run_tap(tap_config(sandbox))
    assert run.syncs()["pwrusr1"]["status"] == "complete"
    assert len(run.members("pwrusr1")) == 1000


def test_429_and_5xx_are_retried_to_success(sandbox):
    sandbox.faults.add("amplitude", "GET", r"/api/5/cohorts/request/pwrusr1$", status=429)
    sandbox.faults.add("amplitude", "GET", r"/api/5/cohorts/request-status/", status=503)
    sandbox.faults.add("amplitude", "GET", r"/api/3/cohorts", status=502)
    run = run_tap(tap_config(sandbox))
    assert {s["status"] for s in run.syncs().values()} == {"complete"}
    assert len(run.members("pwrusr1")) == 1000
    statuses = [r["status"] for r in sandbox.requests if r["service"] == "amplitude"]
    assert statuses.count(429) == 1
    assert 503 in statuses
    assert 502 in statuses


def test_other_4xx_fails_the_cohort_with_a_message_naming_it(sandbox):
    sandbox.faults.add(
        "amplitude",
        "GET",
        r"/api/5/cohorts/request/trlrsk2$",
        status=403,
        body={"error": {"message": "Forbidden"}},
    )
    run = run_tap(tap_config(sandbox))
    syncs = run.syncs()
    assert syncs["trlrsk2"]["status"] == "failed"
    assert "cohort trlrsk2" in syncs["trlrsk2"]["message"]
    assert "HTTP 403" in syncs["trlrsk2"]["message"]
    assert syncs["pwrusr1"]["status"] == "complete"
    assert run.exit_code == 1


def test_export_that_never_completes_fails_at_the_bound(sandbox_factory):
    sandbox = sandbox_factory(export_polls_before_ready=10_000)
    run = run_tap(tap_config(sandbox, cohort_ids=["empty03"], max_export_wait_seconds=1))
    sync = run.syncs()["empty03"]
    assert sync["status"] == "failed"
    assert "did not complete within 1 s" in sync["message"]
    assert run.members("empty03") == []
    assert run.bookmarks().get("empty03") is None


def test_cohort_over_two_million_is_refused_before_any_download(sandbox, caplog):
    with caplog.at_level(logging.ERROR):
        run = run_tap(tap_config(sandbox, cohort_ids=["allusr9", "empty03"]))
    sync = run.syncs()["allusr9"]
    assert sync["status"] == "failed"
    assert "2,500,000 users" in sync["message"]
    assert "allusr9" in caplog.text
    assert [r["path"] for r in export_requests(sandbox)] == ["/api/5/cohorts/request/empty03"]
    assert run.syncs()["empty03"]["status"] == "complete"
    assert run.exit_code == 1


def test_unknown_cohort_id_lists_the_cohorts_that_exist_before_any_download(sandbox):
    with pytest.raises(ConfigValidationError) as info:
        run_tap(tap_config(sandbox, cohort_ids=["pwrusr1", "nope42"]))
    message = str(info.value)
    assert "nope42" in message
    assert "pwrusr1 (Power users)" in message
    assert "empty03 (Dormant accounts)" in message
    assert export_requests(sandbox) == []


def test_without_cohort_ids_no_members_and_a_warning(sandbox, caplog):
    with caplog.at_level(logging.WARNING):
        run = run_tap(tap_config(sandbox, cohort_ids=None))
    assert len(run.records("cohorts")) == len(sandbox.amplitude.cohorts())
    assert run.records("cohort_members") == []
    assert run.records("cohort_syncs") == []
    assert "cohort_ids is not set" in caplog.text
    assert export_requests(sandbox) == []


def test_property_selection_is_sent_as_repeated_prop_keys(sandbox):
    run = run_tap(tap_config(sandbox, cohort_ids=["trlrsk2"], user_property_keys=["email", "plan"]))
    (request,) = export_requests(sandbox)
    assert request["query"].get("propKeys") == ["email", "plan"]
    assert {frozenset(m["user_properties"]) for m in run.members("trlrsk2")} == {
        frozenset({"email", "plan"})
    }


def test_include_user_properties_false_sends_props_0(sandbox):
    run = run_tap(tap_config(sandbox, cohort_ids=["pwrusr1"], include_user_properties=False))
    (request,) = export_requests(sandbox)
    assert request["query"].get("props") in (["0"], "0")
    members = run.members("pwrusr1")
    assert len(members) == 1000
    assert all(m["user_properties"] == {} for m in members)


def test_storage_never_receives_credentials(sandbox):
    run_tap(tap_config(sandbox, cohort_ids=["pwrusr1"]))
    storage = [r for r in sandbox.requests if r["service"] == "storage"]
    assert storage
    assert all(r["status"] == 200 for r in storage)  # storage answers 400 to credentials


def test_gzip_file_cut_short_but_served_whole_is_detected(sandbox):
    # Storage serves a complete HTTP body whose gzip stream lacks its end: a truncated upload.

    whole = gzip.compress(
        b'"amplitude_id","user_id"\n' + b"".join(b'"%d","u"\n' % i for i in range(5000))
    )
    url = sandbox.storage.put(whole[: len(whole) * 2 // 3], name="cut.csv.gz")
    sandbox.faults.add(
        "amplitude", "GET", r"/request/\w+/file$", status=302, headers={"Location": url}
    )
    run = run_tap(tap_config(sandbox, cohort_ids=["pwrusr1"]))
    sync = run.syncs()["pwrusr1"]
    assert sync["status"] == "failed"
    assert "the export of cohort pwrusr1 is truncated" in sync["message"]
    assert 0 < sync["member_count"] < 5000
    assert run.bookmarks().get("pwrusr1") is None


@pytest.mark.parametrize("compressed", [True, False])
def test_a_stored_file_cut_by_a_dropped_connection_fails_whatever_its_encoding(sandbox, compressed):
    # The tap also reads an uncompressed file (a proxy may have decoded it): without the gzip
    # trailer, the HTTP framing (Content-Length) is what tells a cut body from a whole one.
    csv_bytes = b'"amplitude_id","user_id"\n' + b"".join(b'"%d","u"\n' % i for i in range(5000))
    body = gzip.compress(csv_bytes) if compressed else csv_bytes
    url = sandbox.storage.put(body, content_encoding="gzip" if compressed else None, name="f.csv")
    sandbox.faults.add(
        "amplitude", "GET", r"/request/\w+/file$", status=302, headers={"Location": url}
    )
    sandbox.faults.add("storage", "GET", r"/files/", truncate_after=len(body) // 2)
    run = run_tap(tap_config(sandbox, cohort_ids=["pwrusr1"]))
    sync = run.syncs()["pwrusr1"]
    assert sync["status"] == "failed"
    assert "the export of cohort pwrusr1" in sync["message"]
    assert sync["member_count"] == len(run.members("pwrusr1")) < 5000
    assert run.bookmarks().get("pwrusr1") is None


def test_sync_stopped_part_way_reports_the_cohort_failed_not_complete(sandbox):
    tap = TapAmplitudeCohort(config=tap_config(sandbox))
    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    with contextlib.redirect_stdout(out):
        tap.run_sync_dry_run(dry_run_record_limit=10)  # stops every stream after 10 records
    outcomes = {o.cohort_id: o for o in tap.ledger.outcomes}
    assert outcomes["pwrusr1"].status == "failed"
    assert outcomes["pwrusr1"].member_count == 10
    assert "stopped after 10 members" in outcomes["pwrusr1"].message
    assert tap.finish_run() == 1


def test_asking_for_other_properties_downloads_an_unchanged_cohort_again(sandbox):
    first = run_tap(tap_config(sandbox, cohort_ids=["trlrsk2"], user_property_keys=["email"]))
    same = run_tap(
        tap_config(sandbox, cohort_ids=["trlrsk2"], user_property_keys=["email"]),
        state=first.final_state,
    )
    assert same.syncs()["trlrsk2"]["status"] == "unchanged"
    wider = run_tap(
        tap_config(sandbox, cohort_ids=["trlrsk2"], user_property_keys=["email", "first_name"]),
        state=same.final_state,
    )
    assert wider.syncs()["trlrsk2"]["status"] == "complete"
    assert all(
        set(m["user_properties"]) == {"email", "first_name"} for m in wider.members("trlrsk2")
    )
    assert len(export_requests(sandbox)) == 2


def test_used_up_download_quota_fails_the_cohort_with_amplitudes_reason(sandbox_factory):
    sandbox = sandbox_factory(amplitude_download_quota=1)
    run = run_tap(tap_config(sandbox, cohort_ids=["empty03", "trlrsk2"]))
    syncs = run.syncs()
    assert syncs["empty03"]["status"] == "complete"
    assert syncs["trlrsk2"]["status"] == "failed"
    assert "cohort trlrsk2" in syncs["trlrsk2"]["message"]
    assert "quota" in syncs["trlrsk2"]["message"]
    assert run.exit_code == 1

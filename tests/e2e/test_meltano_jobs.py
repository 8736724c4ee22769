"""The README's promise, end to end: `meltano run` with the root meltano.yml against the sandbox."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

ROOT = Path(__file__).resolve().parents[2]
DEMO_COHORTS = ("pwrusr1", "trlrsk2", "empty03")


def _cohort_names(sandbox) -> dict[str, str]:
    answer = requests.get(
        f"{sandbox.amplitude_url}/api/3/cohorts",
        auth=(sandbox.amplitude_api_key, sandbox.amplitude_secret_key),
        timeout=10,
    )
    answer.raise_for_status()
    return {c["id"]: c["name"] for c in answer.json()["cohorts"]}


def _lists(sandbox) -> dict[str, dict]:
    answer = requests.get(f"{sandbox.sendgrid_url}/_sandbox/lists", timeout=10)
    answer.raise_for_status()
    return {item["name"]: item for item in answer.json()}


def _members(sandbox, list_id: str) -> set[str]:
    answer = requests.get(f"{sandbox.sendgrid_url}/_sandbox/lists/{list_id}/members", timeout=30)
    answer.raise_for_status()
    return {member["email"] for member in answer.json()}


def _list_for(sandbox, cohort_id: str) -> dict:
    name = f"[Amplitude] {_cohort_names(sandbox)[cohort_id]}: {cohort_id}"
    lists = _lists(sandbox)
    assert name in lists, f"no list {name!r}; lists: {sorted(lists)}"
    return lists[name]


def _downloads(sandbox) -> list[dict]:
    return [
        r
        for r in sandbox.requests
        if r["service"] == "amplitude"
        and r["path"].startswith("/api/5/cohorts/request/")
        and not r["path"].endswith("/file")
    ]


def _violations(sandbox) -> list[dict]:
    return [r for r in sandbox.requests if r.get("violation")]


def test_job_fills_one_list_per_cohort_with_its_valid_deduplicated_emails(sandbox, meltano):
    result = meltano("run", "--full-refresh", "amplitude-to-sendgrid")
    assert result.returncode == 0, result.stderr[-4000:]

    for cohort_id in DEMO_COHORTS:
        listed = _list_for(sandbox, cohort_id)
        assert _members(sandbox, listed["id"]) == sandbox.generator.expected_emails(cohort_id)
    assert _violations(sandbox) == []

    totals = result.report["totals"]
    assert totals["received"] == totals["upserted"] + totals["unchanged"] + totals["rejected"]
    reasons = {reject["reason"] for reject in result.rejects}
    assert {"missing_email", "invalid_email", "duplicate_email"} <= reasons
    assert "sandbox-amplitude-secret" not in result.stderr
    assert "SG.sandbox-full-access" not in result.stderr


def test_rerun_skips_unchanged_cohorts_and_mirrors_churn(sandbox, meltano):
    first = meltano("run", "amplitude-to-sendgrid")
    assert first.returncode == 0, first.stderr[-4000:]
    downloads_after_first = len(_downloads(sandbox))
    assert downloads_after_first == len(DEMO_COHORTS)

    second = meltano("run", "amplitude-to-sendgrid")
    assert second.returncode == 0, second.stderr[-4000:]
    assert len(_downloads(sandbox)) == downloads_after_first, "unchanged cohorts downloaded again"

    churn = requests.post(
        f"{sandbox.amplitude_url}/_sandbox/cohorts/pwrusr1/churn",
        json={"remove": 20, "add": 7, "rename": 3},
        timeout=10,
    )
    churn.raise_for_status()
    third = meltano("run", "amplitude-to-sendgrid")
    assert third.returncode == 0, third.stderr[-4000:]
    assert len(_downloads(sandbox)) == downloads_after_first + 1

    listed = _list_for(sandbox, "pwrusr1")
    assert _members(sandbox, listed["id"]) == sandbox.generator.expected_emails("pwrusr1")
    entry = next(e for e in third.report["lists"] if e.get("cohort_id") == "pwrusr1")
    assert entry["removed"] > 0
    assert entry["unchanged"] > entry["upserted"]
    assert _violations(sandbox) == []


def test_stock_csv_tap_feeds_the_target(sandbox, meltano, tmp_path):
    result = meltano(
        "run",
        "csv-to-sendgrid",
        env={
            "TAP_CSV_FOLDER_PATH": str(ROOT / "examples" / "csv"),
            "TARGET_SENDGRID_CONTACTS_EMAIL_FIELD": "email",
            "TARGET_SENDGRID_CONTACTS_FIRST_NAME_FIELD": "first_name",
            "TARGET_SENDGRID_CONTACTS_LAST_NAME_FIELD": "last_name",
            "TARGET_SENDGRID_CONTACTS_LIST_NAME": "Newsletter signups",
        },
    )
    assert result.returncode == 0, result.stderr[-4000:]
    listed = _lists(sandbox)["Newsletter signups"]
    members = _members(sandbox, listed["id"])
    assert {"alice.martin@example.com", "bob.jones@example.org"} <= members
    assert "not-an-email" not in members
    reasons = sorted(reject["reason"] for reject in result.rejects)
    assert reasons.count("missing_email") == 1
    assert reasons.count("invalid_email") >= 1
    assert reasons.count("duplicate_email") == 1
    totals = result.report["totals"]
    assert totals["received"] == 6
    assert totals["received"] == totals["upserted"] + totals["unchanged"] + totals["rejected"]


def test_config_test_passes_against_the_sandbox(sandbox, meltano):
    # `meltano config test` ignores the default environment: name it.
    result = meltano(
        "--environment=sandbox", "config", "test", "target-sendgrid-contacts", patched=True
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    assert "Plugin configuration is valid" in result.stdout + result.stderr
    # Its test record has no email: rejected with a reason, not a crash.
    assert [r["reason"] for r in result.rejects] == ["missing_email"]


def test_a_key_without_marketing_permission_is_refused_in_one_sentence(sandbox, meltano):
    restricted = {"TARGET_SENDGRID_CONTACTS_API_KEY": sandbox.sendgrid_restricted_key}
    tested = meltano(
        "--environment=sandbox",
        "config",
        "test",
        "target-sendgrid-contacts",
        env=restricted,
        patched=True,
    )
    assert tested.returncode != 0
    assert "Plugin configuration is invalid" in tested.stdout + tested.stderr

    # Meltano's `config test` shows only the loader's last line; a real run shows the sentence.
    invoked = meltano("invoke", "target-sendgrid-contacts", env=restricted)
    assert invoked.returncode != 0
    assert "use Full Access, or Restricted Access with Marketing permission" in invoked.stderr, (
        invoked.stderr[-3000:]
    )
    assert "Traceback" not in invoked.stderr
    assert not [r for r in sandbox.requests if r["method"] in ("PUT", "POST", "DELETE")]


def test_schedules_are_defined(meltano):
    result = meltano("schedule", "list")
    assert result.returncode == 0, result.stderr
    assert "cohorts-hourly" in result.stdout  # the cadence groups of cadences.meltano.yml
    assert "cohorts-daily" in result.stdout


def test_after_an_unreadable_list_export_the_next_meltano_run_removes_the_leavers(sandbox, meltano):
    # Meltano keeps the STATE the target wrote: the cohort stays pending in it, so the healthy
    # rerun downloads it again although Amplitude did not recompute it.
    assert meltano("run", "amplitude-to-sendgrid").returncode == 0
    requests.post(
        f"{sandbox.amplitude_url}/_sandbox/cohorts/pwrusr1/churn", json={"remove": 30}, timeout=10
    ).raise_for_status()
    listed = _list_for(sandbox, "pwrusr1")
    sandbox.faults.add(
        "sendgrid",
        "GET",
        r"/v3/marketing/contacts/exports/[^/]+$",
        times=None,
        status=200,
        body={"id": "x", "status": "failure", "message": "no"},
    )
    broken = meltano("run", "amplitude-to-sendgrid")
    assert broken.returncode == 0, broken.stderr[-4000:]
    assert [p["cohort_id"] for p in broken.report["pending"]] == ["pwrusr1"]
    assert _members(sandbox, listed["id"]) > sandbox.generator.expected_emails("pwrusr1")
    sandbox.faults.clear()
    downloads = len(_downloads(sandbox))

    healed = meltano("run", "amplitude-to-sendgrid")

    assert healed.returncode == 0, healed.stderr[-4000:]
    assert [r["path"] for r in _downloads(sandbox)[downloads:]] == [
        "/api/5/cohorts/request/pwrusr1"
    ]
    assert _members(sandbox, listed["id"]) == sandbox.generator.expected_emails("pwrusr1")
    assert healed.report["pending"] == []

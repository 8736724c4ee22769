"""Mirror sync end to end: the real target against the sandbox, run after run (issue 5)."""

from __future__ import annotations

import pytest

from .sync import CUSTOM_FIELDS, TargetRunner, list_emails, list_id, list_name, singer_input

pytestmark = pytest.mark.integration

PUT_CONTACTS = "/v3/marketing/contacts"
LISTS = "/v3/marketing/lists/"


def _first_names(sb, cohort_id: str) -> dict[str, str]:
    """email -> first name of the record a correct target keeps (the first with that email)."""
    kept: dict[str, str] = {}
    for member in sb.generator.members(cohort_id):
        email = member["expected_email"]
        if email is not None and email not in kept:
            kept[email] = member["first_name"]
    return kept


def _stored_first_names(sb, cohort_id: str) -> dict[str, str]:
    return {m["email"]: m.get("first_name") for m in sb.sendgrid.members(list_id(sb, cohort_id))}


def test_churn_adds_joiners_removes_leavers_and_updates_renamed(sandbox, tmp_path):
    runner = TargetRunner(sandbox, tmp_path)
    first = runner.run(singer_input(sandbox, ["pwrusr1"]))
    assert first.error is None
    before = sandbox.generator.expected_emails("pwrusr1")
    assert list_emails(sandbox, "pwrusr1") == before

    change = sandbox.generator.churn("pwrusr1", remove=15, add=12, rename=9)
    after = sandbox.generator.expected_emails("pwrusr1")
    assert before - after  # the churn really moved people both ways
    assert after - before
    second = runner.run(singer_input(sandbox, ["pwrusr1"]))
    assert second.error is None
    assert list_emails(sandbox, "pwrusr1") == after
    assert _stored_first_names(sandbox, "pwrusr1") == _first_names(sandbox, "pwrusr1")

    entry = second.list_entry(list_name(sandbox, "pwrusr1"))
    assert entry["removed"] == len(before - after)
    assert entry["removal"] == "ran"
    assert entry["adds_up"]
    renamed = {m["expected_email"] for m in change["renamed"]} & before & after
    assert entry["upserted"] >= len(after - before)
    assert entry["upserted"] <= len(after - before) + len(renamed)
    # Leavers are only taken off the list: they stay SendGrid contacts.
    for email in before - after:
        assert sandbox.sendgrid.contact(email) is not None
    assert second.count("DELETE", "/v3/marketing/contacts") == 0


def test_second_sync_of_a_cohort_sends_only_the_changes(sandbox, tmp_path):
    runner = TargetRunner(
        sandbox, tmp_path, custom_fields=CUSTOM_FIELDS, create_missing_custom_fields=True
    )
    first = runner.run(singer_input(sandbox, ["pwrusr1"]))
    assert first.error is None
    assert first.count("PUT", PUT_CONTACTS) >= 1

    sandbox.generator.churn("pwrusr1", remove=5, add=5, rename=5)  # 1.5% churn of 1,000
    second = runner.run(singer_input(sandbox, ["pwrusr1"]))
    assert second.error is None
    assert list_emails(sandbox, "pwrusr1") == sandbox.generator.expected_emails("pwrusr1")
    assert 1 <= second.count("PUT", PUT_CONTACTS) <= 2
    assert second.count("DELETE", LISTS) == 1
    entry = second.list_entry(list_name(sandbox, "pwrusr1"))
    assert entry["upserted"] <= 10  # joiners and renamed people, never the whole cohort
    assert entry["unchanged"] >= entry["received"] - entry["rejected"] - 10

    third = runner.run(singer_input(sandbox, ["pwrusr1"]))  # nothing changed at all
    assert third.error is None
    assert third.count("PUT", PUT_CONTACTS) == 0
    assert third.count("DELETE", LISTS) == 0
    assert third.list_entry(list_name(sandbox, "pwrusr1"))["upserted"] == 0


def test_changes_spread_over_several_batches_still_go_in_one_or_two_upserts(sandbox, tmp_path):
    # batch_size_rows 200 makes a 1,000-member cohort arrive as five sink batches, as a large
    # cohort does with the default 30,000; each upsert request may still carry 200 contacts.
    runner = TargetRunner(sandbox, tmp_path, batch_size_rows=200)
    assert runner.run(singer_input(sandbox, ["pwrusr1"])).error is None
    sandbox.generator.churn("pwrusr1", remove=5, add=5, rename=5)
    second = runner.run(singer_input(sandbox, ["pwrusr1"]))
    assert second.error is None
    assert list_emails(sandbox, "pwrusr1") == sandbox.generator.expected_emails("pwrusr1")
    assert 1 <= second.count("PUT", PUT_CONTACTS) <= 2


def test_empty_cohort_delivered_whole_empties_its_list(sandbox, tmp_path):
    empty_list = sandbox.sendgrid.create_list(list_name(sandbox, "empty03"))["id"]
    other = sandbox.sendgrid.create_list("kept elsewhere")["id"]
    for n in range(4):
        sandbox.sendgrid.add_contact(f"dormant{n}@example.com", list_ids=[empty_list])
    sandbox.sendgrid.add_contact("dormant0@example.com", list_ids=[other])

    result = TargetRunner(sandbox, tmp_path).run(singer_input(sandbox, ["empty03"]))
    assert result.error is None
    assert sandbox.sendgrid.member_emails(empty_list) == set()
    assert sandbox.sendgrid.member_emails(other) == {"dormant0@example.com"}
    assert all(sandbox.sendgrid.contact(f"dormant{n}@example.com") for n in range(4))
    assert result.list_entry(list_name(sandbox, "empty03"))["removed"] == 4


def test_person_added_to_the_list_by_hand_is_removed(sandbox, tmp_path):
    runner = TargetRunner(sandbox, tmp_path)
    assert runner.run(singer_input(sandbox, ["trlrsk2"])).error is None
    sandbox.sendgrid.add_contact(
        "Added.By@Hand.example.com", first_name="Hand", list_ids=[list_id(sandbox, "trlrsk2")]
    )
    assert "added.by@hand.example.com" in list_emails(sandbox, "trlrsk2")

    second = runner.run(singer_input(sandbox, ["trlrsk2"]))
    assert second.error is None
    assert list_emails(sandbox, "trlrsk2") == sandbox.generator.expected_emails("trlrsk2")
    assert sandbox.sendgrid.contact("added.by@hand.example.com") is not None
    assert second.list_entry(list_name(sandbox, "trlrsk2"))["removed"] == 1


def test_leaving_one_list_keeps_the_contact_on_the_other(sandbox, tmp_path):
    runner = TargetRunner(sandbox, tmp_path)
    assert runner.run(singer_input(sandbox, ["pwrusr1", "trlrsk2"])).error is None
    in_both = list_emails(sandbox, "pwrusr1") & list_emails(sandbox, "trlrsk2")
    assert in_both, "the seeded cohorts share members"
    leaving = next(
        m for m in sandbox.generator.members("trlrsk2") if m["expected_email"] in in_both
    )
    sandbox.generator.churn("trlrsk2", remove_indices=[leaving["index"]])
    assert leaving["expected_email"] not in sandbox.generator.expected_emails("trlrsk2")

    second = runner.run(singer_input(sandbox, ["pwrusr1", "trlrsk2"]))
    assert second.error is None
    assert leaving["expected_email"] not in list_emails(sandbox, "trlrsk2")
    assert leaving["expected_email"] in list_emails(sandbox, "pwrusr1")
    assert list_emails(sandbox, "trlrsk2") == sandbox.generator.expected_emails("trlrsk2")
    assert list_emails(sandbox, "pwrusr1") == sandbox.generator.expected_emails("pwrusr1")


def test_mixed_case_emails_already_in_the_list_are_kept_and_not_resent(sandbox, tmp_path):
    existing = sandbox.sendgrid.create_list(list_name(sandbox, "trlrsk2"))["id"]
    kept = _first_names(sandbox, "trlrsk2")
    last = {}
    for member in sandbox.generator.members("trlrsk2"):
        if member["expected_email"] is not None:
            last.setdefault(member["expected_email"], member["last_name"])
    hand_added = sorted(e for e in kept if len(last[e]) <= 50)[:20]
    for email in hand_added:
        sandbox.sendgrid.add_contact(
            email.upper(), first_name=kept[email], last_name=last[email], list_ids=[existing]
        )

    result = TargetRunner(sandbox, tmp_path).run(singer_input(sandbox, ["trlrsk2"]))
    assert result.error is None
    assert list_emails(sandbox, "trlrsk2") == sandbox.generator.expected_emails("trlrsk2")
    entry = result.list_entry(list_name(sandbox, "trlrsk2"))
    assert entry["removed"] == 0
    assert entry["unchanged"] == len(hand_added)

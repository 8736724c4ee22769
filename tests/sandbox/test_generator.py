"""The cohort generator: deterministic, messy as documented, honest about categories."""

from __future__ import annotations

import itertools
from collections import Counter

import pytest
from email_validator import EmailNotValidError, validate_email

from sandbox.generator import (
    CASE_DUPLICATE,
    INVALID_EMAIL,
    MISSING_EMAIL,
    SHARED,
    VALID,
    CohortGenerator,
)


def _is_valid(address: str) -> bool:
    try:
        validate_email(address.strip(), check_deliverability=False)
    except EmailNotValidError:
        return False
    return True


@pytest.fixture(scope="module")
def generator() -> CohortGenerator:
    return CohortGenerator(seed=42)


def test_same_seed_gives_same_members_and_another_seed_does_not():
    first = list(CohortGenerator(seed=7).members("pwrusr1"))
    again = list(CohortGenerator(seed=7).members("pwrusr1"))
    other = list(CohortGenerator(seed=8).members("pwrusr1"))
    assert first == again
    assert [m["email"] for m in first] != [m["email"] for m in other]


def test_seeded_cohorts_have_the_documented_sizes(generator):
    assert generator.size("pwrusr1") == sum(1 for _ in generator.members("pwrusr1")) == 1000
    assert generator.size("trlrsk2") == sum(1 for _ in generator.members("trlrsk2")) == 250
    assert list(generator.members("empty03")) == []
    assert generator.expected_emails("empty03") == set()
    assert generator.size("allusr9") == 2_500_000
    with pytest.raises(ValueError, match="never generated"):
        next(generator.members("allusr9"))


@pytest.mark.parametrize("cohort_id", ["pwrusr1", "trlrsk2"])
def test_categories_agree_with_a_real_email_validator(generator, cohort_id):
    for member in generator.members(cohort_id):
        category = member["category"]
        if category == MISSING_EMAIL:
            assert member["email"] == ""
            assert member["expected_email"] is None
        elif category == INVALID_EMAIL:
            assert not _is_valid(member["email"]), member["email"]
            assert member["expected_email"] is None
        else:
            assert _is_valid(member["email"]), member["email"]
            assert member["expected_email"] == member["email"].strip().lower()


def test_pwrusr1_mixes_the_messy_cases_in_realistic_proportions(generator):
    members = list(generator.members("pwrusr1"))
    counts = Counter(m["category"] for m in members)
    assert 15 <= counts[MISSING_EMAIL] <= 50  # ~3%
    assert 8 <= counts[INVALID_EMAIL] <= 35  # ~2%
    assert 8 <= counts[CASE_DUPLICATE] <= 35  # ~2%
    assert counts[VALID] > 900
    emails = [m["email"] for m in members if m["category"] == VALID]
    assert any(e != e.strip() for e in emails), "no whitespace-padded emails"
    assert any(e.strip() != e.strip().lower() for e in emails), "no mixed-case emails"
    assert any(m["user_id"] == "" for m in members)
    assert any(len(m["last_name"]) > 50 for m in members)
    names = {m["first_name"] for m in members} | {m["last_name"] for m in members}
    assert {"Zoë", "Łukasz", "山田", "Ñúñez"} <= names
    companies = {m["company"] for m in members}
    assert any("," in c for c in companies)
    assert any("\n" in c for c in companies)


def test_case_duplicates_repeat_another_members_address_in_another_spelling(generator):
    members = list(generator.members("pwrusr1"))
    valid_by_email = {m["expected_email"]: m for m in members if m["category"] == VALID}
    duplicates = [m for m in members if m["category"] == CASE_DUPLICATE]
    assert duplicates
    for dup in duplicates:
        original = valid_by_email[dup["expected_email"]]
        assert original["index"] < dup["index"]
        assert dup["email"] != original["email"]
        assert dup["amplitude_id"] != original["amplitude_id"]


def test_expected_emails_are_the_valid_addresses_trimmed_lowered_and_deduplicated(generator):
    members = list(generator.members("pwrusr1"))
    expected = generator.expected_emails("pwrusr1")
    valid_rows = [m for m in members if m["category"] in (VALID, CASE_DUPLICATE)]
    assert len(expected) == len({m["email"].strip().lower() for m in valid_rows})
    assert len(expected) < len(valid_rows)  # duplicates collapse
    assert all(e == e.strip().lower() for e in expected)


def test_some_people_are_members_of_two_cohorts(generator):
    trial = list(generator.members("trlrsk2"))
    shared = [m for m in trial if m["category"] == SHARED]
    assert shared
    power_ids = {m["amplitude_id"]: m for m in generator.members("pwrusr1")}
    for member in shared:
        assert power_ids[member["amplitude_id"]]["expected_email"] == member["expected_email"]
    overlap = generator.expected_emails("pwrusr1") & generator.expected_emails("trlrsk2")
    assert overlap == {m["expected_email"] for m in shared}


def test_amplitude_ids_are_unique_within_and_across_unrelated_cohorts(generator):
    power = [m["amplitude_id"] for m in generator.members("pwrusr1")]
    trial = [m["amplitude_id"] for m in generator.members("trlrsk2") if m["category"] != SHARED]
    assert len(set(power)) == len(power)
    assert not set(power) & set(trial)


def test_churn_removes_adds_and_renames_and_is_remembered():
    generator = CohortGenerator(seed=42)
    before = {m["amplitude_id"]: m for m in generator.members("pwrusr1")}
    changed = generator.churn("pwrusr1", remove=10, add=4, rename=3)
    after = {m["amplitude_id"]: m for m in generator.members("pwrusr1")}
    assert len(changed["removed"]) == 10
    assert len(changed["added"]) == 4
    assert len(changed["renamed"]) == 3
    assert generator.size("pwrusr1") == 994 == len(after)
    assert not {m["amplitude_id"] for m in changed["removed"]} & set(after)
    assert {m["amplitude_id"] for m in changed["added"]} <= set(after) - set(before)
    for renamed in changed["renamed"]:
        old, new = before[renamed["amplitude_id"]], after[renamed["amplitude_id"]]
        assert new["first_name"] != old["first_name"]
        assert new["email"] == old["email"]
    added_valid = {m["expected_email"] for m in changed["added"] if m["expected_email"]}
    assert added_valid <= generator.expected_emails("pwrusr1")


def test_churn_snapshot_keeps_answering_for_the_old_membership():
    generator = CohortGenerator(seed=42)
    snapshot = generator.churns["pwrusr1"]
    old_expected = generator.expected_emails("pwrusr1")
    generator.churn("pwrusr1", remove=30)
    assert generator.expected_emails("pwrusr1", churn=snapshot) == old_expected
    assert generator.expected_emails("pwrusr1") != old_expected


def test_large_cohort_is_lazy_and_respects_its_spec():
    generator = CohortGenerator(
        seed=1,
        extra_cohorts=[{"id": "bench2m", "name": "Bench", "size": 2_000_000, "invalid_rate": 0.0}],
    )
    assert generator.size("bench2m") == 2_000_000
    first = [m for _, m in zip(range(2000), generator.members("bench2m"), strict=False)]
    assert all(m["category"] != INVALID_EMAIL for m in first)
    last = generator.member("bench2m", 1_999_999)
    assert last["amplitude_id"] != first[0]["amplitude_id"]


def test_bad_extra_cohort_specs_are_refused():
    with pytest.raises(ValueError, match="alphanumeric"):
        CohortGenerator(extra_cohorts=[{"id": "not ok!", "name": "x", "size": 1}])
    with pytest.raises(ValueError, match="unknown cohort spec keys"):
        CohortGenerator(extra_cohorts=[{"id": "ok1", "name": "x", "size": 1, "sise": 2}])
    with pytest.raises(ValueError, match="duplicate"):
        CohortGenerator(extra_cohorts=[{"id": "pwrusr1", "name": "x", "size": 1}])


@pytest.mark.parametrize("cohort_id", ["pwrusr1", "trlrsk2"])
def test_id_only_rows_match_the_full_members(generator, cohort_id):
    full = [[m["amplitude_id"], m["user_id"]] for m in generator.members(cohort_id)]
    assert list(generator.rows(cohort_id, [])) == full
    with_email = list(generator.rows(cohort_id, ["email"]))
    assert [row[2] for row in with_email] == [m["email"] for m in generator.members(cohort_id)]


def test_each_rename_gives_a_new_first_name():
    generator = CohortGenerator(seed=42)
    names = [generator.member("pwrusr1", 5)["first_name"]]
    for _ in range(3):
        generator.churn("pwrusr1", rename_indices=[5])
        names.append(generator.member("pwrusr1", 5)["first_name"])
    assert all(a != b for a, b in itertools.pairwise(names))


def test_churn_by_index_and_its_refusals():
    generator = CohortGenerator(seed=42)
    generator.churn("pwrusr1", remove_indices=[0, 1])
    assert [m["index"] for m in generator.members("pwrusr1")][:2] == [2, 3]
    with pytest.raises(ValueError, match="no member 0"):
        generator.churn("pwrusr1", rename_indices=[0])  # already removed
    with pytest.raises(ValueError, match="no member 5000"):
        generator.churn("pwrusr1", remove_indices=[5000])
    with pytest.raises(ValueError, match="counts"):
        generator.churn("pwrusr1", remove=-1)
    recomputed = generator.churn("trlrsk2")
    assert recomputed == {"removed": [], "added": [], "renamed": []}
    assert generator.churns["trlrsk2"].recomputations == 1


def test_churn_on_a_large_cohort_stays_compact():
    generator = CohortGenerator(
        seed=3, extra_cohorts=[{"id": "big2m", "name": "Big", "size": 2_000_000}]
    )
    changed = generator.churn("big2m", remove=100, add=50, rename=10)
    churn = generator.churns["big2m"]
    assert len(churn.removed) == 100
    assert churn.added == 50
    assert len(churn.renamed) == 10
    assert generator.size("big2m") == 1_999_950
    assert all(m["index"] >= 2_000_000 for m in changed["added"])

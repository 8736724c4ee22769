"""Deterministic, lazily generated Amplitude cohorts whose members know their own category.

Every member is a pure function of (seed, cohort id, index), so a 2,000,000-member cohort is never
held in memory and tests can ask for the list a correct target must produce
(:meth:`CohortGenerator.expected_emails`) instead of re-implementing email validation.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator

from sandbox.cohort_specs import SEEDED_COHORTS, Churn, CohortSpec
from sandbox.person_data import (
    COMPANIES,
    COUNTRIES,
    DOMAINS,
    FIRST_NAME_POSITION,
    FIRST_NAMES,
    LAST_NAMES,
    LONG_LAST_NAME,
    PLANS,
    SIGNUP_DATES,
)

VALID = "valid"
SHARED = "shared"  # valid, and the same person (and email) is a member of another cohort
MISSING_EMAIL = "missing_email"
INVALID_EMAIL = "invalid_email"
CASE_DUPLICATE = "case_duplicate"  # another member's email, differing only by case / padding
CATEGORIES_WITH_EMAIL = frozenset({VALID, SHARED, CASE_DUPLICATE})

# Bare user property names in column order; `country` is an Amplitude built-in property.
PROPERTY_KEYS = (
    "email",
    "first_name",
    "last_name",
    "country",
    "plan",
    "signup_date",
    "lifetime_value",
    "company",
)
BUILTIN_PROPERTIES = frozenset({"country"})
AMPLITUDE_MAX_COHORT_SIZE = 2_000_000

_MASK = (1 << 64) - 1


def _mix(x: int) -> int:
    """Splitmix64 finaliser: a cheap, well-spread hash of an integer."""
    x = (x + 0x9E3779B97F4A7C15) & _MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return x ^ (x >> 31)


def _salt(*parts: object) -> int:
    digest = hashlib.sha256(":".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "big")


class CohortGenerator:
    """Generates the members of every cohort from a seed; also tracks each cohort's churn.

    The content is a pure function of (seed, spec, churn). The churn record lives here so that
    ``expected_emails`` answers for the cohort as it is now; pass ``churn=`` to ask about a
    snapshot instead.
    """

    def __init__(self, seed: int = 42, extra_cohorts: list[dict] | None = None) -> None:
        self.seed = seed
        specs = list(SEEDED_COHORTS) + [CohortSpec.from_dict(s) for s in extra_cohorts or []]
        self.specs: dict[str, CohortSpec] = {}
        for spec in specs:
            if spec.id in self.specs:
                msg = f"duplicate cohort id {spec.id!r}"
                raise ValueError(msg)
            self.specs[spec.id] = spec
        for spec in self.specs.values():
            source = self.specs.get(spec.shares_with) if spec.shares_with else spec
            if source is None or (spec.shares_with and not source.generate):
                msg = f"cohort {spec.id} shares members with unknown cohort {spec.shares_with!r}"
                raise ValueError(msg)
        self.churns: dict[str, Churn] = {cid: Churn() for cid in self.specs}
        self._salts = {cid: _salt(seed, cid) for cid in self.specs}
        # A distinct block of amplitude ids per cohort keeps ids (and emails) unique across cohorts.
        self._id_blocks = {cid: n + 1 for n, cid in enumerate(self.specs)}

    # ----- queries -------------------------------------------------------------------------

    def spec(self, cohort_id: str) -> CohortSpec:
        """Return the spec of a cohort (KeyError when unknown)."""
        return self.specs[cohort_id]

    def size(self, cohort_id: str, churn: Churn | None = None) -> int:
        """Number of members (rows of an export), after churn."""
        spec = self.specs[cohort_id]
        if not spec.generate:
            return spec.size
        churn = churn if churn is not None else self.churns[cohort_id]
        return spec.size + churn.added - len(churn.removed)

    def members(self, cohort_id: str, churn: Churn | None = None) -> Iterator[dict]:
        """Yield the cohort's members in export order, each with its ``category``.

        Each member dict has ``index``, ``amplitude_id``, ``user_id``, every key of
        ``PROPERTY_KEYS``, ``category`` and ``expected_email`` (the normalised address a correct
        target puts in the list, or None).
        """
        spec = self.specs[cohort_id]
        if not spec.generate:
            msg = f"cohort {cohort_id} is declared only and never generated"
            raise ValueError(msg)
        churn = churn if churn is not None else self.churns[cohort_id]
        removed = churn.removed
        for index in range(spec.size + churn.added):
            if index not in removed:
                yield self.member(cohort_id, index, churn)

    def expected_emails(self, cohort_id: str, churn: Churn | None = None) -> set[str]:
        """The list contents a correct target yields: valid, trimmed, lower-cased, de-duplicated."""
        return {
            m["expected_email"]
            for m in self.members(cohort_id, churn)
            if m["expected_email"] is not None
        }

    def member(self, cohort_id: str, index: int, churn: Churn | None = None) -> dict:
        """Return one member by index (ignoring whether churn removed it)."""
        spec = self.specs[cohort_id]
        churn = churn if churn is not None else self.churns[cohort_id]
        category, source = self._resolve(cohort_id, index)
        h = self._aux_hash(cohort_id, index)
        if category == SHARED and source is not None:
            person = self._person(*source)
            person["index"] = index
            person["email"] = self._dress(person["clean_email"], _mix(h ^ 7), spec.messy_rate)
        elif category == CASE_DUPLICATE and source is not None:
            original = self._person(*source)
            person = self._person(cohort_id, index)
            person.update(
                clean_email=original["clean_email"],
                email=self._variant(original["clean_email"], original["email"], h),
                first_name=original["first_name"],
                last_name=original["last_name"],
            )
        else:
            person = self._person(cohort_id, index)
            if category == MISSING_EMAIL:
                person["email"] = ""
            elif category == INVALID_EMAIL:
                person["email"] = _invalidate(person["clean_email"], _mix(h ^ 11))
        person["category"] = category
        generation = churn.renamed.get(index, 0)
        if generation:
            position = FIRST_NAME_POSITION[person["first_name"]]
            person["first_name"] = FIRST_NAMES[(position + generation) % len(FIRST_NAMES)][0]
        return self._finish(person)

    def rows(
        self, cohort_id: str, columns: list[str], churn: Churn | None = None
    ) -> Iterator[list]:
        """Export rows: amplitude_id, user_id, then the named property columns.

        Without columns only the ids are derived, which is several times faster.
        """
        if columns:
            for m in self.members(cohort_id, churn):
                yield [m["amplitude_id"], m["user_id"], *(m[c] for c in columns)]
            return
        spec = self.specs[cohort_id]
        churn = churn if churn is not None else self.churns[cohort_id]
        removed = churn.removed
        for index in range(spec.size + churn.added):
            if index not in removed:
                yield list(self.ids(cohort_id, index))

    def ids(self, cohort_id: str, index: int) -> tuple[int, str]:
        """A member's amplitude_id and user_id (the same as ``member`` gives, computed cheaply)."""
        category, source = self._resolve(cohort_id, index)
        if category == SHARED and source is not None:
            return self._ids(*source)[:2]
        return self._ids(cohort_id, index)[:2]

    # ----- churn ---------------------------------------------------------------------------

    def churn(
        self,
        cohort_id: str,
        *,
        remove: int = 0,
        add: int = 0,
        rename: int = 0,
        remove_indices: list[int] | None = None,
        rename_indices: list[int] | None = None,
    ) -> dict:
        """Change a cohort's membership; return what changed.

        Members to remove / rename are picked deterministically among present members unless
        given by index. With nothing to change, the cohort is only recomputed.

        Returns:
            ``{"removed": [member...], "added": [member...], "renamed": [member...]}`` where
            renamed members carry their new first_name.
        """
        spec = self.specs[cohort_id]
        if not spec.generate:
            msg = f"cohort {cohort_id} cannot churn: it is never generated"
            raise ValueError(msg)
        if min(remove, add, rename) < 0:
            msg = "remove, add and rename are counts (>= 0)"
            raise ValueError(msg)
        old = self.churns[cohort_id]
        total = spec.size + old.added
        for index in [*(remove_indices or []), *(rename_indices or [])]:
            if not 0 <= index < total or index in old.removed:
                msg = f"no member {index} in cohort {cohort_id}"
                raise ValueError(msg)
        rng = random.Random(_salt(self.seed, cohort_id, "churn", old.recomputations))
        to_remove = set(remove_indices or [])
        to_remove |= _sample_present(rng, total, old.removed | to_remove, remove)
        to_rename = set(rename_indices or []) - to_remove
        to_rename |= _sample_present(rng, total, old.removed | to_remove | to_rename, rename)
        renamed = dict(old.renamed)
        for i in to_rename:
            renamed[i] = renamed.get(i, 0) + 1
        new = Churn(
            removed=old.removed | frozenset(to_remove),
            added=old.added + add,
            renamed=renamed,
            recomputations=old.recomputations + 1,
        )
        self.churns[cohort_id] = new
        first_new = spec.size + old.added
        return {
            "removed": [self.member(cohort_id, i, old) for i in sorted(to_remove)],
            "added": [self.member(cohort_id, i, new) for i in range(first_new, first_new + add)],
            "renamed": [self.member(cohort_id, i, new) for i in sorted(to_rename)],
        }

    def reset(self) -> None:
        """Forget all churn."""
        self.churns = {cid: Churn() for cid in self.specs}

    # ----- internals -----------------------------------------------------------------------

    def _category(self, cohort_id: str, index: int) -> str:
        spec = self.specs[cohort_id]
        roll = _mix(self._salts[cohort_id] + index) % 10_000 / 10_000
        for rate, category in (
            (spec.missing_rate, MISSING_EMAIL),
            (spec.invalid_rate, INVALID_EMAIL),
            (spec.duplicate_rate, CASE_DUPLICATE),
            (spec.share_rate if spec.shares_with else 0.0, SHARED),
        ):
            if roll < rate:
                return category
            roll -= rate
        return VALID

    def _aux_hash(self, cohort_id: str, index: int) -> int:
        return _mix(self._salts[cohort_id] ^ (index * 0x2545F4914F6CDD1D & _MASK))

    def _resolve(self, cohort_id: str, index: int) -> tuple[str, tuple[str, int] | None]:
        """A member's category and, for shared / duplicate members, whose address it reuses."""
        category = self._category(cohort_id, index)
        if category == SHARED:
            source_id = self.specs[cohort_id].shares_with or ""
            source_index = self._pick_valid(
                source_id, self._aux_hash(cohort_id, index), self.specs[source_id].size
            )
            return (VALID, None) if source_index is None else (SHARED, (source_id, source_index))
        if category == CASE_DUPLICATE:
            original = self._pick_valid(cohort_id, self._aux_hash(cohort_id, index), index)
            return (VALID, None) if original is None else (CASE_DUPLICATE, (cohort_id, original))
        return category, None

    def _pick_valid(self, cohort_id: str, h: int, below: int) -> int | None:
        """Pick a deterministic index < below whose category is VALID (None if none nearby)."""
        if below <= 0:
            return None
        start = h % below
        for step in range(min(below, 50)):
            candidate = (start - step) % below
            if self._category(cohort_id, candidate) == VALID:
                return candidate
        return None

    def _ids(self, cohort_id: str, index: int) -> tuple[int, str, int, int]:
        """Amplitude id, user id and the two hashes the rest of the person derives from."""
        h = _mix(self._salts[cohort_id] ^ (index << 1 | 1))
        g = _mix(h)
        amplitude_id = 100_000_000_000 + self._id_blocks[cohort_id] * 10_000_000 + index
        empty_user_id = ((g >> 16) % 10_000) / 10_000 < self.specs[cohort_id].empty_user_id_rate
        user_id = "" if empty_user_id else f"usr_{amplitude_id:x}{index % 97:02d}"
        return amplitude_id, user_id, h, g

    def _person(self, cohort_id: str, index: int) -> dict:
        """The underlying person at an index: names, clean email, properties (before churn)."""
        spec = self.specs[cohort_id]
        amplitude_id, user_id, h, g = self._ids(cohort_id, index)
        first_index = h % len(FIRST_NAMES)
        first, first_ascii = FIRST_NAMES[first_index]
        last, last_ascii = LAST_NAMES[(h >> 8) % len(LAST_NAMES)]
        if (g % 10_000) / 10_000 < spec.long_name_rate:
            last, last_ascii = LONG_LAST_NAME
        domain = DOMAINS[(h >> 16) % len(DOMAINS)]
        clean = f"{first_ascii}.{last_ascii}.{amplitude_id:x}@{domain}"
        return {
            "index": index,
            "amplitude_id": amplitude_id,
            "user_id": user_id,
            "clean_email": clean,
            "email": self._dress(clean, g, spec.messy_rate),
            "first_name": first,
            "last_name": last,
            "country": COUNTRIES[(h >> 32) % len(COUNTRIES)],
            "plan": PLANS[(h >> 40) % len(PLANS)],
            "signup_date": SIGNUP_DATES[(h >> 24) % len(SIGNUP_DATES)],
            "lifetime_value": f"{((g >> 24) % 500_000) / 100:.2f}",
            "company": COMPANIES[(g >> 40) % len(COMPANIES)],
        }

    @staticmethod
    def _dress(clean: str, h: int, messy_rate: float) -> str:
        """Write a valid email as users type it: sometimes mixed case and/or padded."""
        if (h % 10_000) / 10_000 >= messy_rate:
            return clean
        style = (h >> 20) % 4
        if style == 0:
            return clean.title()
        if style == 1:
            return f"  {clean} "
        if style == 2:
            local, _, domain = clean.partition("@")
            return f"{local.capitalize()}@{domain.upper()}"
        return f"\t{clean.upper()}"

    @staticmethod
    def _variant(clean: str, original_written: str, h: int) -> str:
        """A different spelling of the same address (case / padding), never identical."""
        candidates = [
            c
            for c in (clean.upper(), f" {clean}", clean.title(), f"{clean}  ", f" {clean.upper()}")
            if c != original_written
        ]
        return candidates[h % len(candidates)]

    @staticmethod
    def _finish(person: dict) -> dict:
        category = person["category"]
        person["expected_email"] = (
            person["clean_email"].strip().lower() if category in CATEGORIES_WITH_EMAIL else None
        )
        del person["clean_email"]
        return person


def _sample_present(rng: random.Random, total: int, excluded: set | frozenset, k: int) -> set[int]:
    """Pick k indices in range(total) outside ``excluded`` without listing a large cohort."""
    available = total - len(excluded)
    k = min(k, available)
    if k <= 0:
        return set()
    if k * 2 > available:
        return set(rng.sample([i for i in range(total) if i not in excluded], k))
    chosen: set[int] = set()
    while len(chosen) < k:
        index = rng.randrange(total)
        if index not in excluded:
            chosen.add(index)
    return chosen


def _invalidate(clean: str, h: int) -> str:
    """Break an address in one of the ways people do."""
    local, _, domain = clean.partition("@")
    broken = (
        f"{local}@",
        f"{local}{domain}",
        f"{local}@@{domain}",
        f"{local.replace('.', ' ', 1)}@{domain}",
        f"{local}@{domain.split('.')[0]}",
        f"{local}@{domain.replace('.', '..', 1)}",
        f".{local}@{domain}",
        f"{local}@{domain},",
    )
    return broken[h % len(broken)]

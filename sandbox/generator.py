"""Deterministic, lazily generated Amplitude cohorts whose members know their own category.

Every member is a pure function of (seed, cohort id, index), so a 2,000,000-member cohort is never
held in memory and tests can ask for the list a correct target must produce
(:meth:`CohortGenerator.expected_emails`) instead of re-implementing email validation.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import random
from collections.abc import Iterator
from dataclasses import dataclass, field

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
_BASE_TIME_MS = 1_763_000_000_000  # mid-November 2025: cohorts were created before "now"
# Sign-up dates over the 900 days before the base time (precomputed: members are generated hot).
_SIGNUP_DATES = tuple(
    (dt.datetime.fromtimestamp(_BASE_TIME_MS // 1000, tz=dt.timezone.utc) - dt.timedelta(days=d))
    .date()
    .isoformat()
    for d in range(900)
)

# (display name, ascii form used in email addresses)
_FIRST_NAMES = (
    ("Anna", "anna"), ("Ben", "ben"), ("Chloé", "chloe"), ("David", "david"), ("Emma", "emma"),
    ("Felix", "felix"), ("Grace", "grace"), ("Hugo", "hugo"), ("Isabel", "isabel"),
    ("Jonas", "jonas"), ("Karin", "karin"), ("Liam", "liam"), ("Maya", "maya"), ("Noah", "noah"),
    ("Olivia", "olivia"), ("Pedro", "pedro"), ("Quinn", "quinn"), ("Rosa", "rosa"),
    ("Sam", "sam"), ("Tara", "tara"), ("Zoë", "zoe"), ("Łukasz", "lukasz"), ("太郎", "taro"),
    ("José", "jose"), ("Søren", "soren"), ("François", "francois"), ("Ana María", "anamaria"),
)
_FIRST_NAME_POSITION = {name: n for n, (name, _) in enumerate(_FIRST_NAMES)}
_LAST_NAMES = (
    ("Smith", "smith"), ("Müller", "mueller"), ("Garcia", "garcia"), ("Rossi", "rossi"),
    ("Novak", "novak"), ("Dubois", "dubois"), ("Jansen", "jansen"), ("Kowalski", "kowalski"),
    ("Nielsen", "nielsen"), ("O'Brien", "obrien"), ("Ñúñez", "nunez"), ("山田", "yamada"),
    ("Papadopoulos", "papadopoulos"), ("van der Berg", "vanderberg"), ("Lindqvist", "lindqvist"),
    ("Brown", "brown"), ("Schmidt", "schmidt"), ("Fernández", "fernandez"), ("Ivanova", "ivanova"),
)
_LONG_LAST_NAME = (
    "Wolfeschlegelsteinhausenbergerdorff-Montgomery-Fitzwilliam-Smythe",
    "wolfeschlegel",
)
_DOMAINS = (
    "gmail.com", "outlook.com", "yahoo.co.uk", "web.de", "acme-corp.io", "globex.net",
    "initech.com", "orange.fr", "proton.me", "umbrella-labs.eu",
)
_COUNTRIES = (
    "United States", "Germany", "France", "United Kingdom", "Spain", "Poland", "Japan",
    "Netherlands", "Denmark", "Brazil",
)
_PLANS = ("free", "trial", "pro", "business", "enterprise")
_COMPANIES = (
    "Acme, Inc.", "Globex", "Initech", "Umbrella Labs", "Stark Industries",
    'Vandelay "Imports"', "Line one\nLine two Ltd", "", "Hooli",
)


def _mix(x: int) -> int:
    """Splitmix64 finaliser: a cheap, well-spread hash of an integer."""
    x = (x + 0x9E3779B97F4A7C15) & _MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return x ^ (x >> 31)


def _salt(*parts: object) -> int:
    digest = hashlib.sha256(":".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "big")


@dataclass(frozen=True)
class CohortSpec:
    """How one cohort is generated.

    Attributes:
        id: Short alphanumeric cohort id.
        name: Cohort name.
        size: Members before churn (the declared size when ``generate`` is false).
        description: Cohort description.
        missing_rate: Share of members without an email.
        invalid_rate: Share of members with a syntactically invalid email.
        duplicate_rate: Share of members repeating another member's email up to case/padding.
        share_rate: Share of members taken from ``shares_with`` (same person, same email).
        shares_with: Id of the cohort shared members come from.
        messy_rate: Share of valid emails written with mixed case and/or padding.
        empty_user_id_rate: Share of members whose user_id is empty.
        long_name_rate: Share of members whose last name is longer than 50 characters.
        header_style: ``plain`` (``email``) or ``gp`` (``gp:email`` for custom properties).
        tab_quirk: Write the ``gp:plan`` header with a leading tab, as once seen.
        bom: Start the CSV with a UTF-8 byte-order mark.
        timestamps: ``ms`` (epoch milliseconds) or ``s`` (epoch seconds) in the cohort list.
        generate: False for a cohort that exists only in the list (e.g. over the size limit).
        created_offset_days: How long before the base time the cohort was created.
    """

    id: str
    name: str
    size: int
    description: str = ""
    missing_rate: float = 0.03
    invalid_rate: float = 0.02
    duplicate_rate: float = 0.02
    share_rate: float = 0.0
    shares_with: str | None = None
    messy_rate: float = 0.15
    empty_user_id_rate: float = 0.08
    long_name_rate: float = 0.01
    header_style: str = "plain"
    tab_quirk: bool = False
    bom: bool = False
    timestamps: str = "ms"
    generate: bool = True
    created_offset_days: int = 30

    @classmethod
    def from_dict(cls, spec: dict) -> CohortSpec:
        """Build a spec from a plain dict such as ``SandboxConfig.extra_cohorts`` items."""
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(spec) - known
        if unknown:
            msg = f"unknown cohort spec keys: {sorted(unknown)}; known: {sorted(known)}"
            raise ValueError(msg)
        if not str(spec.get("id", "")).isalnum():
            msg = f"cohort id must be a short alphanumeric string, got {spec.get('id')!r}"
            raise ValueError(msg)
        cohort = cls(**spec)
        if cohort.header_style not in ("plain", "gp") or cohort.timestamps not in ("ms", "s"):
            msg = "header_style is 'plain' or 'gp'; timestamps is 'ms' or 's'"
            raise ValueError(msg)
        if cohort.size < 0:
            msg = "size must be >= 0"
            raise ValueError(msg)
        return cohort


SEEDED_COHORTS = (
    CohortSpec(
        id="pwrusr1",
        name="Power users",
        size=1000,
        description="Users with 20+ sessions in the last 30 days",
        created_offset_days=120,
    ),
    CohortSpec(
        id="trlrsk2",
        name="Trial users at risk of churning — EU",
        size=250,
        description="Trial accounts in the EU with no activity for 7 days",
        share_rate=0.12,
        shares_with="pwrusr1",
        header_style="gp",
        tab_quirk=True,
        bom=True,
        timestamps="s",
        created_offset_days=45,
    ),
    CohortSpec(
        id="empty03",
        name="Dormant accounts",
        size=0,
        description="No login for 365 days",
        created_offset_days=300,
    ),
    CohortSpec(
        id="allusr9",
        name="All users",
        size=2_500_000,
        description="Everyone who ever signed up",
        generate=False,
        created_offset_days=700,
    ),
)


@dataclass(frozen=True)
class Churn:
    """Compact record of how a cohort changed since generation (so large cohorts stay lazy).

    Attributes:
        removed: Indices of members who left.
        added: How many new members joined (indices ``size .. size + added - 1``).
        renamed: Index -> rename generation (a new first_name per generation).
        recomputations: How many times the cohort was (re)computed since generation.
    """

    removed: frozenset[int] = frozenset()
    added: int = 0
    renamed: dict[int, int] = field(default_factory=dict)
    recomputations: int = 0


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
            position = _FIRST_NAME_POSITION[person["first_name"]]
            person["first_name"] = _FIRST_NAMES[(position + generation) % len(_FIRST_NAMES)][0]
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
        first_index = h % len(_FIRST_NAMES)
        first, first_ascii = _FIRST_NAMES[first_index]
        last, last_ascii = _LAST_NAMES[(h >> 8) % len(_LAST_NAMES)]
        if (g % 10_000) / 10_000 < spec.long_name_rate:
            last, last_ascii = _LONG_LAST_NAME
        domain = _DOMAINS[(h >> 16) % len(_DOMAINS)]
        clean = f"{first_ascii}.{last_ascii}.{amplitude_id:x}@{domain}"
        return {
            "index": index,
            "amplitude_id": amplitude_id,
            "user_id": user_id,
            "clean_email": clean,
            "email": self._dress(clean, g, spec.messy_rate),
            "first_name": first,
            "last_name": last,
            "country": _COUNTRIES[(h >> 32) % len(_COUNTRIES)],
            "plan": _PLANS[(h >> 40) % len(_PLANS)],
            "signup_date": _SIGNUP_DATES[(h >> 24) % len(_SIGNUP_DATES)],
            "lifetime_value": f"{((g >> 24) % 500_000) / 100:.2f}",
            "company": _COMPANIES[(g >> 40) % len(_COMPANIES)],
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


def base_time_ms(spec: CohortSpec) -> int:
    """The cohort's creation time (epoch ms), deterministic from its spec."""
    return _BASE_TIME_MS - spec.created_offset_days * 86_400_000

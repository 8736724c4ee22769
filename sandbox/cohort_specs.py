"""What the sandbox's cohorts are: their specs (the seeded ones and extra ones) and churn record.

``CohortGenerator`` (``generator.py``) turns a spec and its churn into members.
"""

from __future__ import annotations

from dataclasses import dataclass, field

BASE_TIME_MS = 1_763_000_000_000  # mid-November 2025: cohorts were created before "now"


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


def base_time_ms(spec: CohortSpec) -> int:
    """The cohort's creation time (epoch ms), deterministic from its spec."""
    return BASE_TIME_MS - spec.created_offset_days * 86_400_000

"""The README's Reliability table, rendered from the matrix cases (scripts/update_readme.py).

Every row is a group of test cases whose expected outcome the suite asserts, so the table
cannot claim what the tests do not check.
"""

from __future__ import annotations

from .cases import DOWNLOADS, ENDPOINTS, JOBS, PERSISTENT, TRANSIENT, Case

SIGNAL_PHASES = ("download", "upserts", "removals")
FAULTY = {
    "ridden": "ridden out: exit 0, list = cohort",
    "failed": "stops, exit ≠ 0",
    "held": "exit 0, everyone upserted, removals held back and reported",
}
YES = "yes"


def _row(group: str, fault: str, cases: list[Case]) -> str:
    outcomes = sorted({c.expect for c in cases})
    faulty = "; ".join(FAULTY[o] for o in outcomes)
    return f"| {group} | {fault} | {len(cases)} | {faulty} | {YES} | {YES} | {YES} | {YES} |"


def render() -> str:
    """The markdown table (header included)."""
    lines = [
        "| Endpoint group | Fault | Cases | Faulty run | Nobody in the cohort removed "
        "| Counts add up | No email or secret logged | Healthy rerun converges |",
        "|---|---|---:|---|---|---|---|---|",
    ]
    groups = len({c.endpoint for c in TRANSIENT})
    lines.append(
        _row(
            f"each of the {groups} groups below",
            "429 with and without a reset header, 500, 502, 503, timeout, dropped "
            "connection (once each)",
            TRANSIENT,
        )
    )
    for case in PERSISTENT:
        lines.append(_row(case.label, case.fault, [case]))
    for endpoint in dict.fromkeys(c.endpoint for c in DOWNLOADS):
        cases = [c for c in DOWNLOADS if c.endpoint == endpoint]
        lines.append(
            _row(
                ENDPOINTS[endpoint][0],
                ", ".join(c.fault for c in cases) + " (every attempt)",
                cases,
            )
        )
    for case in JOBS:
        lines.append(_row(case.label, case.fault, [case]))
    lines.append(
        "| Amplitude cohort file, list fed by two cohorts | one cohort's file cut (every "
        f"attempt) | 1 | {FAULTY['failed']}, the other cohort's joiners added | {YES} | "
        f"{YES} | {YES} | {YES} |"
    )
    for phase in SIGNAL_PHASES:
        lines.append(
            f"| `tap \\| target` processes | SIGKILL during the {phase} | 1 | killed "
            f"| {YES} | {YES} | {YES} | {YES} |"
        )
        lines.append(
            f"| `tap \\| target` processes | SIGTERM during the {phase} | 1 | "
            "stops, exit ≠ 0 (143), no STATE past SendGrid "
            f"| {YES} | {YES} | {YES} | {YES} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    print(render())

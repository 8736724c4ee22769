"""Pure: did a cohort arrive whole in this run (the only case in which members are removed)?"""

from __future__ import annotations

from collections.abc import Mapping


def cohort_completeness(
    cohort_id: str, sync: Mapping | None, records_received: int
) -> tuple[bool, str]:
    """Judge a cohort by its ``cohort_syncs`` record and the member records that arrived.

    Complete means: a ``cohort_syncs`` record with status ``complete`` whose ``member_count``
    equals the ``cohort_members`` records received for the cohort in this run (records, not
    valid emails).

    Args:
        cohort_id: The cohort.
        sync: Its last ``cohort_syncs`` record, or None when none arrived.
        records_received: Member records received for it in this run.

    Returns:
        ``(complete, reason)``; the reason is a short sentence for the report.
    """
    if sync is None:
        return False, f"no cohort_syncs record for cohort {cohort_id}"
    status = sync.get("status")
    if status != "complete":
        why = f": {sync['message']}" if sync.get("message") else ""
        return False, f"cohort {cohort_id} is {status}{why}"
    if sync.get("member_count") != records_received:
        return False, (
            f"cohort {cohort_id}: the tap reported {sync.get('member_count')} members, "
            f"{records_received} records arrived"
        )
    return True, f"cohort {cohort_id} complete ({records_received} members)"

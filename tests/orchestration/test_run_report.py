"""What a run shows: figures from the target's report and the tap's log; the failure sentence."""

from __future__ import annotations

from orchestrator.run_report import downloads_by_cohort, figures

PLUGINS = {"extractor": "tap-amplitude-cohort--daily", "loader": "target-sendgrid-contacts"}
REPORT = {
    "lists": [
        {
            "list_name": "[Amplitude] Power users: pwrusr1",
            "cohort_id": "pwrusr1",
            "received": 985,
            "upserted": 13,
            "created": 10,
            "updated": 3,
            "unchanged": 905,
            "rejected": 67,
            "rejected_by_reason": {"invalid_email": 23, "missing_email": 32, "duplicate_email": 12},
            "removed": 24,
            "removal": "done",
            "removal_reason": None,
        },
        {
            "list_name": "[Amplitude] Dormant accounts: empty03",
            "cohort_id": "empty03",
            "received": 0,
            "upserted": 0,
            "created": 0,
            "updated": 0,
            "unchanged": 0,
            "rejected": 0,
            "rejected_by_reason": {},
            "removed": 0,
        },
    ],
    "totals": {
        "received": 985,
        "upserted": 13,
        "created": 10,
        "updated": 3,
        "unchanged": 905,
        "rejected": 67,
        "removed": 24,
        "rejected_by_reason": {"invalid_email": 23},
        "adds_up": True,
    },
}
LOG = [
    "2026-12-01T08:37:30.07Z [info     ] tap-amplitude-cohort--daily Cohort pwrusr1 (Power "
    "users (EU)): export requested (download 1 of this run)",
    "2026-12-01T08:37:30.33Z [info     ] tap-amplitude-cohort--daily Cohort empty03 (Dormant "
    "accounts) unchanged since the last sync: download skipped",
]


def test_per_list_figures_and_downloads_come_from_the_report_and_the_tap_log():
    result = figures(REPORT, LOG, 0, PLUGINS)
    assert result.error is None
    power, dormant = result.lists
    assert power.counts["received"] == 985
    assert power.counts["removed"] == 24
    assert power.rejected_by_reason["missing_email"] == 32
    assert power.downloads == 1
    assert dormant.downloads == 0
    assert result.downloads == 1
    assert result.totals["unchanged"] == 905
    assert result.adds_up is True
    assert downloads_by_cohort(LOG) == {"pwrusr1": 1}


def test_a_failed_run_shows_the_targets_sentence_from_its_report():
    report = {**REPORT, "error": "SendGrid refused 3 contacts in import jobs (allowed: 0)"}
    assert figures(report, LOG, 1, PLUGINS).error == (
        "SendGrid refused 3 contacts in import jobs (allowed: 0)"
    )


def test_a_target_that_stopped_before_its_report_is_quoted_from_the_log():
    log = [
        *LOG,
        "2026-12-01T08:45:47.86Z [info     ] target-sendgrid-contacts The SendGrid API key has "
        "no Marketing permission (403 access forbidden): use Full Access, or Restricted Access "
        "with Marketing permission.",
        "2026-12-01T08:45:48.10Z [info     ] target-sendgrid-contacts Config validation failed",
        "2026-12-01T08:45:48.20Z [error    ] meltano      Loader failed",
        "2026-12-01T08:45:48.21Z [error    ] meltano      Block run completed",
    ]
    result = figures(None, log, 1, PLUGINS)
    assert result.error.startswith("The SendGrid API key has no Marketing permission")
    assert result.lists == []


def test_a_tap_failure_names_the_failed_cohorts():
    log = [
        *LOG,
        "2026-12-01T08:45:47Z [info     ] tap-amplitude-cohort--daily 1 cohort(s) "
        "failed: pwrusr1 (Power users): the export file was cut short",
        "2026-12-01T08:45:48Z [error    ] meltano      Extractor failed",
    ]
    assert figures(None, log, 1, PLUGINS).error == (
        "1 cohort(s) failed: pwrusr1 (Power users): the export file was cut short"
    )


def test_a_successful_run_has_no_failure_sentence_even_without_a_report():
    assert figures(None, [], 0, PLUGINS).error is None

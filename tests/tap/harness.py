"""Run the tap in-process against a sandbox and read back what it wrote."""

from __future__ import annotations

import contextlib
import copy
import io
import json
from collections import Counter
from dataclasses import dataclass, field

from tap_amplitude_cohort.tap import TapAmplitudeCohort

from sandbox import Sandbox

SEEDED_IDS = ["pwrusr1", "trlrsk2", "empty03"]


def tap_config(sandbox: Sandbox, **overrides: object) -> dict:
    """A config pointing the tap at the sandbox, with fast polling."""
    config: dict = {
        "api_url": sandbox.amplitude_url,
        "api_key": sandbox.amplitude_api_key,
        "secret_key": sandbox.amplitude_secret_key,
        "cohort_ids": list(SEEDED_IDS),
        "poll_interval_seconds": 0.02,
    }
    config.update(overrides)
    return {k: v for k, v in config.items() if v is not None}


@dataclass
class TapRun:
    """The Singer messages of one run, and the tap's verdict."""

    messages: list[dict]
    exit_code: int
    tap: TapAmplitudeCohort
    counts: Counter = field(default_factory=Counter)

    def records(self, stream: str) -> list[dict]:
        return [
            m["record"] for m in self.messages if m["type"] == "RECORD" and m["stream"] == stream
        ]

    def members(self, cohort_id: str) -> list[dict]:
        return [r for r in self.records("cohort_members") if r["cohort_id"] == cohort_id]

    def syncs(self) -> dict[str, dict]:
        return {r["cohort_id"]: r for r in self.records("cohort_syncs")}

    @property
    def final_state(self) -> dict:
        states = [m["value"] for m in self.messages if m["type"] == "STATE"]
        return states[-1] if states else {}

    def bookmarks(self) -> dict[str, str | None]:
        """cohort_id -> the last_computed bookmark in the final state."""
        partitions = (
            self.final_state.get("bookmarks", {}).get("cohort_members", {}).get("partitions", [])
        )
        return {p["context"]["cohort_id"]: p.get("last_computed") for p in partitions}


def run_tap(config: dict, state: dict | None = None, catalog: dict | None = None) -> TapRun:
    """Run a full sync in-process (as the CLI does) and parse its stdout."""
    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    with contextlib.redirect_stdout(out):
        # A copy: the SDK updates the state it is given, which would rewrite an earlier run's.
        tap = TapAmplitudeCohort(config=config, state=copy.deepcopy(state), catalog=catalog)
        tap.sync_all()
        exit_code = tap.finish_run()
        out.flush()
    out.seek(0)
    messages = [json.loads(line) for line in out.read().splitlines() if line.strip()]
    return TapRun(messages, exit_code, tap)


def catalog_without(config: dict, stream_name: str) -> dict:
    """The tap's catalog with every stream selected except ``stream_name``."""
    catalog = TapAmplitudeCohort(config=config).catalog_dict
    for stream in catalog["streams"]:
        for entry in stream["metadata"]:
            if entry["breadcrumb"] == []:
                entry["metadata"]["selected"] = stream["tap_stream_id"] != stream_name
    return catalog


def export_requests(sandbox: Sandbox) -> list[dict]:
    """Logged request/{id} calls (each one uses a cohort download)."""
    return [
        r
        for r in sandbox.requests
        if r["service"] == "amplitude"
        and r["path"].startswith("/api/5/cohorts/request/")
        and not r["path"].endswith("/file")
    ]

"""BATCH mode: cohort_members as SDK batch files written straight from the export."""

from __future__ import annotations

import gzip
import io
import json
import logging
import os
import stat
import tracemalloc
from collections import defaultdict
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import unquote, urlsplit

import pytest
from singer_sdk import Target
from singer_sdk.sinks import BatchSink
from tap_amplitude_cohort.batch_files import BatchFolderError

from tests.tap.harness import SEEDED_IDS, TapRun, export_requests, run_tap, tap_config

pytestmark = pytest.mark.integration


def batch_config(root: Path, **overrides: Any) -> dict:
    config = {
        "encoding": {"format": "jsonl", "compression": "gzip"},
        "storage": {"root": f"file://{root}", "prefix": "members-"},
        "batch_size": 100_000,
    }
    return {**config, **overrides}


def batch_messages(run: TapRun) -> list[dict]:
    return [m for m in run.messages if m["type"] == "BATCH"]


def file_path(url: str) -> Path:
    parts = urlsplit(url)
    assert parts.scheme == "file"
    return Path(unquote(parts.path))


def read_file(url: str) -> list[dict]:
    with gzip.open(file_path(url), "rt", encoding="utf-8") as lines:
        return [json.loads(line) for line in lines]


def batched_members(run: TapRun) -> list[dict]:
    return [r for m in batch_messages(run) for url in m["manifest"] for r in read_file(url)]


def test_batch_files_carry_exactly_the_members_record_mode_sends(sandbox, tmp_path):
    records = run_tap(tap_config(sandbox))
    batched = run_tap(tap_config(sandbox, batch_config=batch_config(tmp_path / "b")))

    assert batched.exit_code == records.exit_code == 0
    assert batched.records("cohort_members") == []  # no member as a RECORD message
    assert batched_members(batched) == records.records("cohort_members")
    strip = [{k: v for k, v in s.items() if k != "synced_at"} for s in records.syncs().values()]
    assert [
        {k: v for k, v in s.items() if k != "synced_at"} for s in batched.syncs().values()
    ] == strip
    assert batched.bookmarks() == records.bookmarks()
    assert {m["stream"] for m in batch_messages(batched)} == {"cohort_members"}
    assert batched.records("cohorts") == records.records("cohorts")  # still RECORD messages


def test_batch_messages_follow_the_sdk_format_and_precede_the_signal_and_bookmarks(
    sandbox, tmp_path
):
    run = run_tap(tap_config(sandbox, batch_config=batch_config(tmp_path / "b")))
    batches = batch_messages(run)
    assert batches
    for message in batches:
        assert set(message) == {"type", "stream", "encoding", "manifest"}
        assert message["encoding"] == {"format": "jsonl", "compression": "gzip"}
        assert len(message["manifest"]) == 1
        assert file_path(message["manifest"][0]).name.startswith(
            "members-tap-amplitude-cohort--cohort_members-"
        )

    kinds = [(m["type"], m.get("stream")) for m in run.messages]
    last_batch = max(i for i, k in enumerate(kinds) if k[0] == "BATCH")
    first_signal = kinds.index(("RECORD", "cohort_syncs"))
    assert last_batch < first_signal
    # No STATE carries a bookmark before the last cohort_syncs record.
    last_signal = max(i for i, k in enumerate(kinds) if k == ("RECORD", "cohort_syncs"))
    for message in run.messages[:last_signal]:
        if message["type"] == "STATE":
            partitions = message["value"]["bookmarks"].get("cohort_members", {})
            assert all("last_computed" not in p for p in partitions.get("partitions", []))
    assert all(run.bookmarks()[c] for c in SEEDED_IDS)


class _Received(BatchSink):
    records: ClassVar[dict[str, list[dict]]] = defaultdict(list)

    def process_batch(self, context: dict) -> None:
        self.records[self.stream_name].extend(context["records"])


class _StockTarget(Target):
    """An SDK target with nothing of ours in it: reads BATCH the SDK's way."""

    name = "target-stock"
    config_jsonschema: ClassVar[dict] = {"type": "object", "properties": {}}
    default_sink_class = _Received


def test_a_stock_sdk_target_reads_the_batches(sandbox, tmp_path):
    run = run_tap(tap_config(sandbox, batch_config=batch_config(tmp_path / "b")))
    _Received.records.clear()
    lines = "".join(json.dumps(m) + "\n" for m in run.messages)
    _StockTarget(config={}).listen(file_input=io.StringIO(lines))

    got = _Received.records["cohort_members"]
    assert len(got) == sum(s["member_count"] for s in run.syncs().values())
    for cohort_id in SEEDED_IDS:
        expected = {int(m["amplitude_id"]) for m in sandbox.amplitude.members(cohort_id)}
        assert {r["amplitude_id"] for r in got if r["cohort_id"] == cohort_id} == expected
    assert len(_Received.records["cohort_syncs"]) == len(SEEDED_IDS)


def test_folder_is_created_private_and_files_are_owner_only(sandbox, tmp_path):
    root = tmp_path / "not" / "there" / "yet"
    run = run_tap(tap_config(sandbox, batch_config=batch_config(root)))
    assert stat.S_IMODE(root.stat().st_mode) == 0o700
    files = sorted(root.iterdir())
    assert files == sorted(file_path(m["manifest"][0]) for m in batch_messages(run))
    assert {stat.S_IMODE(f.stat().st_mode) for f in files} == {0o600}


def test_a_folder_others_can_read_is_refused_before_any_download(sandbox, tmp_path):
    root = tmp_path / "shared"
    root.mkdir()
    os.chmod(root, 0o755)
    with pytest.raises(BatchFolderError, match="chmod 700"):
        run_tap(tap_config(sandbox, batch_config=batch_config(root)))
    assert export_requests(sandbox) == []
    assert list(root.iterdir()) == []


def test_files_hold_at_most_batch_size_members_of_one_cohort(sandbox, tmp_path):
    run = run_tap(tap_config(sandbox, batch_config=batch_config(tmp_path / "b", batch_size=300)))
    per_cohort: dict[str, int] = defaultdict(int)
    for message in batch_messages(run):
        records = read_file(message["manifest"][0])
        assert 0 < len(records) <= 300
        assert len({r["cohort_id"] for r in records}) == 1
        per_cohort[records[0]["cohort_id"]] += len(records)
    syncs = run.syncs()
    assert dict(per_cohort) == {c: s["member_count"] for c, s in syncs.items() if s["member_count"]}
    assert len(batch_messages(run)) == sum(-(-n // 300) for n in per_cohort.values())


def test_a_cohort_cut_part_way_reports_failed_with_what_its_files_hold(sandbox, tmp_path):
    sandbox.faults.add("storage", "GET", r"/files/.*pwrusr1", truncate_after=3000)
    root = tmp_path / "b"
    run = run_tap(tap_config(sandbox, batch_config=batch_config(root, batch_size=50)))

    sync = run.syncs()["pwrusr1"]
    assert sync["status"] == "failed"
    delivered = [r for r in batched_members(run) if r["cohort_id"] == "pwrusr1"]
    assert 0 < len(delivered) == sync["member_count"] < 1000
    assert run.syncs()["trlrsk2"]["status"] == "complete"
    assert run.bookmarks().get("pwrusr1") is None
    assert run.exit_code == 1
    # Every file on disk was announced: nothing half-written is left behind.
    announced = {file_path(m["manifest"][0]) for m in batch_messages(run)}
    assert set(root.iterdir()) == announced


def test_stream_maps_send_members_as_records_with_a_warning(sandbox, tmp_path, caplog):
    maps = {"cohort_members": {"user_id": None}}
    with caplog.at_level(logging.WARNING):
        run = run_tap(
            tap_config(sandbox, batch_config=batch_config(tmp_path / "b"), stream_maps=maps)
        )
    assert batch_messages(run) == []
    members = run.records("cohort_members")
    assert members
    assert all("user_id" not in m for m in members)  # the map applied
    assert "sent as RECORD messages, not BATCH, because stream maps" in caplog.text


def test_a_deselected_property_sends_members_as_records(sandbox, tmp_path):
    config = tap_config(sandbox, batch_config=batch_config(tmp_path / "b"))
    from tap_amplitude_cohort.tap import TapAmplitudeCohort

    catalog = TapAmplitudeCohort(config=config).catalog_dict
    for stream in catalog["streams"]:
        for entry in stream["metadata"]:
            if stream["tap_stream_id"] == "cohort_members" and entry["breadcrumb"] == [
                "properties",
                "user_id",
            ]:
                entry["metadata"]["selected"] = False
            elif entry["breadcrumb"] == []:
                entry["metadata"]["selected"] = True
    run = run_tap(config, catalog=catalog)
    assert batch_messages(run) == []
    assert run.records("cohort_members")
    assert all("user_id" not in m for m in run.records("cohort_members"))


def test_memory_stays_flat_however_many_members_a_file_holds(sandbox_factory, tmp_path):
    sandbox = sandbox_factory(extra_cohorts=[{"id": "big", "name": "Big", "size": 40_000}])

    def peak(batch_size: int) -> tuple[int, TapRun]:
        config = tap_config(
            sandbox,
            cohort_ids=["big"],
            skip_unchanged_cohorts=False,
            batch_config=batch_config(tmp_path / str(batch_size), batch_size=batch_size),
        )
        tracemalloc.start()
        try:
            run = run_tap(config)
            return tracemalloc.get_traced_memory()[1], run
        finally:
            tracemalloc.stop()

    small, small_run = peak(1_000)
    large, large_run = peak(100_000)
    assert small_run.syncs()["big"]["member_count"] == 40_000
    assert len(batch_messages(large_run)) == 1  # all 40,000 in one file
    # Holding 40,000 records would take tens of MB; streamed, the peak is the same either way.
    assert large < small + 4 * 2**20


def test_an_interrupted_file_is_removed_and_the_finished_ones_stay(tmp_path, monkeypatch):
    from singer_sdk.helpers._batch import BatchConfig
    from tap_amplitude_cohort import batch_files
    from tap_amplitude_cohort.batch_files import BatchFileWriter

    monkeypatch.setattr(batch_files, "ENCODE_CHUNK", 4)  # the third file is open when it stops

    def records():
        for n in range(25):
            yield {"cohort_id": "c", "amplitude_id": n}
        raise KeyboardInterrupt

    config = BatchConfig.from_dict(batch_config(tmp_path / "b", batch_size=10))
    writer = BatchFileWriter(config, tap_name="tap", stream_name="s")
    written = []
    with pytest.raises(KeyboardInterrupt):
        written.extend(writer.write(records()))
    assert [count for _, count in written] == [10, 10]
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == sorted(
        file_path(url).name for url, _ in written
    )
    assert [r["amplitude_id"] for url, _ in written for r in read_file(url)] == list(range(20))

"""Singer BATCH input (the SDK's batch_config) is taken in exactly like RECORD input."""

from __future__ import annotations

import gzip
import json
import subprocess
from pathlib import Path

import pytest

from tests.tap.harness import SEEDED_IDS, tap_config

pytestmark = pytest.mark.integration

BIN = Path(__file__).resolve().parents[2] / ".venv" / "bin"


def list_name(sandbox, cohort_id: str) -> str:
    return f"[Amplitude] {sandbox.generator.spec(cohort_id).name}: {cohort_id}"


def write_config(path: Path, config: dict) -> Path:
    path.write_text(json.dumps(config))
    return path


def target_config(sandbox, tmp_path: Path) -> Path:
    return write_config(
        tmp_path / "target.json",
        {
            "api_key": sandbox.sendgrid_api_key,
            "api_url": sandbox.sendgrid_url,
            "email_field": "user_properties.email",
            "first_name_field": "user_properties.first_name",
            "job_poll_interval_seconds": 0.02,
            "report_path": str(tmp_path / "report.json"),
        },
    )


def batch_tap_config(sandbox, tmp_path: Path) -> Path:
    batches = tmp_path / "batches"
    return write_config(
        tmp_path / "tap.json",
        tap_config(
            sandbox,
            batch_config={
                "encoding": {"format": "jsonl", "compression": "gzip"},
                "storage": {"root": batches.as_uri(), "prefix": "run-"},
                "batch_size": 300,
            },
        ),
    )


def run_target(sandbox, tmp_path: Path, singer: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "target-sendgrid-contacts"), "--config", str(target_config(sandbox, tmp_path))],
        input=singer,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def tap_output(sandbox, tmp_path: Path) -> str:
    done = subprocess.run(
        [str(BIN / "tap-amplitude-cohort"), "--config", str(batch_tap_config(sandbox, tmp_path))],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return done.stdout


def batch_files(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "batches").glob("run-*"))


def test_the_tap_piped_into_the_target_with_batch_config_fills_the_lists(sandbox, tmp_path):
    if not (BIN / "target-sendgrid-contacts").exists():
        pytest.skip("run scripts/setup.sh first")
    tap = subprocess.Popen(
        [str(BIN / "tap-amplitude-cohort"), "--config", str(batch_tap_config(sandbox, tmp_path))],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    target = subprocess.run(
        [str(BIN / "target-sendgrid-contacts"), "--config", str(target_config(sandbox, tmp_path))],
        stdin=tap.stdout,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert tap.wait(timeout=60) == 0
    assert target.returncode == 0, target.stderr[-3000:]

    for cohort_id in SEEDED_IDS:
        found = sandbox.sendgrid.list_by_name(list_name(sandbox, cohort_id))
        assert found is not None
        assert sandbox.sendgrid.member_emails(found["id"]) == (
            sandbox.generator.expected_emails(cohort_id)
        )
    report = json.loads((tmp_path / "report.json").read_text())
    members = sum(len(list(sandbox.generator.members(c))) for c in SEEDED_IDS)
    assert report["totals"]["received"] == members
    assert report["totals"]["adds_up"] is True
    assert {e["removal"] for e in report["lists"]} == {"ran"}  # cohort_syncs arrived as BATCH
    assert batch_files(tmp_path) == []  # personal data does not stay on disk
    state = json.loads(target.stdout.strip().splitlines()[-1])
    partitions = state["bookmarks"]["cohort_members"]["partitions"]
    assert all(p.get("last_computed") for p in partitions)
    assert "@" not in target.stderr


def _members_file(tmp_path: Path) -> Path:
    return next(p for p in batch_files(tmp_path) if "cohort_members" in p.name)


def _missing(path: Path) -> str:
    path.unlink()
    return "does not exist"


def _not_gzip(path: Path) -> str:
    path.write_bytes(b'{"email": "ann.secret@example.com"}\n')
    return "cannot be read after line 0 (BadGzipFile"


def _cut_short(path: Path) -> str:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return "cannot be read after line"


def _bad_json(path: Path) -> str:
    path.write_bytes(gzip.compress(b'{"user_properties": {"email": "ann.secret@example.com"\n'))
    return "line 1 of batch file"


@pytest.mark.parametrize(
    "damage", [_missing, _not_gzip, _cut_short, _bad_json], ids=lambda f: f.__name__.strip("_")
)
def test_a_missing_or_damaged_batch_file_stops_the_run_without_state(damage, sandbox, tmp_path):
    singer = tap_output(sandbox, tmp_path)
    broken = _members_file(tmp_path)
    expected = damage(broken)

    done = run_target(sandbox, tmp_path, singer)

    assert done.returncode != 0
    assert expected in done.stderr
    assert str(broken) in done.stderr
    assert "STATE is not written" in done.stderr
    assert done.stdout == ""
    assert "ann.secret@example.com" not in done.stderr
    assert "@" not in done.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    assert all(e["removal"] != "ran" for e in report["lists"])  # nobody removed on partial data
    # Files handed to the stopped run are removed: the rerun's tap writes new ones.
    assert not broken.exists()


def test_an_encoding_other_than_jsonl_is_a_clear_failure(sandbox, tmp_path):
    lines = tap_output(sandbox, tmp_path).splitlines()
    for i, line in enumerate(lines):
        message = json.loads(line)
        if message["type"] == "BATCH":
            message["encoding"] = {"format": "parquet", "compression": None}
            lines[i] = json.dumps(message)
    done = run_target(sandbox, tmp_path, "\n".join(lines) + "\n")
    assert done.returncode != 0
    assert "batch format 'parquet' is not supported" in done.stderr
    assert done.stdout == ""


def test_the_sdk_batch_hook_of_a_sink_takes_the_records_in_too(sandbox, tmp_path):
    """process_batch_files on a sink (the SDK's hook) feeds the same record intake."""
    from singer_sdk.helpers._batch import BaseBatchFileEncoding
    from target_sendgrid_contacts.target import TargetSendGridContacts

    from sandbox.singer_input import cohort_lines

    lines = cohort_lines(sandbox.generator, ["trlrsk2"])
    members = [
        json.loads(line)["record"]
        for line in lines
        if '"cohort_members"' in line and '"RECORD"' in line
    ]
    path = tmp_path / "members.json.gz"
    path.write_bytes(gzip.compress("".join(json.dumps(m) + "\n" for m in members).encode()))
    config = json.loads(target_config(sandbox, tmp_path).read_text())
    target = TargetSendGridContacts(config=config)
    schema_line = next(line for line in lines if '"SCHEMA"' in line and "cohort_members" in line)
    target._process_schema_message(json.loads(schema_line))
    sink = target.get_sink("cohort_members")
    sink.process_batch_files(BaseBatchFileEncoding("jsonl", "gzip"), [path.as_uri()])
    target.process_endofpipe()

    report = json.loads((tmp_path / "report.json").read_text())
    assert report["totals"]["received"] == len(members)
    assert report["totals"]["adds_up"] is True
    assert not path.exists()


HAND_SCHEMA = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "email": {"type": ["string", "null"]},
        "first_name": {"type": ["string", "null"]},
        "seen_at": {"type": ["string", "null"], "format": "date-time"},
        "joined": {"type": ["string", "null"], "format": "date"},
    },
}
HAND_RECORDS = [
    # "Z" comes back as "+00:00" only when the SDK has parsed the date-time.
    {"id": 1, "email": "Ann@Example.com", "first_name": "Ann", "seen_at": "2026-11-20T10:00:00Z",
     "joined": "2026-01-02", "_sdc_extracted_at": "2026-11-20T10:00:00Z"},
    {"id": 2, "email": "bob@example.com", "first_name": "Bob", "seen_at": "2026-11-20T10:00:00Z",
     "joined": None, "extra": "a field without schema"},
    {"id": 3, "email": "not an email", "first_name": "Cy", "seen_at": None},
    {"id": 4, "email": "dee@example.com", "first_name": "Dee",
     "seen_at": "2026-11-22T00:00:00+01:00"},
    {"id": 5, "email": "ANN@example.com", "first_name": "Ann again", "seen_at": None},
    {"id": 6, "first_name": "Nobody"},
    {"id": 7, "email": "eve@example.com", "first_name": "Eve", "seen_at": "2026-11-21T08:30:00Z",
     "joined": "2026-03-04"},
]  # fmt: skip


def _hand_input(tmp_path: Path, *, batch: bool, records: list[dict] = HAND_RECORDS) -> str:
    schema = {"type": "SCHEMA", "stream": "people", "schema": HAND_SCHEMA, "key_properties": ["id"]}
    lines = [json.dumps(schema)]
    if batch:
        path = tmp_path / "people-1.json.gz"
        path.write_bytes(gzip.compress("".join(json.dumps(r) + "\n" for r in records).encode()))
        encoding = {"format": "jsonl", "compression": "gzip"}
        lines.append(json.dumps({"type": "BATCH", "stream": "people", "encoding": encoding,
                                 "manifest": [path.as_uri()]}))  # fmt: skip
    else:
        lines += [json.dumps({"type": "RECORD", "stream": "people", "record": r}) for r in records]
    lines.append(json.dumps({"type": "STATE", "value": {"done": 1}}))
    return "\n".join(lines) + "\n"


def _hand_config(sandbox, tmp_path: Path, stream_maps: dict | None = None) -> Path:
    config = {
        "api_key": sandbox.sendgrid_api_key,
        "api_url": sandbox.sendgrid_url,
        "email_field": "email",
        "first_name_field": "first_name",
        "list_name": "People",
        "custom_fields": {"seen_text": "seen_at", "joined_text": "joined", "seen_on": "seen_at"},
        "create_missing_custom_fields": True,
        "job_poll_interval_seconds": 0.02,
        "report_path": str(tmp_path / "report.json"),
        "rejects_path": str(tmp_path / "rejects.jsonl"),
        **({"stream_maps": stream_maps} if stream_maps else {}),
    }
    return write_config(tmp_path / "c.json", config)


def _hand_target(config: Path, singer: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "target-sendgrid-contacts"), "--config", str(config)],
        input=singer,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _hand_run(sandbox, tmp_path: Path, *, batch: bool, stream_maps: dict | None) -> dict:
    tmp_path.mkdir()
    for name in ("seen_text", "joined_text"):  # text fields: the date's spelling shows
        sandbox.sendgrid.create_field(name, "Text")
    config = _hand_config(sandbox, tmp_path, stream_maps)
    done = _hand_target(config, _hand_input(tmp_path, batch=batch))
    assert done.returncode == 0, done.stderr[-3000:]
    found = sandbox.sendgrid.list_by_name("People")
    members = {
        m["email"]: (m.get("first_name"), m["custom_fields"])
        for m in sandbox.sendgrid.members(found["id"])
    }
    report = json.loads((tmp_path / "report.json").read_text())
    rejects = [json.loads(line) for line in (tmp_path / "rejects.jsonl").read_text().splitlines()]
    return {
        "members": members,
        "totals": report["totals"],
        "rejects": [(r.get("reason"), r.get("record_number"), r.get("keys")) for r in rejects],
        "state": done.stdout,
    }


@pytest.mark.parametrize(
    "stream_maps",
    [None, {"people": {"__filter__": "id != 7", "first_name": "first_name.upper()"}}],
    ids=["no stream maps", "stream maps"],
)
def test_batch_input_ends_exactly_as_the_same_records_sent_as_record_messages(
    stream_maps, sandbox_factory, tmp_path
):
    """Dates parsed, metadata dropped, stream maps applied, rejects and counts: all identical."""
    as_records = _hand_run(sandbox_factory(), tmp_path / "r", batch=False, stream_maps=stream_maps)
    as_batch = _hand_run(sandbox_factory(), tmp_path / "b", batch=True, stream_maps=stream_maps)

    assert as_batch == as_records
    ann = as_records["members"]["ann@example.com"]
    assert ann[1]["seen_text"] == "2026-11-20T10:00:00+00:00"  # parsed by the SDK, as text
    assert ann[1]["joined_text"] == "2026-01-02"
    assert as_records["totals"]["adds_up"] is True
    assert ("eve@example.com" in as_records["members"]) is (stream_maps is None)


def test_a_bad_date_in_a_batch_file_stops_the_run_as_in_a_record_message(sandbox, tmp_path):
    records = [*HAND_RECORDS[:2], {"id": 9, "email": "fay@example.com", "seen_at": "not a date"}]
    for batch in (False, True):
        run_dir = tmp_path / str(batch)
        run_dir.mkdir()
        singer = _hand_input(run_dir, batch=batch, records=records)
        done = _hand_target(_hand_config(sandbox, run_dir), singer)

        assert done.returncode != 0
        assert "field 'seen_at' is not a valid date or date-time" in done.stderr
        assert "not a date" not in done.stderr
        assert done.stdout == ""  # no STATE


def _read_all(path: Path) -> list[dict]:
    from target_sendgrid_contacts.batch_files import read_records

    return list(read_records(path, "gzip"))


def test_records_are_read_whole_across_decoding_chunks(tmp_path, monkeypatch):
    from target_sendgrid_contacts import batch_files

    monkeypatch.setattr(batch_files, "CHUNK_BYTES", 37)  # lines cross every chunk boundary
    rows = [
        {"n": n, "email": f"p{n}@example.com", "score": 1.5, "tags": ["a", "b"]} for n in range(40)
    ]
    path = tmp_path / "rows.jsonl.gz"
    lines = [json.dumps(row) for row in rows]
    lines.insert(7, "   ")  # a blank line is skipped, as before
    path.write_bytes(gzip.compress(("\n".join(lines)).encode()))  # no newline at the end

    records = _read_all(path)

    assert [r["n"] for r in records] == list(range(40))
    assert str(records[3]["score"]) == "1.5"
    assert type(records[3]["score"]).__name__ == "Decimal"


@pytest.mark.parametrize(
    ("bad", "problem"),
    [
        ('{"n": 1', "is not valid JSON"),
        ("[1, 2]", "is not a JSON object"),
        ('{"a":1},{"b":2}', "is not valid JSON"),
    ],
)
def test_a_bad_line_past_the_first_chunk_is_named_by_its_number(
    tmp_path, monkeypatch, bad, problem
):
    from target_sendgrid_contacts import batch_files

    monkeypatch.setattr(batch_files, "CHUNK_BYTES", 64)
    lines = [json.dumps({"n": n}) for n in range(30)]
    lines[24] = bad  # line 25
    path = tmp_path / "rows.jsonl.gz"
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))

    with pytest.raises(batch_files.BatchFileError, match=rf"line 25 of batch file .* {problem}"):
        _read_all(path)


def test_a_last_line_cut_short_is_named_so(tmp_path, monkeypatch):
    from target_sendgrid_contacts import batch_files

    monkeypatch.setattr(batch_files, "CHUNK_BYTES", 64)
    text = "\n".join(json.dumps({"n": n}) for n in range(10)) + '\n{"n": 1'
    path = tmp_path / "rows.jsonl.gz"
    path.write_bytes(gzip.compress(text.encode()))

    with pytest.raises(batch_files.BatchFileError, match=r"line 11 of batch file .* is cut short"):
        _read_all(path)


def _gzip_bytes(*texts: bytes, padding: bytes = b"") -> bytes:
    return padding.join(gzip.compress(text, compresslevel=1) for text in texts)


_LINES = b"".join(b'{"n": %d, "email": "p%d@example.com"}\n' % (n, n) for n in range(3000))


@pytest.mark.parametrize(
    "data",
    [
        _gzip_bytes(_LINES),
        _gzip_bytes(_LINES[:1000], _LINES[1000:]),  # two members (gzip.open reads both)
        _gzip_bytes(_LINES[:1000], _LINES[1000:], padding=b"\0" * 5),  # zeros between them
        b"",  # an empty file: no records
    ],
    ids=["one member", "two members", "zero padding", "empty"],
)
def test_gzip_batch_files_read_as_the_gzip_module_reads_them(tmp_path, monkeypatch, data):
    from target_sendgrid_contacts import batch_files

    monkeypatch.setattr(batch_files, "_READ_BYTES", 100)  # members split across reads
    path = tmp_path / "rows.jsonl.gz"
    path.write_bytes(data)
    expected = [json.loads(line) for line in gzip.decompress(data).splitlines()]

    assert _read_all(path) == expected


def _bad_crc(data: bytes) -> bytes:
    return data[:-8] + bytes([data[-8] ^ 0xFF]) + data[-7:]


@pytest.mark.parametrize(
    ("damage", "problem"),
    [
        (lambda data: data[: len(data) // 2], "EOFError"),  # cut short
        (_bad_crc, "error"),  # zlib: incorrect data check
        (lambda data: data + b"ann.secret@example.com", "BadGzipFile"),  # trailing garbage
    ],
    ids=["cut short", "bad checksum", "trailing bytes"],
)
def test_a_damaged_gzip_batch_file_is_refused_as_the_gzip_module_refuses_it(
    tmp_path, damage, problem
):
    from target_sendgrid_contacts import batch_files

    path = tmp_path / "rows.jsonl.gz"
    path.write_bytes(damage(_gzip_bytes(_LINES)))
    with pytest.raises(Exception):  # noqa: B017, PT011 - the gzip module's own verdict
        gzip.decompress(path.read_bytes())

    with pytest.raises(batch_files.BatchFileError, match=problem) as caught:
        _read_all(path)
    assert "ann.secret" not in str(caught.value)
    assert "p1@example.com" not in str(caught.value)


def test_leaving_a_gzip_batch_file_early_stops_its_inflating_thread(tmp_path, monkeypatch):
    import threading

    from target_sendgrid_contacts import batch_files

    monkeypatch.setattr(batch_files, "CHUNK_BYTES", 64)  # many more chunks than are queued
    path = tmp_path / "rows.jsonl.gz"
    path.write_bytes(_gzip_bytes(_LINES * 20))
    records = batch_files.read_records(path, "gzip")

    assert next(records)["n"] == 0
    assert any(t.name == "batch-inflate" for t in threading.enumerate())
    del records  # the reader stops, as a run that fails mid-file does

    assert not any(t.name == "batch-inflate" for t in threading.enumerate())

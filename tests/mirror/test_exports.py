"""Contacts export: polling, download without the key, streamed parsing, refusal of bad files."""

from __future__ import annotations

import gzip
import tempfile
from pathlib import Path

import pytest
from target_sendgrid_contacts.sendgrid.exports import (
    ExportDownloadError,
    ExportFailedError,
    ExportTimeoutError,
    download_export,
    read_export_columns,
    start_export,
    wait_for_export,
)

from .helpers import BASE, FILES, KEY, LIST_ID, export_csv, gz, member

COLUMNS = ["FIRST_NAME", "PLAN", "SCORE"]  # read after CONTACT_ID and EMAIL


def _read(paths: list[Path], status: dict) -> list[dict]:
    """The rows a snapshot reads, keyed by column (a column the file lacks left out)."""
    names = ["CONTACT_ID", "EMAIL", *COLUMNS]
    return [
        {name: cell for name, cell in zip(names, row, strict=True) if name not in absent}
        for absent, batch in read_export_columns(paths, LIST_ID, status, COLUMNS)
        for row in batch
    ]


def _rows(client, timeout: float = 5):
    """Export, download and read the list as a run's snapshot load does."""
    export_id = start_export(client, LIST_ID)
    status = wait_for_export(client, export_id, poll_interval=0.001, timeout=timeout)
    with tempfile.TemporaryDirectory() as folder:
        paths = download_export(client, LIST_ID, status, Path(folder))
        return _read(paths, status)


def test_export_streams_every_file_and_never_sends_the_key(client, mock_export, requests_mock):
    mock_export(
        gz(export_csv([member(1, plan="gold", Score="7"), member(2)])),
        gz(export_csv([member(3, FIRST_NAME='Ann, "Jr"\nsecond line')])),
        polls_pending=2,
    )
    rows = _rows(client)
    assert [r["CONTACT_ID"] for r in rows] == ["c-1", "c-2", "c-3"]
    # Custom field columns come back under upper-cased names; cells keep their exact text.
    assert rows[0]["PLAN"] == "gold"
    assert rows[0]["SCORE"] == "7"
    assert rows[2]["FIRST_NAME"] == 'Ann, "Jr"\nsecond line'
    start = requests_mock.request_history[0]
    assert start.method == "POST"
    assert start.json() == {"list_ids": [LIST_ID], "file_type": "csv"}
    polls = [r for r in requests_mock.request_history if "/exports/exp-1" in r.url]
    assert len(polls) == 3
    downloads = [r for r in requests_mock.request_history if r.url.startswith(FILES)]
    assert len(downloads) == 2
    for request in downloads:
        assert "Authorization" not in request.headers
        assert KEY not in str(request.headers)


def test_file_served_with_content_encoding_gzip_is_read_once(client, mock_export):
    mock_export(gz(export_csv([member(1)])), headers={"Content-Encoding": "gzip"})
    assert [r["EMAIL"] for r in _rows(client)] == ["person1@example.com"]


def test_gzip_with_several_members_is_read_whole(tmp_path, monkeypatch):
    from target_sendgrid_contacts.sendgrid import exports

    monkeypatch.setattr(exports, "_READ_CHUNK_BYTES", 10)  # members split across reads
    data = export_csv([member(1), member(2), member(3)])
    cut = data.index(b'"person2')
    path = tmp_path / "export-1.csv.part"
    path.write_bytes(gzip.compress(data[:cut]) + gzip.compress(data[cut:]))
    rows = _read([path], {"id": "e1"})
    assert [r["CONTACT_ID"] for r in rows] == ["c-1", "c-2", "c-3"]


def test_empty_file_is_an_empty_list(client, mock_export):
    mock_export(gz(b""))
    assert _rows(client) == []


def test_export_failure_is_a_clear_error(client, requests_mock):
    requests_mock.post(f"{BASE}/v3/marketing/contacts/exports", status_code=202, json={"id": "e9"})
    requests_mock.get(
        f"{BASE}/v3/marketing/contacts/exports/e9",
        json={"id": "e9", "status": "failure", "message": "export limit reached"},
    )
    with pytest.raises(ExportFailedError, match="export limit reached"):
        _rows(client)


def test_export_that_never_gets_ready_times_out(client, requests_mock):
    requests_mock.post(f"{BASE}/v3/marketing/contacts/exports", status_code=202, json={"id": "e9"})
    requests_mock.get(
        f"{BASE}/v3/marketing/contacts/exports/e9", json={"id": "e9", "status": "pending"}
    )
    with pytest.raises(ExportTimeoutError, match=r"not ready after 0\.2 s"):
        _rows(client, timeout=0.2)
    assert requests_mock.call_count >= 3  # it kept polling until the bound


def test_truncated_gzip_download_is_an_error(client, mock_export):
    whole = gz(export_csv([member(n) for n in range(200)]))
    mock_export(whole[: len(whole) // 2])
    with pytest.raises(ExportDownloadError, match="truncated"):
        _rows(client)


def test_corrupt_gzip_download_is_an_error(client, mock_export):
    whole = bytearray(gz(export_csv([member(n) for n in range(50)])))
    whole[40:60] = b"\x00" * 20
    mock_export(bytes(whole))
    with pytest.raises(ExportDownloadError):
        _rows(client)


def test_csv_cut_mid_row_inside_a_valid_gzip_is_an_error(client, mock_export):
    data = export_csv([member(1), member(2)])
    mock_export(gz(data[: data.rindex(b",")]))
    with pytest.raises(ExportDownloadError, match="cells"):
        _rows(client)


def test_rows_fewer_than_announced_contact_count_is_an_error(client, mock_export):
    mock_export(gz(export_csv([member(1), member(2)])), contact_count=3)
    with pytest.raises(ExportDownloadError, match="announced 3 contacts but its files hold 2"):
        _rows(client)


def test_file_without_contact_id_column_is_refused(client, mock_export):
    mock_export(gz(export_csv([member(1)], header=["EMAIL", "FIRST_NAME"])))
    with pytest.raises(ExportDownloadError, match="CONTACT_ID"):
        _rows(client)


def test_error_messages_carry_no_signed_url_and_no_email(client, mock_export):
    whole = gz(export_csv([member(n) for n in range(100)]))
    mock_export(whole[:-30])
    with pytest.raises(ExportDownloadError) as caught:
        _rows(client)
    text = str(caught.value)
    assert "Signature" not in text
    assert "@" not in text
    assert "exp-1" in text

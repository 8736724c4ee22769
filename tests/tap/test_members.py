"""The export parser: CSV rows -> cohort_members records, header normalisation, timestamps."""

from __future__ import annotations

import datetime
import gzip
import io

import msgspec
import pytest
from tap_amplitude_cohort.amplitude.decompress import open_decompressed
from tap_amplitude_cohort.amplitude.errors import ExportCorrupt
from tap_amplitude_cohort.members import (
    epoch_to_datetime,
    iter_csv_rows,
    member_records,
    normalise_property_key,
)

UTC = datetime.timezone.utc


def parse(csv_text: str, *, bom: bool = False, gzipped: bool = True) -> list[dict]:
    data = (("\ufeff" if bom else "") + csv_text).encode()
    if gzipped:
        data = gzip.compress(data)
    body = open_decompressed([data[i : i + 7] for i in range(0, len(data), 7)], what="test")
    return list(
        member_records(
            iter_csv_rows(body),
            cohort_id="c1",
            cohort_name="Cohort one",
            cohort_last_computed="2026-11-26T10:00:00+00:00",
        )
    )


def test_plain_headers_give_properties_by_name():
    records = parse(
        '"amplitude_id","user_id","email","first_name"\n'
        '"101","u1","a@example.com","Anna"\n'
        '"102","u2","b@example.com","Ben"\n'
    )
    assert records == [
        {
            "cohort_id": "c1",
            "cohort_name": "Cohort one",
            "cohort_last_computed": "2026-11-26T10:00:00+00:00",
            "amplitude_id": 101,
            "user_id": "u1",
            "user_properties": {"email": "a@example.com", "first_name": "Anna"},
        },
        {
            "cohort_id": "c1",
            "cohort_name": "Cohort one",
            "cohort_last_computed": "2026-11-26T10:00:00+00:00",
            "amplitude_id": 102,
            "user_id": "u2",
            "user_properties": {"email": "b@example.com", "first_name": "Ben"},
        },
    ]


def test_gp_prefixed_headers_with_tab_and_spaces_normalise_to_bare_names():
    records = parse(
        '"amplitude_id","user_id","gp:email","\tgp:plan"," country ","GP:first_name"\n'
        '"7","u7","x@example.com","pro","Poland","Zoë"\n'
    )
    assert records[0]["user_properties"] == {
        "email": "x@example.com",
        "plan": "pro",
        "country": "Poland",
        "first_name": "Zoë",
    }


@pytest.mark.parametrize(
    ("header", "key"),
    [
        ("email", "email"),
        ("gp:email", "email"),
        ("\tgp:email", "email"),
        ("  gp:email\t", "email"),
        ("gp: email", "email"),
        ("first name", "first name"),
        ("\ufeffemail", "email"),
    ],
)
def test_normalise_property_key(header, key):
    assert normalise_property_key(header) == key


def test_bom_before_header_is_ignored():
    records = parse('"amplitude_id","user_id","email"\n"1","u","e@x.io"\n', bom=True)
    assert records[0]["amplitude_id"] == 1
    assert records[0]["user_properties"] == {"email": "e@x.io"}


def test_quoted_commas_quotes_and_newlines_stay_inside_their_field():
    records = parse(
        '"amplitude_id","user_id","company","note"\n'
        '"1","u1","Acme, Inc.","said ""hi""\nthen left"\n'
        '"2","u2","Line one\r\nLine two Ltd",""\n'
    )
    assert [r["user_properties"] for r in records] == [
        {"company": "Acme, Inc.", "note": 'said "hi"\nthen left'},
        {"company": "Line one\r\nLine two Ltd", "note": None},
    ]


def test_non_ascii_survives_chunk_boundaries():
    names = ["Łukasz", "太郎", "Ñúñez", "Søren", "Zoë"]
    body = '"amplitude_id","user_id","first_name"\n' + "".join(
        f'"{i}","u{i}","{name}"\n' for i, name in enumerate(names)
    )
    records = parse(body)  # 7-byte chunks split multi-byte characters
    assert [r["user_properties"]["first_name"] for r in records] == names


def test_empty_user_id_and_empty_property_become_null():
    records = parse('"amplitude_id","user_id","email"\n"5","",""\n')
    assert records[0]["user_id"] is None
    assert records[0]["user_properties"] == {"email": None}


def test_no_property_columns_gives_empty_properties():
    records = parse('"amplitude_id","user_id"\n"1","u1"\n"2",""\n')
    assert [(r["amplitude_id"], r["user_id"], r["user_properties"]) for r in records] == [
        (1, "u1", {}),
        (2, None, {}),
    ]


def test_header_only_export_is_an_empty_cohort():
    assert parse('"amplitude_id","user_id","email"\n') == []


def test_two_headers_normalising_to_one_name_keep_the_first_non_empty_value():
    records = parse(
        '"amplitude_id","user_id","email","gp:email"\n"1","u","","late@x.io"\n"2","u","a@x.io","b@x.io"\n'
    )
    assert [r["user_properties"] for r in records] == [{"email": "late@x.io"}, {"email": "a@x.io"}]


def test_plain_uncompressed_body_is_read_too():
    records = parse('"amplitude_id","user_id"\n"1","u1"\n', gzipped=False)
    assert records[0]["amplitude_id"] == 1


def test_empty_body_is_not_an_empty_cohort():
    with pytest.raises(ExportCorrupt, match="not even a header row"):
        parse("")


def test_row_with_missing_fields_is_corrupt():
    with pytest.raises(ExportCorrupt, match="row 2 has 2 fields, the header has 3"):
        parse('"amplitude_id","user_id","email"\n"1","u","e@x.io"\n"2","u"\n')


def test_unterminated_quote_at_end_is_corrupt():
    with pytest.raises(ExportCorrupt):
        parse('"amplitude_id","user_id","email"\n"1","u","e@x.io\n')


def test_non_integer_amplitude_id_is_corrupt():
    with pytest.raises(ExportCorrupt, match="no integer amplitude_id"):
        parse('"amplitude_id","user_id"\n"abc","u"\n')


def test_missing_amplitude_id_column_is_corrupt():
    with pytest.raises(ExportCorrupt, match="no amplitude_id column"):
        parse('"id","user_id"\n"1","u"\n')


def test_a_file_without_its_header_row_fails_without_showing_member_data():
    with pytest.raises(ExportCorrupt, match="no amplitude_id column") as info:
        parse('"1001","jane.doe@example.com","Jane"\n"1002","","Ben"\n')
    assert "jane" not in str(info.value).lower()


def test_invalid_utf8_is_corrupt():
    data = gzip.compress(b'"amplitude_id","user_id"\n"1","\xff\xfe"\n')
    body = open_decompressed([data], what="test")
    with pytest.raises(ExportCorrupt, match="not UTF-8"):
        list(
            member_records(
                iter_csv_rows(body), cohort_id="c", cohort_name=None, cohort_last_computed=None
            )
        )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1764151200, datetime.datetime(2025, 11, 26, 10, 0, tzinfo=UTC)),  # seconds
        (1764151200000, datetime.datetime(2025, 11, 26, 10, 0, tzinfo=UTC)),  # milliseconds
        (1764151200123, datetime.datetime(2025, 11, 26, 10, 0, 0, 123000, tzinfo=UTC)),
        ("1764151200", datetime.datetime(2025, 11, 26, 10, 0, tzinfo=UTC)),
        ("1764151200000", datetime.datetime(2025, 11, 26, 10, 0, tzinfo=UTC)),
        (1764151200.5, datetime.datetime(2025, 11, 26, 10, 0, 0, 500000, tzinfo=UTC)),
        ("2025-11-26T10:00:00Z", datetime.datetime(2025, 11, 26, 10, 0, tzinfo=UTC)),
        (None, None),
        ("", None),
    ],
)
def test_epoch_seconds_and_milliseconds(value, expected):
    assert epoch_to_datetime(value) == expected


@pytest.mark.parametrize("value", [True, "yesterday", [1]])
def test_non_timestamps_are_refused(value):
    with pytest.raises(ValueError):  # noqa: PT011
        epoch_to_datetime(value)


def test_parser_streams_without_reading_everything_first():
    # A generator of rows that fails after the third: records before it must come out first.
    def rows():
        yield ["amplitude_id", "user_id"]
        yield ["1", "a"]
        yield ["2", "b"]
        raise ExportCorrupt("boom")

    out = member_records(rows(), cohort_id="c", cohort_name=None, cohort_last_computed=None)
    assert next(out)["amplitude_id"] == 1
    assert next(out)["amplitude_id"] == 2
    with pytest.raises(ExportCorrupt):
        next(out)


def test_csv_reader_handles_crlf_and_lf():
    rows = list(iter_csv_rows(io.BytesIO(b'"a","b"\r\n"1","2"\n"3","4"\r\n')))
    assert rows == [["a", "b"], ["1", "2"], ["3", "4"]]


@pytest.mark.parametrize(
    "csv_text",
    [
        '"amplitude_id","user_id","email","gp:plan","first_name"\n'
        '"100","u0","a@example.com","","Ann"\n'
        '"101","","","pro",""\n'
        '"102","u2","x""y@example.com","é, ok",""\n',
        # two columns that normalise to one property
        '"amplitude_id","user_id","gp:plan","plan"\n"100","u0","","basic"\n"101","","pro",""\n',
        # a property name no struct field may carry: dicts serve
        '"amplitude_id","user_id","say ""hi"""\n"100","u0","x"\n"101","",""\n',
    ],
)
def test_batch_structs_encode_to_exactly_the_json_of_the_records(csv_text):
    kwargs = {"cohort_id": "c1", "cohort_name": "", "cohort_last_computed": None}

    def encoded(as_structs: bool) -> bytes:
        rows = iter_csv_rows(io.BytesIO(csv_text.encode()))
        return msgspec.json.encode(list(member_records(rows, as_structs=as_structs, **kwargs)))

    assert encoded(True) == encoded(False)
    records = msgspec.json.decode(encoded(True))
    assert records[1]["user_id"] is None  # a blank cell is null, not ""
    assert records[1]["cohort_name"] == ""  # only cells become null

"""Pure parsing of Amplitude cohort exports into ``cohort_members`` records.

The export is quoted CSV: ``"amplitude_id","user_id"`` and then one column per user property.
Property headers come as ``email``, ``gp:email`` or with stray whitespace and tabs; they are
normalised to the bare name. Values stay strings; an empty cell becomes ``None`` (the property is
not set for that user), so every record of a cohort carries the same property keys.
"""

from __future__ import annotations

import csv
import datetime
import io
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import IO, Any

import msgspec

from tap_amplitude_cohort.amplitude.errors import ExportCorrupt

CUSTOM_PROPERTY_PREFIX = "gp:"
AMPLITUDE_ID = "amplitude_id"
USER_ID = "user_id"
# Epoch values at or above this are milliseconds: 1e11 s is the year 5138, 1e11 ms is 1973.
_MILLISECONDS_THRESHOLD = 1e11
_HEADER_JUNK = " \t\r\n\ufeff"
RECORD_KEYS = (
    "cohort_id",
    "cohort_name",
    "cohort_last_computed",
    "amplitude_id",
    "user_id",
    "user_properties",
)
_UNENCODABLE = re.compile(r'["\\\x00-\x1f]')  # not allowed in a renamed struct field


def normalise_property_key(header: str) -> str:
    """Return the bare user property name of an export column header.

    Args:
        header: A raw header, e.g. ``" gp:email "`` (tabs count as whitespace).

    Returns:
        The name without surrounding whitespace/tabs and without a ``gp:`` prefix (``email``).
    """
    key = header.strip(_HEADER_JUNK)
    if key[: len(CUSTOM_PROPERTY_PREFIX)].lower() == CUSTOM_PROPERTY_PREFIX:
        key = key[len(CUSTOM_PROPERTY_PREFIX) :].strip(_HEADER_JUNK)
    return key


def epoch_to_datetime(value: Any) -> datetime.datetime | None:
    """Convert an Amplitude timestamp (epoch seconds or milliseconds) to an aware datetime.

    Amplitude does not document the unit of ``lastComputed`` / ``lastMod``; both are accepted
    and told apart by magnitude. Numeric strings and ISO 8601 strings are accepted too.

    Args:
        value: An int, float, numeric string, ISO string, or None / "".

    Returns:
        A UTC datetime, or None for a missing value.

    Raises:
        ValueError: If the value is not a timestamp.
    """
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        msg = f"not a timestamp: {value!r}"
        raise ValueError(msg)
    if isinstance(value, str):
        text = value.strip()
        try:
            number: float = float(text)
        except ValueError:
            parsed = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=datetime.timezone.utc)
            return parsed.astimezone(datetime.timezone.utc)
    elif isinstance(value, (int, float)):
        number = value
    else:
        msg = f"not a timestamp: {value!r}"
        raise ValueError(msg)
    seconds = number / 1000 if abs(number) >= _MILLISECONDS_THRESHOLD else number
    return datetime.datetime.fromtimestamp(seconds, tz=datetime.timezone.utc)


def format_datetime(value: datetime.datetime | None) -> str | None:
    """Return the one ISO 8601 form every stream uses (UTC, ``+00:00``), or None."""
    return value.astimezone(datetime.timezone.utc).isoformat() if value is not None else None


@dataclass(frozen=True)
class ExportLayout:
    """Where things are in the export's columns, read from its header row.

    Attributes:
        width: Number of columns every row must have.
        amplitude_id_index: Column of ``amplitude_id``.
        user_id_index: Column of ``user_id``, or None when the export has none.
        property_keys: Normalised property names, in column order (each once).
        property_columns: For each property key, the columns that normalise to it.
    """

    width: int
    amplitude_id_index: int
    user_id_index: int | None
    property_keys: tuple[str, ...]
    property_columns: tuple[tuple[int, ...], ...]

    @classmethod
    def from_header(cls, header: list[str], *, cohort_label: str) -> ExportLayout:
        """Read the layout from the header row.

        Args:
            header: The first CSV row.
            cohort_label: Names the cohort in error messages.

        Returns:
            The layout.

        Raises:
            ExportCorrupt: If there is no ``amplitude_id`` column.
        """
        amplitude_id_index: int | None = None
        user_id_index: int | None = None
        columns: dict[str, list[int]] = {}
        for index, raw in enumerate(header):
            plain = raw.strip(_HEADER_JUNK).lower()
            if plain == AMPLITUDE_ID and amplitude_id_index is None:
                amplitude_id_index = index
            elif plain == USER_ID and user_id_index is None:
                user_id_index = index
            elif key := normalise_property_key(raw):
                columns.setdefault(key, []).append(index)
        if amplitude_id_index is None:
            # Echo no cell: a file without its header row starts with a member's data (an email).
            msg = (
                f"the export of {cohort_label} has no amplitude_id column "
                f"(its first row has {len(header)} fields and no such name)"
            )
            raise ExportCorrupt(msg)
        return cls(
            width=len(header),
            amplitude_id_index=amplitude_id_index,
            user_id_index=user_id_index,
            property_keys=tuple(columns),
            property_columns=tuple(tuple(indexes) for indexes in columns.values()),
        )


def iter_csv_rows(binary: IO[bytes]) -> Iterator[list[str]]:
    """Read CSV rows from a decompressed export (UTF-8, optional BOM, quoted fields).

    Args:
        binary: The decompressed file.

    Yields:
        Each row as a list of strings, header first.

    Raises:
        ExportCorrupt: If the bytes are not UTF-8 or the CSV quoting is broken.
    """
    text = io.TextIOWrapper(binary, encoding="utf-8-sig", newline="")
    reader = csv.reader(text, strict=True)
    try:
        yield from reader
    except UnicodeDecodeError as exc:
        msg = f"the export is not UTF-8 text ({exc.reason} near byte {exc.start})"
        raise ExportCorrupt(msg) from exc
    except csv.Error as exc:
        msg = f"the export is not valid CSV near line {reader.line_num} ({exc})"
        raise ExportCorrupt(msg) from exc


def record_structs(property_keys: tuple[str, ...]) -> tuple[type, type] | None:
    """Struct types whose JSON is byte for byte a record's (keys in the same order), or None.

    For batch files: msgspec builds and encodes these about three times as fast as the dicts.
    None when a property name cannot be a struct field name (a quote, backslash or control
    character): the dicts then serve.

    Args:
        property_keys: The normalised property names, in column order.

    Returns:
        ``(record type, user_properties type)``, both built positionally.
    """
    if any(_UNENCODABLE.search(key) for key in property_keys):
        return None
    properties = msgspec.defstruct(
        "UserProperties",
        [(f"p{i}", Any) for i in range(len(property_keys))],
        rename={f"p{i}": key for i, key in enumerate(property_keys)},
        gc=False,
    )
    record = msgspec.defstruct(
        "MemberRecord",
        [(name, Any) for name in RECORD_KEYS],
        gc=False,
    )
    return record, properties


def member_records(
    rows: Iterable[list[str]],
    *,
    cohort_id: str,
    cohort_name: str | None,
    cohort_last_computed: str | None,
    as_structs: bool = False,
) -> Iterator[Any]:
    """Turn export rows (header first) into ``cohort_members`` records.

    Args:
        rows: CSV rows, the header row first.
        cohort_id: Id of the cohort exported.
        cohort_name: Its name.
        cohort_last_computed: Its lastComputed as an ISO 8601 string.
        as_structs: Yield structs that msgspec encodes to exactly the JSON of the dicts
            (``record_structs``; dicts anyway when the property names rule them out).

    Yields:
        One record per member.

    Raises:
        ExportCorrupt: On a missing header, a row of the wrong width, or a non-integer
            amplitude_id. The file is then not the whole cohort.
    """
    label = f"cohort {cohort_id}"
    iterator = iter(rows)
    header = next(iterator, None)
    if header is None:
        msg = f"the export of {label} is empty: not even a header row"
        raise ExportCorrupt(msg)
    layout = ExportLayout.from_header(header, cohort_label=label)
    width = layout.width
    aid = layout.amplitude_id_index
    uid = layout.user_id_index
    groups = tuple(zip(layout.property_keys, layout.property_columns, strict=True))
    merged = any(len(columns) > 1 for _, columns in groups)
    # Fast path: one column per property (the usual export).
    singles = tuple((key, columns[0]) for key, columns in groups)
    structs = record_structs(layout.property_keys) if as_structs else None
    if structs is not None:
        record_type, properties_type = structs
        firsts = tuple(columns[0] for _, columns in groups)

    for number, row in enumerate(iterator, start=1):
        if len(row) != width:
            if not row:  # a blank line carries nobody
                continue
            msg = (
                f"the export of {label} is damaged: member row {number} has {len(row)} "
                f"fields, the header has {width}"
            )
            raise ExportCorrupt(msg)
        try:
            amplitude_id = int(row[aid])
        except ValueError:
            msg = (
                f"the export of {label} is damaged: member row {number} has no integer amplitude_id"
            )
            raise ExportCorrupt(msg) from None
        user_id = (row[uid] or None) if uid is not None else None
        if structs is not None:
            if merged:
                values = [next((row[i] for i in cols if row[i]), None) for _, cols in groups]
            else:
                values = [row[i] or None for i in firsts]
            yield record_type(
                cohort_id,
                cohort_name,
                cohort_last_computed,
                amplitude_id,
                user_id,
                properties_type(*values),
            )
            continue
        if merged:
            properties = {
                # Two headers normalised to one name: the first non-empty value wins.
                key: next((row[i] for i in columns if row[i]), None)
                for key, columns in groups
            }
        else:
            properties = {key: row[i] or None for key, i in singles}
        yield {
            "cohort_id": cohort_id,
            "cohort_name": cohort_name,
            "cohort_last_computed": cohort_last_computed,
            "amplitude_id": amplitude_id,
            "user_id": user_id,
            "user_properties": properties,
        }

"""The SDK's record intake for a whole BATCH file in one loop: the same steps, fewer calls.

``Target._process_record_message`` costs ~14 µs a record before our sink sees it (a message
dict per record, a record copy, the stream map, a timestamp check of every property, seven
metadata pops). For a stream with the SDK's identity map (no stream maps, no flattening) and
no record metadata, the steps that can change anything are kept here, in the SDK's order:
batch context, metadata removal, timestamp parsing, ``preprocess_record``, the key check,
tallies, the sink, the record counter, full-sink drains and the record-age drain. Any other
stream takes the SDK's own path record by record.
"""

from __future__ import annotations

import contextlib
import gc
import logging
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING

from singer_sdk.helpers._compat import (
    date_fromisoformat,
    datetime_fromisoformat,
    time_fromisoformat,
)
from singer_sdk.helpers._typing import get_datelike_property_type
from singer_sdk.mapper import SameRecordTransform
from singer_sdk.sinks import BatchSink, Sink

from target_sendgrid_contacts.sinks import ForwardingSink

_FORWARD = ForwardingSink.process_record

if TYPE_CHECKING:
    from singer_sdk import Target

# The metadata columns the SDK removes from each record (Sink._remove_sdc_metadata_from_record).
SDC_COLUMNS = frozenset(
    {
        "_sdc_extracted_at",
        "_sdc_received_at",
        "_sdc_batched_at",
        "_sdc_deleted_at",
        "_sdc_sequence",
        "_sdc_table_version",
        "_sdc_sync_started_at",
    }
)
# As in Sink._parse_timestamps_in_record.
_PARSERS: dict[str, Callable[[str], object]] = {
    "time": time_fromisoformat,
    "date": date_fromisoformat,
}
# Parsed texts kept per date property: a cohort's cohort_last_computed is one text for all
# its members; a per-member date fills the cache once and is then parsed record by record.
_CACHE_LIMIT = 1024


class DateParser:
    """Parses a record's top-level date-like properties as the SDK would, caching repeats."""

    def __init__(self, properties: dict) -> None:
        """Find the date-like properties of a schema.

        Args:
            properties: The sink schema's ``properties``.
        """
        self._dates: list[tuple[str, Callable[[str], object], dict[str, object]]] = [
            (key, _PARSERS.get(kind, datetime_fromisoformat), {})
            for key, prop in properties.items()
            if (kind := get_datelike_property_type(prop))
        ]

    def __bool__(self) -> bool:
        """Whether the schema has any date-like property."""
        return bool(self._dates)

    def parse(self, record: dict) -> bool:
        """Replace the record's date texts by their values, or leave it untouched.

        Args:
            record: The record.

        Returns:
            False (record unchanged) when a value does not parse: the SDK's own pass then
            repairs or fails it, with its own messages.
        """
        found = []
        for key, parse, cache in self._dates:
            value = record.get(key)
            if value is None:
                continue
            parsed = cache.get(value) if type(value) is str else None
            if parsed is None:
                try:
                    parsed = parse(value)
                except Exception:  # noqa: BLE001 (the SDK's pass decides what it means)
                    return False
                if type(value) is str and len(cache) < _CACHE_LIMIT:
                    cache[value] = parsed
            found.append((key, parsed))
        for key, parsed in found:
            record[key] = parsed
        return True


def bulk_sink(target: Target, stream: str) -> Sink | None:
    """The stream's sink when its records may skip the SDK's per-record message path.

    Args:
        target: The target.
        stream: The stream of the BATCH message.

    Returns:
        The sink, or None when stream maps, flattening, record metadata, schema validation
        or a missing sink need the SDK's own path (which also raises its usual errors).
    """
    maps = target.mapper.stream_maps.get(stream)
    if not maps or len(maps) != 1:
        return None
    stream_map = maps[0]
    if (
        type(stream_map) is not SameRecordTransform
        or stream_map.stream_alias != stream
        or stream_map.flattening_enabled
    ):
        return None
    sink = target._sinks_active.get(stream)
    if sink is None or sink.include_sdc_metadata_properties or sink._validator is not None:
        return None
    # A property schema that is not an object (``true``) is the SDK's to judge, record by record.
    if not all(isinstance(p, dict) for p in sink.schema["properties"].values()):
        return None
    return sink


# With the SDK's own hooks, the record counter and the record-age check are run once per this
# many records (and at every drain and at the end of a file) instead of once a record.
TALLY_EVERY = 1024
GC_THRESHOLD = 1_000_000  # container allocations between young collections (CPython's: 700)


def _sdk_hooks(sink: Sink) -> bool:
    """Whether the sink keeps the SDK's no-op record hooks and its size-based fullness."""
    kind = type(sink)
    return (
        kind._get_context in {Sink._get_context, BatchSink._get_context}
        and kind.preprocess_record is Sink.preprocess_record
        and kind._after_process_record is Sink._after_process_record
        and kind.is_full is Sink.is_full
        and kind.current_size is Sink.current_size
        and not sink.logger.isEnabledFor(logging.DEBUG)  # the after-record hook logs at DEBUG
    )


@contextlib.contextmanager
def fewer_collections() -> Iterator[None]:
    """Keep the cyclic garbage collector from scanning records while a batch file is taken in.

    Each record makes a few containers that live until their body is sent; with the default
    threshold (700) the collector ran every ~100 records and cost ~25 % of a live run's CPU,
    and each object it kept was scanned again by every older collection. Reference counting
    frees the records (they hold no cycles), so what exists at either end of a file is moved
    out of the collector's reach (``gc.freeze``) and collections within a file are rare. The
    price: a reference cycle made while a file is read (an exception's traceback, say) is
    only freed when the process ends.

    Yields:
        While the threshold is raised (restored afterwards).
    """
    before = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(max(before[0], GC_THRESHOLD), *before[1:])
    try:
        yield
    finally:
        gc.freeze()  # this file's survivors (pooled contacts) are never scanned
        gc.set_threshold(*before)


def take_records(target: Target, sink: Sink, records: Iterable[dict]) -> int:
    """Feed records to the sink as ``_process_record_message`` would, one loop for all.

    Args:
        target: The target (for drains).
        sink: From :func:`bulk_sink`.
        records: The records of one batch file (fresh dicts: not copied).

    Returns:
        How many records were taken in.
    """
    with fewer_collections():
        if not _sdk_hooks(sink):
            return _take_with_hooks(target, sink, records)
        return _take_fast(target, sink, records)


def _drain_full(target: Target, sink: Sink) -> None:
    """Drain a full sink, with the SDK's own log line (once a batch, not once a record)."""
    target.logger.info(
        "Target sink for '%s' is full. Current size is '%s'. Draining...",
        sink.stream_name,
        sink.current_size,
    )
    target.drain_one(sink)


def _take_fast(target: Target, sink: Sink, records: Iterable[dict]) -> int:
    """The loop of :func:`take_records` for a sink with the SDK's own hooks."""
    schema = sink.schema
    properties = schema["properties"]
    known = properties.keys()
    dates = DateParser(properties)
    keys = tuple(sink.key_properties or ())
    counter = sink.record_counter_metric
    process = sink.process_record
    # ForwardingSink.process_record only hands the record to its intake: one call less.
    take = None
    if isinstance(sink, ForwardingSink) and type(sink).process_record is _FORWARD:
        take = sink.intake.take
    tally = sink.tally_record_read
    sdc_free = SDC_COLUMNS.isdisjoint
    sdc_unknown = sdc_free(known)  # the schema declares no metadata column
    taken = counted = 0  # counted: records in the SDK's tallies and record counter
    # BatchSink's context is the pending batch's, made when a record finds none (after a drain).
    batch_context = type(sink)._get_context is BatchSink._get_context
    context = None
    # The SDK's is_full (current_size >= max_size), counted down instead of asked each record.
    room = sink.max_size - sink.current_size
    try:
        for record in records:
            # Only known fields (the common case): no metadata column either, when the schema
            # has none, so the SDK's two checks are one.
            if not (sdc_unknown and known >= record.keys()):
                if not sdc_free(record):
                    sink._remove_sdc_metadata_from_record(record)
                if not known >= record.keys() or (dates and not dates.parse(record)):
                    sink._validate_and_parse(record)
            elif dates and not dates.parse(record):
                sink._validate_and_parse(record)
            for key in keys:
                if key not in record:
                    sink._singer_validate_message(record)
            if context is None:
                context = sink._get_context(record)
            elif not batch_context:
                context = {}  # Sink._get_context: a fresh empty context each record
            if take is not None:
                take(record)
            else:
                process(record, context)
            taken += 1
            room -= 1
            if room <= 0:
                tally(taken - counted)  # the SDK's read tally, brought up to date in one call
                counter.increment(taken - counted)
                counted = taken
                _drain_full(target, sink)
                target._handle_max_record_age()
                room = sink.max_size - sink.current_size
                context = None
            elif not taken & (TALLY_EVERY - 1):
                tally(taken - counted)
                counter.increment(taken - counted)
                counted = taken
                target._handle_max_record_age()
                if sink.current_size < sink.max_size - room:  # an age drain emptied the sink
                    room = sink.max_size - sink.current_size
                    context = None
    finally:
        if taken > counted:
            tally(taken - counted)
            counter.increment(taken - counted)
    if taken > counted:
        target._handle_max_record_age()
    return taken


def _take_with_hooks(target: Target, sink: Sink, records: Iterable[dict]) -> int:
    """The loop of :func:`take_records` for a sink with hooks of its own: every call kept."""
    schema = sink.schema
    properties = schema["properties"]
    known = properties.keys()
    # The SDK's pass parses date-like properties and warns about a field without schema: a
    # record with only known fields needs just its dates parsed.
    dates = DateParser(properties)
    keys = tuple(sink.key_properties or ())
    counter = sink.record_counter_metric
    taken = 0
    for record in records:
        context = sink._get_context(record)
        if not SDC_COLUMNS.isdisjoint(record):
            sink._remove_sdc_metadata_from_record(record)
        if not known >= record.keys() or (dates and not dates.parse(record)):
            sink._validate_and_parse(record)
        record = sink.preprocess_record(record, context)  # noqa: PLW2901
        for key in keys:
            if key not in record:
                sink._singer_validate_message(record)
        sink.tally_record_read()
        sink.process_record(record, context)
        counter.increment()
        sink._after_process_record(context)
        if sink.is_full:
            _drain_full(target, sink)
        target._handle_max_record_age()
        taken += 1
    return taken

"""Streaming gzip decompression: whole files read whole, damaged files never pass as whole."""

from __future__ import annotations

import gzip
import os
import zlib

import pytest
from tap_amplitude_cohort.amplitude.decompress import open_decompressed
from tap_amplitude_cohort.amplitude.errors import ExportCorrupt

PAYLOAD = b"".join(b'"%d","user-%d","name \xc3\xa9"\n' % (i, i) for i in range(20000))


def chunks(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


@pytest.mark.parametrize("size", [1, 3, 4096, 1 << 20])
def test_whole_gzip_reads_back_exactly_whatever_the_chunking(size):
    data = gzip.compress(PAYLOAD)
    assert open_decompressed(chunks(data, size), what="x").read() == PAYLOAD


def test_multi_member_gzip_is_read_to_the_end():
    data = gzip.compress(PAYLOAD[:1000]) + gzip.compress(PAYLOAD[1000:])
    assert open_decompressed(chunks(data, 333), what="x").read() == PAYLOAD


@pytest.mark.parametrize("cut", [5, 100, -20, -8, -1])
def test_truncated_gzip_raises_instead_of_ending_early(cut):
    data = gzip.compress(PAYLOAD)
    reader = open_decompressed(chunks(data[:cut], 4096), what="the export of cohort abc")
    with pytest.raises(ExportCorrupt, match="the export of cohort abc is truncated"):
        reader.read()


def test_corrupt_gzip_raises():
    data = bytearray(gzip.compress(PAYLOAD))
    data[200:260] = os.urandom(60)
    with pytest.raises(ExportCorrupt, match="cohort abc"):
        open_decompressed([bytes(data)], what="cohort abc").read()


def test_garbage_after_the_gzip_stream_raises():
    data = gzip.compress(PAYLOAD) + b"<html>oops</html>"
    with pytest.raises(ExportCorrupt, match="not valid gzip"):
        open_decompressed([data], what="x").read()


def test_plain_body_passes_through_and_empty_body_is_empty():
    assert open_decompressed(chunks(PAYLOAD, 1000), what="x").read() == PAYLOAD
    assert open_decompressed([], what="x").read() == b""
    assert open_decompressed([b"", b"a"], what="x").read() == b"a"


def test_output_is_produced_incrementally_from_a_highly_compressible_stream():
    # 64 MiB of zeros compress to ~64 KiB; reading 1 KiB must not inflate all of it at once.
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    data = compressor.compress(b"\0" * (64 << 20)) + compressor.flush()
    raw = open_decompressed([data], what="x").raw
    buffer = bytearray(1024)
    assert raw.readinto(buffer) == 1024
    assert len(raw._out) <= 1 << 18  # bounded by max_output, not by the file

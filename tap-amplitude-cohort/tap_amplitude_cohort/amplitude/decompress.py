"""Incremental gzip decompression of a streamed body, with end-of-stream verification.

Pure: takes an iterable of byte chunks (the network layer supplies them) and exposes a binary
file object. Memory stays bounded by the chunk size and ``max_output`` whatever the file size.
A gzip stream that ends before its trailer (a truncated file) raises :class:`ExportCorrupt`
instead of reading as a shorter, apparently valid file.
"""

from __future__ import annotations

import io
import zlib
from collections.abc import Iterable, Iterator

from tap_amplitude_cohort.amplitude.errors import ExportCorrupt

GZIP_MAGIC = b"\x1f\x8b"
_GZIP_WBITS = 16 + zlib.MAX_WBITS


class DecompressingReader(io.RawIOBase):
    """A readable binary stream over gzip (or plain, sniffed by magic bytes) chunks.

    Args:
        chunks: The body as it arrives, compressed or not.
        what: Names the file in error messages (e.g. "the export of cohort abc").
        max_output: Upper bound of decompressed bytes produced per input step.
    """

    def __init__(self, chunks: Iterable[bytes], *, what: str, max_output: int = 1 << 18) -> None:
        super().__init__()
        self._chunks: Iterator[bytes] = iter(chunks)
        self._what = what
        self._max_output = max_output
        self._gzip: bool | None = None  # decided on the first two bytes
        self._head = b""
        self._decompressor = zlib.decompressobj(_GZIP_WBITS)
        self._member_started = False
        self._pending = b""  # compressed input not fed yet
        self._out = b""
        self._out_pos = 0
        self._input_done = False
        self._finished = False

    def readable(self) -> bool:  # noqa: D102
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        """Fill ``buffer`` with decompressed bytes; 0 means the whole file was read."""
        while self._out_pos >= len(self._out):
            if self._finished:
                return 0
            self._out = self._step()
            self._out_pos = 0
        size = min(len(buffer), len(self._out) - self._out_pos)
        buffer[:size] = self._out[self._out_pos : self._out_pos + size]
        self._out_pos += size
        return size

    def _next_chunk(self) -> bytes | None:
        if self._input_done:
            return None
        for chunk in self._chunks:
            if chunk:
                return bytes(chunk)
        self._input_done = True
        return None

    def _step(self) -> bytes:
        if self._gzip is None:
            return self._sniff()
        if not self._gzip:
            chunk = self._next_chunk()
            if chunk is None:
                self._finished = True
                return b""
            return chunk
        return self._inflate()

    def _sniff(self) -> bytes:
        while len(self._head) < len(GZIP_MAGIC):
            chunk = self._next_chunk()
            if chunk is None:
                break
            self._head += chunk
        self._gzip = self._head.startswith(GZIP_MAGIC)
        head, self._head = self._head, b""
        if self._gzip:
            self._pending = head
            return b""
        if not head:
            self._finished = True
        return head

    def _inflate(self) -> bytes:
        if not self._pending:
            chunk = self._next_chunk()
            if chunk is None:
                return self._end_of_input()
            self._pending = chunk
        data, self._pending = self._pending, b""
        self._member_started = True
        try:
            out = self._decompressor.decompress(data, self._max_output)
        except zlib.error as exc:
            msg = f"{self._what} is not valid gzip ({exc})"
            raise ExportCorrupt(msg) from exc
        if self._decompressor.eof:
            # A gzip file may hold several members; anything after one must be another.
            # (unused_data holds all input past the end, even when max_output was reached.)
            self._pending = self._decompressor.unused_data
            self._decompressor = zlib.decompressobj(_GZIP_WBITS)
            self._member_started = False
        elif self._decompressor.unconsumed_tail:
            self._pending = self._decompressor.unconsumed_tail
        return out

    def _end_of_input(self) -> bytes:
        if self._member_started:
            out = self._decompressor.flush()
            msg = (
                f"{self._what} is truncated: the gzip stream ended before its end marker "
                f"({len(out)} trailing bytes discarded)"
            )
            raise ExportCorrupt(msg)
        self._finished = True
        return b""


def open_decompressed(chunks: Iterable[bytes], *, what: str) -> io.BufferedReader:
    """Return a buffered binary reader of the decompressed body.

    Args:
        chunks: The body as it arrives, gzip-compressed or plain.
        what: Names the file in error messages.

    Returns:
        A binary file object; reading past a truncated gzip stream raises ExportCorrupt.
    """
    return io.BufferedReader(DecompressingReader(chunks, what=what), buffer_size=1 << 16)

"""Reads Singer input and reports a bad line by number, stream and problem, never its content.

The SDK's readers log and raise with the raw line (a member's email and user properties) and
some SDK errors quote record values; those messages reach the log at ERROR. This reader
replaces them with a sentence that names where and what, and keeps the original at DEBUG.
"""

from __future__ import annotations

import logging
import re
from collections import Counter, defaultdict
from collections.abc import Callable
from typing import IO

import msgspec
from singer_sdk.contrib.msgspec import MsgSpecReader, decoder
from singer_sdk.exceptions import (
    ConfigValidationError,
    MissingKeyPropertiesError,
    RecordsWithoutSchemaException,
)
from singer_sdk.singerlib.exceptions import InvalidInputLine

LOGGER = logging.getLogger("target_sendgrid_contacts")

# Errors whose text names streams, keys or settings only, and that the SDK's own tests expect.
_SAFE_SDK_ERRORS = (ConfigValidationError, MissingKeyPropertiesError, RecordsWithoutSchemaException)
# Our own errors (and the HTTP library's) are written never to carry personal data.
_SAFE_MODULES = ("target_sendgrid_contacts", "requests", "urllib3")
_STREAM_IN_RAW_LINE = re.compile(r'"stream"\s*:\s*"([A-Za-z0-9_.\-]{1,100})"')
_STREAM_NAME = re.compile(r"[A-Za-z0-9_.\- ]{1,100}")
_MESSAGE_TYPE = re.compile(r"[A-Z_]{1,30}")
_BAD_TIMESTAMP = re.compile(r"^Could not parse value .* for field '([^']{1,100})'\.?$", re.S)


class InputLineError(InvalidInputLine):
    """A line of input cannot be used; the message names the line, never its content."""


def _where(line_number: int, stream: str | None) -> str:
    return f"Input line {line_number}" + (f" (stream {stream!r})" if stream else "")


def _is_safe(exc: BaseException) -> bool:
    if isinstance(exc, (InputLineError, *_SAFE_SDK_ERRORS)) or not isinstance(exc, Exception):
        return True  # SystemExit, KeyboardInterrupt and friends pass untouched
    return type(exc).__module__.split(".")[0] in _SAFE_MODULES


def describe_failure(exc: BaseException) -> str:
    """Say what went wrong with a message without quoting any value from it.

    Args:
        exc: An error raised while the SDK or a sink handled one message.

    Returns:
        A short description (the error type, and the field for a bad timestamp).
    """
    match = _BAD_TIMESTAMP.match(str(exc))
    if match:
        return f"field {match.group(1)!r} is not a valid date or date-time"
    return f"it could not be processed ({type(exc).__name__}; details at DEBUG level)"


class PrivateMsgSpecReader(MsgSpecReader):
    """The SDK's msgspec reader, with error messages that keep personal data out of the log.

    Attributes:
        line_number: Number of the line being processed (1-based; 0 before the first).
        stream: Stream of that line, when it names one.
    """

    def __init__(self) -> None:
        """Start before the first line."""
        super().__init__()
        self.line_number = 0
        self.stream: str | None = None
        self._last_line_complete = True
        self._shown_streams: dict[str, str] = {}  # stream names checked fit to be logged
        # Told of any failure while reading, so the run can report what it did before it.
        self.on_failure: Callable[[BaseException], None] | None = None

    def process_lines(
        self,
        file_input: IO[str] | None,
        callbacks: dict[str, Callable[[dict], None]],
    ) -> Counter[str]:
        """Process each line as the SDK does, numbering them for error messages.

        Args:
            file_input: Readable stream of messages, one a line.
            callbacks: Message type to handler.

        Returns:
            Lines processed per message type.

        Raises:
            InputLineError: A line is not JSON, not a message, or could not be processed.
        """
        try:
            return self._process_lines(file_input, callbacks)
        except BaseException as exc:
            if self.on_failure is not None:
                self.on_failure(exc)
            raise

    def _process_lines(
        self,
        file_input: IO[str] | None,
        callbacks: dict[str, Callable[[dict], None]],
    ) -> Counter[str]:
        stats: dict[str, int] = defaultdict(int)
        for line in file_input or self.default_input:
            self.line_number += 1
            self.stream = None
            self._last_line_complete = line.endswith("\n")
            message = self.deserialize_json(line)
            self.assert_line_requires(message, requires={"type"})
            message_type = message["type"]
            stream = message.get("stream")
            if stream is not None:
                self.stream = self._shown_streams.get(stream) if type(stream) is str else None
                if self.stream is None and type(stream) is str and _STREAM_NAME.fullmatch(stream):
                    self.stream = self._shown_streams[stream] = stream
            callback = callbacks.get(message_type)
            try:
                if callback is None:
                    self._process_unknown_message(message)
                else:
                    callback(message)
            except BaseException as exc:
                if _is_safe(exc):
                    raise
                LOGGER.debug("Input line %d failed", self.line_number, exc_info=True)
                msg = f"{_where(self.line_number, self.stream)}: {describe_failure(exc)}"
                raise InputLineError(msg) from None
            stats[message_type] += 1
        return Counter(**stats)

    def deserialize_json(self, line: str) -> dict:
        """Decode one line; a bad line is named by number and problem, not shown.

        Args:
            line: One line of input.

        Returns:
            The message.

        Raises:
            InputLineError: The line is not JSON, or not a JSON object.
        """
        try:
            message = decoder.decode(line)
        except msgspec.DecodeError as exc:
            found = _STREAM_IN_RAW_LINE.search(line[:2000])
            where = _where(self.line_number, found.group(1) if found else None)
            if not self._last_line_complete:
                problem = "the last line is cut short (the input ended inside a message)"
            else:
                # msgspec says where and what ("invalid character (byte 12)"), not the content.
                problem = f"not valid JSON ({exc})"
            msg = f"{where}: {problem}; its content is not shown (it may hold personal data)"
            raise InputLineError(msg) from None
        if not isinstance(message, dict):
            msg = (
                f"{_where(self.line_number, None)}: a JSON {type(message).__name__}, not a "
                "Singer message (an object with a type)"
            )
            raise InputLineError(msg)
        return message

    def error(self, problem: str) -> InputLineError:
        """An error about the line being processed.

        Args:
            problem: What is wrong (no content of the line).

        Returns:
            The error, naming line number and stream.
        """
        return InputLineError(f"{_where(self.line_number, self.stream)}: {problem}")

    def assert_line_requires(  # type: ignore[override]
        self, line_dict: dict, requires: set[str]
    ) -> None:
        """Check that a message has the keys it needs, naming only the missing keys.

        Args:
            line_dict: The message.
            requires: Keys it must have.

        Raises:
            InputLineError: A key is missing.
        """
        missing = requires - set(line_dict)
        if missing:
            kind = line_dict.get("type")
            kind = kind if isinstance(kind, str) and _MESSAGE_TYPE.fullmatch(kind) else "message"
            msg = (
                f"{_where(self.line_number, self.stream)}: the {kind} lacks "
                f"{', '.join(sorted(missing))}"
            )
            raise InputLineError(msg)

    def _process_unknown_message(self, message_dict: dict) -> None:
        kind = message_dict.get("type")
        shown = repr(kind) if isinstance(kind, str) and _MESSAGE_TYPE.fullmatch(kind) else "that"
        msg = (
            f"{_where(self.line_number, self.stream)}: message type {shown} is not a Singer "
            "message this target handles (SCHEMA, RECORD, STATE, BATCH); the run stops and "
            "STATE is not written"
        )
        raise InputLineError(msg)

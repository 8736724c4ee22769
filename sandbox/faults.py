"""Fault injection: rules that make the next matching requests fail in a chosen way.

A rule matches a service, a method and a path regex, hits ``times`` requests (None: every one),
and does one thing: answer with a given status / headers / body, answer SendGrid's 429, wait
before answering normally, cut the body after N bytes, flip the body byte at offset N (a
corrupt file delivered whole), or drop the connection without answering.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from http import HTTPStatus

SERVICES = ("amplitude", "sendgrid", "storage")
ACTIONS = ("respond", "rate_limited", "delay", "truncate", "corrupt", "drop")

_RATE_LIMIT_BODY = json.dumps({"errors": [{"field": None, "message": "too many requests"}]})


@dataclass
class FaultRule:
    """One fault rule (see module docstring). Exactly one action field is set.

    Attributes:
        service: ``amplitude``, ``sendgrid``, ``storage`` or ``*``.
        method: HTTP method or ``*``.
        path: Regex searched in the request path.
        times: How many matching requests it hits; None for every one.
        status: Respond with this status (``body`` / ``headers`` optional).
        body: Body of a ``status`` answer (str, or a JSON-serialisable value).
        headers: Extra headers of a ``status`` answer.
        rate_limited: Answer SendGrid's 429 with X-RateLimit-* headers.
        reset_in: Seconds until X-RateLimit-Reset for ``rate_limited``.
        delay: Seconds to wait before passing the request on.
        truncate_after: Send this many body bytes, then drop the connection.
        corrupt_at: Send the whole body with the byte at this offset inverted.
        drop: Drop the connection without answering.
        id: Identifier of the rule (for DELETE).
        hits: How many requests it has hit so far.
    """

    service: str = "*"
    method: str = "*"
    path: str = ".*"
    times: int | None = 1
    status: int | None = None
    body: object = None
    headers: dict[str, str] = field(default_factory=dict)
    rate_limited: bool = False
    reset_in: float = 1.0
    delay: float | None = None
    truncate_after: int | None = None
    corrupt_at: int | None = None
    drop: bool = False
    id: int = 0
    hits: int = 0

    def __post_init__(self) -> None:
        if self.service != "*" and self.service not in SERVICES:
            msg = f"unknown service {self.service!r}; expected one of {SERVICES} or '*'"
            raise ValueError(msg)
        chosen = [
            self.status is not None,
            self.rate_limited,
            self.delay is not None,
            self.truncate_after is not None,
            self.corrupt_at is not None,
            self.drop,
        ]
        if sum(chosen) != 1:
            msg = (
                "a fault needs exactly one of status, rate_limited, delay, truncate_after, "
                "corrupt_at, drop"
            )
            raise ValueError(msg)
        if self.times is not None and self.times < 1:
            msg = "times is a count of requests (>= 1), or None for every request"
            raise ValueError(msg)
        self._regex = re.compile(self.path)

    @property
    def action(self) -> str:
        """The rule's action name, one of ``ACTIONS``."""
        if self.status is not None:
            return "respond"
        if self.rate_limited:
            return "rate_limited"
        if self.delay is not None:
            return "delay"
        if self.truncate_after is not None:
            return "truncate"
        if self.corrupt_at is not None:
            return "corrupt"
        return "drop"

    def matches(self, service: str, method: str, path: str) -> bool:
        """Whether this rule applies to a request."""
        return (
            self.service in ("*", service)
            and self.method in ("*", method.upper())
            and self._regex.search(path) is not None
        )

    def describe(self) -> dict:
        """JSON view of the rule."""
        return {
            "id": self.id,
            "service": self.service,
            "method": self.method,
            "path": self.path,
            "times": self.times,
            "hits": self.hits,
            "action": self.action,
        }


class FaultRegistry:
    """Thread-safe list of fault rules, consulted before every service request."""

    def __init__(self) -> None:
        self._rules: list[FaultRule] = []
        self._lock = threading.Lock()
        self._next_id = 1

    def add(
        self,
        service: str = "*",
        method: str = "*",
        path_regex: str = ".*",
        times: int | None = 1,
        *,
        path: str | None = None,
        **action: object,
    ) -> FaultRule:
        """Add a rule matching ``path_regex`` (or its alias ``path``) with one action.

        The action is one of: ``status=`` (with optional ``body=``, ``headers=``),
        ``rate_limited=True`` (optional ``reset_in=``), ``delay=`` seconds,
        ``truncate_after=`` bytes, ``corrupt_at=`` a byte offset, ``drop=True``.

        Returns:
            The rule (its ``hits`` count grows as it fires).

        Raises:
            ValueError: Unknown service, or not exactly one action.
        """
        rule = FaultRule(
            service=service,
            method=method.upper(),
            path=path if path is not None else path_regex,
            times=times,
            **action,  # type: ignore[arg-type]
        )
        with self._lock:
            rule.id = self._next_id
            self._next_id += 1
            self._rules.append(rule)
        return rule

    def remove(self, rule_id: int) -> bool:
        """Remove a rule by id; False when there was none."""
        with self._lock:
            before = len(self._rules)
            self._rules = [r for r in self._rules if r.id != rule_id]
            return len(self._rules) != before

    def clear(self) -> None:
        """Remove every rule."""
        with self._lock:
            self._rules.clear()

    def rules(self) -> list[FaultRule]:
        """The active rules (a copy)."""
        with self._lock:
            return list(self._rules)

    def take(self, service: str, method: str, path: str) -> FaultRule | None:
        """Find the first rule matching a request and count the hit (exhausted rules go away)."""
        with self._lock:
            for rule in self._rules:
                if rule.matches(service, method, path):
                    rule.hits += 1
                    if rule.times is not None and rule.hits >= rule.times:
                        self._rules.remove(rule)
                    return rule
        return None

    def wrap(self, service: str, app: Callable) -> Callable:
        """Return a WSGI app that applies this registry's faults before ``app``."""

        def faulty(environ: dict, start_response: Callable) -> Iterable[bytes]:
            rule = self.take(service, environ["REQUEST_METHOD"], environ.get("PATH_INFO", ""))
            if rule is None:
                return app(environ, start_response)
            environ["sandbox.fault"] = rule.action
            return _apply(rule, app, environ, start_response)

        return faulty


def _apply(
    rule: FaultRule, app: Callable, environ: dict, start_response: Callable
) -> Iterable[bytes]:
    action = rule.action
    if action == "delay":
        time.sleep(rule.delay or 0.0)
        return app(environ, start_response)
    if action == "drop":
        # The server needs a status to try (and fail) to write; nothing reaches the client.
        start_response(_status_line(500), [("Content-Length", "0")])
        return _HangUp(environ)
    if action == "respond":
        body = rule.body
        if body is None:
            data = b""
            content_type = "text/plain"
        elif isinstance(body, (str, bytes)):
            data = body.encode() if isinstance(body, str) else body
            content_type = "text/plain; charset=utf-8"
        else:
            data = json.dumps(body).encode()
            content_type = "application/json"
        headers = {"Content-Type": content_type, **rule.headers}
        start_response(_status_line(rule.status or 500), list(headers.items()))
        return [data]
    if action == "rate_limited":
        reset = int(time.time() + rule.reset_in)
        start_response(
            _status_line(429),
            [
                ("Content-Type", "application/json"),
                ("X-RateLimit-Limit", "600"),
                ("X-RateLimit-Remaining", "0"),
                ("X-RateLimit-Reset", str(reset)),
            ],
        )
        return [_RATE_LIMIT_BODY.encode()]
    if action == "corrupt":
        return _Corrupted(app(environ, start_response), rule.corrupt_at or 0)
    return _Truncated(app(environ, start_response), rule.truncate_after or 0, environ)


class _HangUp:
    """An empty body that hangs up when the server starts sending it.

    Hanging up there, not inside the app, lets the request log record the drop before the
    client can notice it (a test reading the log right after its ConnectionError sees it).
    """

    def __init__(self, environ: dict) -> None:
        self._environ = environ

    def __iter__(self) -> Iterator[bytes]:
        _hang_up(self._environ)
        return iter(())


class _Truncated:
    """Passes on the first N body bytes, then hangs up (the client sees an incomplete read)."""

    def __init__(self, body: Iterable[bytes], limit: int, environ: dict) -> None:
        self._body = body
        self._limit = limit
        self._environ = environ

    def __iter__(self) -> Iterator[bytes]:
        sent = 0
        for chunk in self._body:
            room = self._limit - sent
            if len(chunk) >= room:
                if room:
                    yield chunk[:room]
                break
            sent += len(chunk)
            yield chunk
        else:
            return  # the whole body fit: nothing to cut
        # Yielding an empty chunk makes the server flush headers + bytes before we hang up.
        yield b""
        _hang_up(self._environ)

    def close(self) -> None:
        close = getattr(self._body, "close", None)
        if close is not None:
            close()


class _Corrupted:
    """Passes the whole body on with one byte inverted (a damaged file, delivered in full)."""

    def __init__(self, body: Iterable[bytes], offset: int) -> None:
        self._body = body
        self._offset = offset

    def __iter__(self) -> Iterator[bytes]:
        start = 0
        for chunk in self._body:
            end = start + len(chunk)
            out = chunk
            if start <= self._offset < end:
                at = self._offset - start
                out = chunk[:at] + bytes([chunk[at] ^ 0xFF]) + chunk[at + 1 :]
            start = end
            yield out

    def close(self) -> None:
        close = getattr(self._body, "close", None)
        if close is not None:
            close()


def _hang_up(environ: dict) -> None:
    """Shut the client connection down without closing the descriptor the server still owns."""
    sock = environ.get("werkzeug.socket")
    if sock is None:
        return
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


def _status_line(status: int) -> str:
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Unknown"
    return f"{status} {phrase}"

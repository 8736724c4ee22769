"""The ``/_sandbox/`` endpoints, served on every sandbox port without authentication.

Ours: ``GET summary``, ``GET requests``, ``GET|POST|DELETE faults``, ``POST reset``,
``POST cohorts/{id}/churn``, ``GET cohorts/{id}/expected``. Everything else under ``/_sandbox/``
goes to the fake SendGrid's ``inspect`` (lists, members, contacts).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from werkzeug.wrappers import Request, Response

if TYPE_CHECKING:
    from sandbox.server import Sandbox

_CHURN = re.compile(r"^/_sandbox/cohorts/([^/]+)/churn$")
_EXPECTED = re.compile(r"^/_sandbox/cohorts/([^/]+)/expected$")
_CHURN_KEYS = frozenset({"remove", "add", "rename", "remove_indices", "rename_indices"})
_FAULT_KEYS = frozenset(
    {
        "service",
        "method",
        "path",
        "path_regex",
        "times",
        "status",
        "body",
        "headers",
        "rate_limited",
        "reset_in",
        "delay",
        "truncate_after",
        "corrupt_at",
        "drop",
    }
)


class Inspection:
    """WSGI app for ``/_sandbox/`` paths of one sandbox."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        """Serve one inspection request (WSGI)."""
        return self.respond(Request(environ))(environ, start_response)

    def respond(self, request: Request) -> Response:
        """Route one inspection request."""
        path, method = request.path, request.method
        sb = self.sandbox
        if path == "/_sandbox/summary" and method == "GET":
            return _json(200, sb.summary())
        if path == "/_sandbox/requests" and method == "GET":
            service = request.args.get("service")
            return _json(200, [r for r in list(sb.requests) if service in (None, r["service"])])
        if path == "/_sandbox/reset" and method == "POST":
            sb.reset()
            return _json(200, {"reset": True})
        if path == "/_sandbox/faults":
            return self._faults(request)
        if match := _CHURN.match(path):
            return self._churn(match.group(1), request) if method == "POST" else _not_allowed()
        if (match := _EXPECTED.match(path)) and method == "GET":
            cohort_id = match.group(1)
            if cohort_id not in sb.generator.specs:
                return _json(404, {"error": f"unknown cohort {cohort_id}"})
            return _json(200, sorted(sb.generator.expected_emails(cohort_id)))
        answer = sb.sendgrid_app.inspect(request)
        if answer is not None:
            return answer
        return _json(404, {"error": f"no sandbox endpoint {method} {path}"})

    def _faults(self, request: Request) -> Response:
        faults = self.sandbox.faults
        if request.method == "GET":
            return _json(200, [rule.describe() for rule in faults.rules()])
        if request.method == "DELETE":
            rule_id = request.args.get("id")
            if rule_id is None:
                faults.clear()
                return _json(200, {"cleared": True})
            return _json(200 if faults.remove(int(rule_id)) else 404, {"id": int(rule_id)})
        if request.method != "POST":
            return _not_allowed()
        specs = _body(request)
        if not isinstance(specs, list):
            specs = [specs]
        added = []
        for spec in specs:
            if not isinstance(spec, dict) or set(spec) - _FAULT_KEYS:
                return _json(400, {"error": f"a fault takes the keys {sorted(_FAULT_KEYS)}"})
            try:
                added.append(faults.add(**spec).describe())
            except (TypeError, ValueError) as exc:
                return _json(400, {"error": str(exc)})
        return _json(201, added if len(added) != 1 else added[0])

    def _churn(self, cohort_id: str, request: Request) -> Response:
        state = self.sandbox.amplitude
        if cohort_id not in state.generator.specs:
            return _json(404, {"error": f"unknown cohort {cohort_id}"})
        changes = _body(request) or {}
        if not isinstance(changes, dict) or set(changes) - _CHURN_KEYS:
            return _json(400, {"error": f"churn takes an object with keys {sorted(_CHURN_KEYS)}"})
        try:
            changed = state.churn(cohort_id, **changes)
        except (TypeError, ValueError) as exc:
            return _json(400, {"error": str(exc)})
        return _json(
            200,
            {
                "cohort": changed["cohort"],
                "removed": [m["amplitude_id"] for m in changed["removed"]],
                "added": [m["amplitude_id"] for m in changed["added"]],
                "renamed": [m["amplitude_id"] for m in changed["renamed"]],
            },
        )


def _body(request: Request) -> object:
    data = request.get_data()
    if not data:
        return None
    try:
        return json.loads(data)
    except ValueError:
        return None


def _json(status: int, body: object) -> Response:
    return Response(json.dumps(body), status=status, content_type="application/json")


def _not_allowed() -> Response:
    return _json(405, {"error": "method not allowed"})

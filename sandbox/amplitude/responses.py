"""The fake Amplitude's answers: JSON, plain text, and its error body."""

from __future__ import annotations

import json

from werkzeug.wrappers import Response


def json_answer(status: int, body: object) -> Response:
    """A JSON answer."""
    return Response(json.dumps(body), status=status, content_type="application/json")


def text_answer(status: int, text: str) -> Response:
    """A plain-text answer (Amplitude's 429s are text)."""
    return Response(text, status=status, content_type="text/plain; charset=utf-8")


def error_answer(status: int, message: str, status_text: str | None = None) -> Response:
    """Amplitude's error body: ``{"error": {"message", "metadata"}}``."""
    error: dict = {"message": message, "metadata": {}}
    if status_text:
        error["metadata"]["status"] = status_text
    return json_answer(status, {"error": error})

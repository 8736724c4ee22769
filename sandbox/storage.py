"""Fake object storage: signed, expiring URLs that refuse requests carrying API credentials.

Stands in for Amplitude's pre-signed S3 URLs and SendGrid's export / errors files.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from werkzeug.wrappers import Request, Response

Body = bytes | Callable[[], Iterable[bytes]]

_S3_TWO_AUTH = (
    '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>InvalidArgument</Code>'
    "<Message>Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, "
    "Signature query string parameter or the Authorization header should be specified</Message>"
    "</Error>"
)
_S3_EXPIRED = (
    '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
    "<Message>Request has expired</Message></Error>"
)
_S3_DENIED = (
    '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
    "<Message>Access Denied</Message></Error>"
)


@dataclass
class StoredObject:
    """One stored file: its body (bytes, or a callable streaming chunks), type and encoding."""

    body: Body
    content_type: str
    content_encoding: str | None


class Storage:
    """Holds files and mints signed URLs to them; also the WSGI app that serves them."""

    def __init__(self, ttl_seconds: float = 60.0) -> None:
        self.base_url = ""  # set by the server once its port is known
        self.ttl_seconds = ttl_seconds
        self._key = secrets.token_bytes(16)
        self._objects: dict[str, StoredObject] = {}
        self._lock = threading.Lock()

    def put(
        self,
        body: Body,
        *,
        content_type: str = "application/octet-stream",
        content_encoding: str | None = "gzip",
        name: str = "file",
    ) -> str:
        """Store a file and return a fresh signed URL to it.

        Args:
            body: The bytes, or a callable returning an iterable of chunks (generated lazily).
            content_type: The Content-Type to serve.
            content_encoding: The Content-Encoding to serve (gzip by default), or None.
            name: Last path segment, for readable URLs.

        Returns:
            An absolute URL, valid for ``ttl_seconds``.
        """
        key = f"{secrets.token_hex(8)}/{name}"
        with self._lock:
            self._objects[key] = StoredObject(body, content_type, content_encoding)
        return self.sign(key)

    def sign(self, key: str) -> str:
        """Return a fresh signed URL for a stored key."""
        expires = int(time.time() + self.ttl_seconds)
        signature = self._signature(key, expires)
        return (
            f"{self.base_url}/files/{key}?X-Amz-Algorithm=AWS4-HMAC-SHA256"
            f"&X-Amz-Expires={int(self.ttl_seconds)}&Expires={expires}&X-Amz-Signature={signature}"
        )

    def _signature(self, key: str, expires: int) -> str:
        return hmac.new(self._key, f"{key}:{expires}".encode(), hashlib.sha256).hexdigest()

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        """Serve a stored file (WSGI)."""
        return self.respond(Request(environ))(environ, start_response)

    def respond(self, request: Request) -> Response:
        """Answer one storage request as S3 would."""
        if request.headers.get("Authorization"):
            return Response(_S3_TWO_AUTH, status=400, content_type="application/xml")
        key = request.path.removeprefix("/files/")
        try:
            expires = int(request.args.get("Expires", ""))
        except ValueError:
            return Response(_S3_DENIED, status=403, content_type="application/xml")
        good = hmac.compare_digest(
            self._signature(key, expires), request.args.get("X-Amz-Signature", "")
        )
        with self._lock:
            obj = self._objects.get(key)
        if not good or obj is None:
            return Response(_S3_DENIED, status=403, content_type="application/xml")
        if time.time() > expires:
            return Response(_S3_EXPIRED, status=403, content_type="application/xml")
        if callable(obj.body):
            response = Response(obj.body(), content_type=obj.content_type, direct_passthrough=True)
        else:
            response = Response(obj.body, content_type=obj.content_type)
        if obj.content_encoding:
            response.headers["Content-Encoding"] = obj.content_encoding
        return response

"""Errors raised by the SendGrid client, worded for the person running the sync."""

from __future__ import annotations

import re

# SendGrid sometimes quotes the offending address in its messages; emails are personal data.
_EMAIL_LIKE = re.compile(r"[^\s@'\"<>(),;:]+@[^\s@'\"<>(),;:]+")

UNAUTHORIZED_SENTENCE = (
    "SendGrid refused the API key (401 authorization required): check the api_key setting."
)
FORBIDDEN_SENTENCE = (
    "The SendGrid API key has no Marketing permission (403 access forbidden): "
    "use Full Access, or Restricted Access with Marketing permission."
)


def redact_emails(text: str) -> str:
    """Replace anything that looks like an email address with ``<email>``.

    Args:
        text: A message that may quote addresses.

    Returns:
        The message without addresses.
    """
    return _EMAIL_LIKE.sub("<email>", text)


class SendGridError(Exception):
    """Base class of every error the SendGrid client raises."""


class SendGridAPIError(SendGridError):
    """SendGrid answered with a status the caller did not accept.

    Attributes:
        status: HTTP status code.
        messages: SendGrid's error messages (addresses redacted).
        method: HTTP method of the call.
        path: Path template of the call (ids replaced, no query string).
    """

    def __init__(self, status: int, messages: list[str], method: str, path: str) -> None:
        self.status = status
        self.messages = [redact_emails(m) for m in messages]
        self.method = method
        self.path = path
        super().__init__(self._sentence())

    def _sentence(self) -> str:
        detail = "; ".join(self.messages) if self.messages else "no message"
        if not self.path.startswith("/"):
            # A file URL (export, errors file): no API key was sent, so the key is not the cause.
            return (
                f"The file host refused {self.method} {self.path} with {self.status} (a "
                f"pre-signed link is refused like this once it has expired): {detail}"
            )
        if self.status == 401:
            return UNAUTHORIZED_SENTENCE
        if self.status == 403:
            return FORBIDDEN_SENTENCE
        return f"SendGrid answered {self.status} to {self.method} {self.path}: {detail}"


class SendGridUnavailableError(SendGridError):
    """Retries ran out on 429, 5xx, timeouts or dropped connections."""


class JobFailedError(SendGridError):
    """A SendGrid job ended with status ``failed``."""


class JobTimeoutError(SendGridError):
    """A SendGrid job was still pending when the wait bound ran out."""

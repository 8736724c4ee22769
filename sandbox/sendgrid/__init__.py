"""The fake SendGrid Marketing API: the WSGI app (``app``) over the account state (``state``)."""

from __future__ import annotations

from sandbox.sendgrid.app import SendGridApp
from sandbox.sendgrid.state import SendGridState

__all__ = ["SendGridApp", "SendGridState"]

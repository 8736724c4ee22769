"""Local sandbox of the Amplitude cohort and SendGrid Marketing APIs."""

from __future__ import annotations

from sandbox.config import SandboxConfig
from sandbox.server import Sandbox

__all__ = ["Sandbox", "SandboxConfig"]

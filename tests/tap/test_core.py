"""The SDK's standard tap tests, against a sandbox started for this module."""

from __future__ import annotations

import socket

import pytest
from singer_sdk.testing import SuiteConfig, get_tap_test_class
from tap_amplitude_cohort.tap import TapAmplitudeCohort

from sandbox import Sandbox, SandboxConfig
from sandbox.config import AMPLITUDE_API_KEY, AMPLITUDE_SECRET_KEY
from tests.tap.harness import SEEDED_IDS

# get_tap_test_class needs the config when the class is built; the sandbox's port is filled in
# by the fixture below, before the SDK's class-scoped runner first syncs.
CONFIG: dict = {
    "api_url": "http://127.0.0.1:9",
    "api_key": AMPLITUDE_API_KEY,
    "secret_key": AMPLITUDE_SECRET_KEY,
    "cohort_ids": list(SEEDED_IDS),
    "poll_interval_seconds": 0.02,
}

# No record limit: the standard tests then see whole cohorts and the cohort_syncs records.
StandardTests = get_tap_test_class(
    TapAmplitudeCohort, config=CONFIG, suite_config=SuiteConfig(max_records_limit=None)
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.integration
class TestTapAmplitudeCohort(StandardTests):
    """Standard SDK tap, stream and attribute tests."""

    @pytest.fixture(scope="class", autouse=True)
    @classmethod
    def _sandbox(cls):
        sandbox = Sandbox(
            SandboxConfig(amplitude_port=_free_port(), export_polls_before_ready=1)
        ).start()
        CONFIG["api_url"] = sandbox.amplitude_url
        yield sandbox
        sandbox.stop()

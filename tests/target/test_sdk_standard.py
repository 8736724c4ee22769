"""The Singer SDK's standard target tests that apply, run against the sandbox.

The streams carry arbitrary data (mostly without an email), so records end as rejections or
upserts into a list named after the stream; the tests check that the target neither crashes
nor loses SDK behaviour (schema changes, key properties, errors for malformed input). They run
through the SDK's own templates because the target needs a live key check, so the suite class
(built at import time, before a sandbox exists) cannot be used.

Left out: ``TargetMultipleStateMessages`` expects STATE relayed at each intermediate checkpoint.
This target emits STATE once, at the end, after every upsert job finished and after mirror
removals, so that the tap's bookmarks never advance past work that could still fail (the SDK
writes STATE only in ``drain_all`` anyway; see the contract in docs/architecture.md).
"""

from __future__ import annotations

import json

import pytest
from singer_sdk.testing import target_tests
from singer_sdk.testing.config import SuiteConfig
from singer_sdk.testing.runners import TargetTestRunner
from target_sendgrid_contacts.target import TargetSendGridContacts

pytestmark = pytest.mark.integration

STANDARD_TESTS = [
    target_tests.TargetArrayData,
    target_tests.TargetCamelcaseComplexSchema,
    target_tests.TargetCamelcaseTest,
    target_tests.TargetCliPrintsTest,
    target_tests.TargetDuplicateRecords,
    target_tests.TargetEncodedStringData,
    target_tests.TargetInvalidSchemaTest,
    target_tests.TargetNoPrimaryKeys,
    target_tests.TargetOptionalAttributes,
    target_tests.TargetRecordBeforeSchemaTest,
    target_tests.TargetRecordMissingKeyProperty,
    target_tests.TargetRecordMissingRequiredProperty,
    target_tests.TargetSchemaNoProperties,
    target_tests.TargetSchemaUpdates,
    target_tests.TargetPrimaryKeyUpdates,
    target_tests.TargetSpecialCharsInAttributes,
    target_tests.TargetRecordMissingOptionalFields,
]


@pytest.mark.parametrize("template", STANDARD_TESTS, ids=lambda t: t.name)
def test_sdk_standard(template, sandbox, tmp_path):
    config = {
        "api_key": sandbox.sendgrid_api_key,
        "api_url": sandbox.sendgrid_url,
        "job_poll_interval_seconds": 0.02,
        "report_path": str(tmp_path / "report.json"),
    }
    runner = TargetTestRunner(TargetSendGridContacts, config=config)
    template().run(SuiteConfig(), None, runner)
    report = tmp_path / "report.json"
    if report.exists():
        assert json.loads(report.read_text())["totals"]["adds_up"] is True
    assert [r for r in sandbox.requests if r.get("violation")] == []

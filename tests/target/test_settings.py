"""Settings are checked before anything runs, with messages naming the setting."""

from __future__ import annotations

import dataclasses

import pytest
from target_sendgrid_contacts.settings import CONFIG_SCHEMA, Settings, settings_from_config


def test_defaults():
    settings = settings_from_config({"api_key": "SG.x"})
    assert settings.base_url == "https://api.sendgrid.com"
    assert settings.sync_mode == "mirror"
    assert settings.mirror
    assert settings.on_invalid_email == "skip"
    assert settings.list_name_template == "[Amplitude] {cohort_name}: {cohort_id}"
    assert settings.max_jobs_in_flight >= 67  # a 2,000,000-member cohort's bodies, all at once


def test_eu_region():
    assert settings_from_config({"api_key": "k", "region": "eu"}).base_url == (
        "https://api.eu.sendgrid.com"
    )


@pytest.mark.parametrize(
    ("config", "named"),
    [
        ({}, "api_key"),
        ({"api_key": "k", "api_url": "http://sendgrid.example.com"}, "api_url"),
        ({"api_key": "k", "max_removal_ratio": 1.5}, "max_removal_ratio"),
        ({"api_key": "k", "custom_fields": {"9lives": "a"}}, "custom_fields"),
        ({"api_key": "k", "custom_fields": {"email": "a"}}, "custom_fields"),
        ({"api_key": "k", "sync_mode": "replace"}, "sync_mode"),
        ({"api_key": "k", "list_name_template": "{nope}"}, "list_name_template"),
        ({"api_key": "k", "job_poll_interval_seconds": -1}, "job_poll_interval_seconds"),
        ({"api_key": "k", "max_jobs_in_flight": 0}, "max_jobs_in_flight"),
    ],
)
def test_wrong_settings_are_named(config, named):
    with pytest.raises(ValueError, match=named):
        settings_from_config(config)


def test_the_api_key_is_not_in_the_settings_repr():
    settings = settings_from_config({"api_key": "SG.very-secret"})
    assert settings.api_key == "SG.very-secret"
    assert "very-secret" not in repr(settings)


def test_every_declared_setting_is_read_once_into_settings():
    read = {f.name for f in dataclasses.fields(Settings)} - {"base_url"}
    assert read == set(CONFIG_SCHEMA["properties"])


def test_defaults_and_bounds_come_from_the_schema():
    settings = settings_from_config({"api_key": "k"})
    for name, declared in CONFIG_SCHEMA["properties"].items():
        if "default" in declared:
            assert getattr(settings, name) == declared["default"], name
    with pytest.raises(ValueError, match="batch_size_rows"):
        settings_from_config({"api_key": "k", "batch_size_rows": 0})


def test_a_blank_or_null_setting_means_unset():
    settings = settings_from_config(
        {"api_key": "k", "email_field": "", "list_name": "  ", "max_removal_ratio": None}
    )
    assert settings.email_field == "email"
    assert settings.list_name is None
    assert settings.max_removal_ratio is None

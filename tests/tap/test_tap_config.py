"""Settings: API host selection, the https rule, the settings list kept in step."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from singer_sdk.exceptions import ConfigValidationError
from tap_amplitude_cohort.tap import TapAmplitudeCohort, resolve_api_url

ROOT = Path(__file__).resolve().parents[2]
KEYS = {"api_key": "k", "secret_key": "s"}


@pytest.mark.parametrize(
    ("config", "url"),
    [
        ({}, "https://amplitude.com"),
        ({"region": "us"}, "https://amplitude.com"),
        ({"region": "eu"}, "https://analytics.eu.amplitude.com"),
        ({"region": "eu", "api_url": "https://proxy.example.com/"}, "https://proxy.example.com"),
        ({"api_url": "http://127.0.0.1:8761"}, "http://127.0.0.1:8761"),
        ({"api_url": "http://localhost:8761"}, "http://localhost:8761"),
        ({"api_url": "http://[::1]:8761"}, "http://[::1]:8761"),
        ({"api_url": "http://127.3.4.5"}, "http://127.3.4.5"),
    ],
)
def test_api_url_resolution(config, url):
    assert resolve_api_url(config) == url


@pytest.mark.parametrize(
    "api_url",
    ["http://amplitude.com", "http://10.0.0.5:8761", "http://127.0.0.1.evil.com", "ftp://x"],
)
def test_plain_http_off_loopback_is_a_config_error(api_url):
    with pytest.raises(ConfigValidationError, match="api_url"):
        TapAmplitudeCohort(config={**KEYS, "api_url": api_url})


def test_unknown_region_is_a_config_error():
    with pytest.raises(ConfigValidationError):
        TapAmplitudeCohort(config={**KEYS, "region": "apac"})


def test_eu_region_calls_the_eu_host(requests_mock):
    requests_mock.get(
        "https://analytics.eu.amplitude.com/api/3/cohorts", json={"cohorts": [{"id": "x"}]}
    )
    tap = TapAmplitudeCohort(config={**KEYS, "region": "eu"})
    records = list(tap.streams["cohorts"].get_records(None))
    assert [r["id"] for r in records] == ["x"]
    assert requests_mock.last_request.hostname == "analytics.eu.amplitude.com"


def test_secrets_are_marked_secret_and_settings_match_meltano_yml():
    schema = TapAmplitudeCohort.config_jsonschema["properties"]
    assert schema["api_key"].get("secret") is True
    assert schema["secret_key"].get("secret") is True
    meltano = yaml.safe_load((ROOT / "meltano.yml").read_text())
    (extractor,) = [
        p for p in meltano["plugins"]["extractors"] if p["name"] == "tap-amplitude-cohort"
    ]
    names = [s["name"] for s in extractor["settings"]]
    sdk_builtins = {n for n in schema if n.startswith(("stream_map", "faker", "flattening"))}
    assert names == [n for n in schema if n not in sdk_builtins]
    sensitive = {s["name"] for s in extractor["settings"] if s.get("sensitive")}
    assert sensitive == {"api_key", "secret_key"}
    readme = (ROOT / "tap-amplitude-cohort" / "README.md").read_text()
    for name in names:
        assert f"| `{name}`" in readme


def test_streams_come_in_the_contract_order():
    tap = TapAmplitudeCohort(config=KEYS)
    assert list(tap.streams) == ["cohorts", "cohort_members", "cohort_syncs"]
    catalog = tap.catalog_dict["streams"]
    assert [s["tap_stream_id"] for s in catalog] == ["cohorts", "cohort_members", "cohort_syncs"]
    members = next(s for s in catalog if s["tap_stream_id"] == "cohort_members")
    assert list(members["key_properties"]) == ["cohort_id", "amplitude_id"]


def test_named_property_keys_are_declared_in_the_schema():
    tap = TapAmplitudeCohort(config={**KEYS, "user_property_keys": ["email", "gp:plan"]})
    props = tap.streams["cohort_members"].schema["properties"]["user_properties"]
    assert set(props["properties"]) == {"email", "plan"}


def test_settings_are_read_once_with_the_schema_defaults():
    tap = TapAmplitudeCohort(config={**KEYS, "cohort_ids": ["a", " a", "b"]})
    schema = TapAmplitudeCohort.config_jsonschema["properties"]
    settings = tap.settings
    assert settings.cohort_ids == ("a", "b")
    assert settings.poll_interval_seconds == schema["poll_interval_seconds"]["default"]
    assert settings.max_export_wait_seconds == schema["max_export_wait_seconds"]["default"]
    assert settings.include_user_properties is schema["include_user_properties"]["default"]
    assert settings.export_options == "props=1"
    assert "api_key" not in repr(settings)
    assert "secret_key" not in repr(settings)


def test_a_null_setting_means_its_default():
    tap = TapAmplitudeCohort(
        config={**KEYS, "poll_interval_seconds": None, "include_user_properties": None}
    )
    assert tap.settings.poll_interval_seconds == 5
    assert tap.settings.export_options == "props=1"

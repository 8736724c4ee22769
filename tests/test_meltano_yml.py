"""meltano.yml declares each plugin's settings as the plugin itself does (``--about``)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent

# Settings the SDK adds to every plugin's schema (capabilities); meltano.yml may declare them.
SDK_SETTINGS = (
    "stream_map",
    "flattening",
    "faker",
    "batch_config",
    "add_record_metadata",
    "load_method",
    "validate_records",
    "hard_delete",
    "default_target_schema",
    "process_activate_version",
    "target_schema",
)
# meltano.yml kind -> JSON schema type it stands for.
KIND_TYPES = {
    "string": "string",
    "password": "string",
    "options": "string",
    "array": "array",
    "object": "object",
    "boolean": "boolean",
    "integer": "integer",
    "decimal": "number",
}
PLUGINS = [("extractors", "tap-amplitude-cohort"), ("loaders", "target-sendgrid-contacts")]


def _about(executable: str) -> dict:
    done = subprocess.run(
        [str(BIN / executable), "--about", "--format=json"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return json.loads(done.stdout)["settings"]["properties"]


def _declared(kind: str, name: str) -> dict[str, dict]:
    project = yaml.safe_load((ROOT / "meltano.yml").read_text(encoding="utf-8"))
    (plugin,) = [p for p in project["plugins"][kind] if p["name"] == name]
    return {s["name"]: s for s in plugin["settings"]}


def _json_type(prop: dict) -> str:
    types = prop["type"] if isinstance(prop["type"], list) else [prop["type"]]
    (non_null,) = [t for t in types if t != "null"]
    return non_null


@pytest.fixture(scope="module", params=PLUGINS, ids=[name for _, name in PLUGINS])
def plugin(request: pytest.FixtureRequest) -> tuple[str, dict[str, dict], dict[str, dict]]:
    kind, name = request.param
    return name, _declared(kind, name), _about(name)


def test_meltano_yml_declares_every_setting_the_plugin_has_and_no_other(plugin):
    name, declared, schema = plugin
    own = {k for k in schema if not k.startswith(SDK_SETTINGS)}
    assert set(declared) <= set(schema), f"{name}: meltano.yml declares settings it does not have"
    assert own <= set(declared), f"{name}: missing from meltano.yml: {sorted(own - set(declared))}"


def test_meltano_yml_kinds_match_the_schema_types(plugin):
    name, declared, schema = plugin
    for key, spec in declared.items():
        assert KIND_TYPES[spec["kind"]] == _json_type(schema[key]), f"{name}.{key}"
        if spec["kind"] == "options":
            values = [option["value"] for option in spec["options"]]
            assert values == schema[key]["enum"], f"{name}.{key}: options differ from the enum"
        else:
            assert "enum" not in schema[key], f"{name}.{key} has allowed values: kind options"


def test_meltano_yml_values_are_the_schema_defaults(plugin):
    name, declared, schema = plugin
    for key, spec in declared.items():
        assert spec.get("value") == schema[key].get("default"), f"{name}.{key}"


def test_meltano_yml_marks_exactly_the_secrets_sensitive(plugin):
    name, declared, schema = plugin
    for key, spec in declared.items():
        assert bool(spec.get("sensitive")) == bool(schema[key].get("secret")), f"{name}.{key}"
        if spec.get("sensitive"):
            assert spec["kind"] == "password", f"{name}.{key}: a secret is kind password"
        assert spec.get("description"), f"{name}.{key} has no description in meltano.yml"

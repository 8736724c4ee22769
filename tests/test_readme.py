"""The README tells the truth about the settings and the commands it promises."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml
from target_sendgrid_contacts.target import TargetSendGridContacts

ROOT = Path(__file__).resolve().parent.parent


def test_readme_settings_tables_match_the_plugins():
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "update_readme.py"), "--check"],
        capture_output=True, text=True, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_readme_starts_with_the_two_commands_that_exist():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    first_block = readme.split("```bash", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].strip() for line in first_block.strip().splitlines()]
    assert commands == ["./scripts/demo.sh", "./scripts/test.sh"]
    for command in commands:
        assert (ROOT / command).is_file()


SDK_SETTINGS = ("stream_map", "flattening", "faker", "batch_config", "add_record_metadata",
                "load_method", "validate_records", "hard_delete", "default_target_schema",
                "process_activate_version", "target_schema")


def test_meltano_yml_declares_every_target_setting_and_marks_secrets():
    project = yaml.safe_load((ROOT / "meltano.yml").read_text())
    loaders = project["plugins"]["loaders"]
    (loader,) = [p for p in loaders if p["name"] == "target-sendgrid-contacts"]
    declared = {s["name"]: s for s in loader["settings"]}
    schema = TargetSendGridContacts.config_jsonschema["properties"]
    own = {k for k in schema if not k.startswith(SDK_SETTINGS)}
    assert set(declared) <= set(schema), "meltano.yml declares settings the target does not have"
    assert own <= set(declared), f"missing from meltano.yml: {sorted(own - set(declared))}"
    for key, spec in declared.items():
        assert bool(spec.get("sensitive")) == bool(schema[key].get("secret")), key
        assert spec.get("description"), f"{key} has no description in meltano.yml"

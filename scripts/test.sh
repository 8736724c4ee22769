#!/usr/bin/env bash
# Set up if needed, lint, format and type checks, then the whole test suite (it starts its own
# sandbox on 127.0.0.1).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check .
# AFTER MERGING i9-target: drop the --extend-exclude (the target package is formatted there).
.venv/bin/ruff format --check --extend-exclude target-sendgrid-contacts/target_sendgrid_contacts .
.venv/bin/mypy sandbox tap-amplitude-cohort/tap_amplitude_cohort
# AFTER MERGING i9-target: enable (the target's type clean-up lands there).
# .venv/bin/mypy target-sendgrid-contacts/target_sendgrid_contacts
.venv/bin/python -m pytest "$@"

#!/usr/bin/env bash
# Set up if needed, lint, format and type checks, then the whole test suite (it starts its own
# sandbox on 127.0.0.1).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy sandbox tap-amplitude-cohort/tap_amplitude_cohort target-sendgrid-contacts/target_sendgrid_contacts
.venv/bin/python -m pytest "$@"

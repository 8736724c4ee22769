#!/usr/bin/env bash
# Set up if needed, lint, then run the whole test suite (it starts its own sandbox on 127.0.0.1).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check .
.venv/bin/python -m pytest "$@"

#!/usr/bin/env bash
# The demo: set up if needed, start the sandbox of both APIs on 127.0.0.1, run the real
# `meltano run` job against it, and print what happened. Stops the sandbox on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python scripts/demo.py "$@"

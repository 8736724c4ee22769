#!/usr/bin/env bash
# Idempotent set-up of a fresh clone: a virtual environment with Meltano, the sandbox, both plugins
# (editable) and the test tools, then `meltano install` for the plugins' own environments.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
  echo "Python 3.10 or newer is needed (found: $("$PYTHON" --version 2>&1))." >&2
  exit 1
fi

stamp_inputs=(pyproject.toml tap-amplitude-cohort/pyproject.toml target-sendgrid-contacts/pyproject.toml meltano.yml cadences.meltano.yml scripts/setup.sh)
stamp="$(cat "${stamp_inputs[@]}" | sha256sum | cut -c1-16)"
if [ -f .venv/.setup-stamp ] && [ "$(cat .venv/.setup-stamp)" = "$stamp" ] && [ -d .meltano ]; then
  exit 0
fi

echo "Setting up (virtual environment, Meltano, plugins)..."
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check "uv>=0.5,<1"
.venv/bin/uv pip install --quiet --python .venv/bin/python \
  -e ".[dev]" -e ./tap-amplitude-cohort -e ./target-sendgrid-contacts
# Meltano builds each plugin its own virtual environment under .meltano/ (Dagster included).
if ! .venv/bin/meltano install >.venv/meltano-install.log 2>&1; then
  cat .venv/meltano-install.log >&2
  echo "meltano install failed (log above)." >&2
  exit 1
fi
# Bytecode is compiled once, here. Where PYTHONDONTWRITEBYTECODE is set (many container images,
# this project's CI) Python never caches it, and every start of Meltano, a tap or a target would
# compile each module it imports again: ~1.5 s for Meltano, ~0.7 s a plugin, on every run.
# A file that does not compile (some packages ship such test data) is only left to Python.
.venv/bin/python -m compileall -q -j 0 .venv/lib .meltano/*/*/venv/lib \
  tap-amplitude-cohort/tap_amplitude_cohort target-sendgrid-contacts/target_sendgrid_contacts sandbox \
  >/dev/null 2>&1 || true
echo "$stamp" > .venv/.setup-stamp
echo "Set-up done."

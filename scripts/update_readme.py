"""Regenerate the README's generated tables: settings, and the fault matrix's Reliability table.

Settings come from each plugin's `--about --format=markdown`, the Reliability table from the
fault matrix cases (tests/faults/table.py).

Usage: `.venv/bin/python scripts/update_readme.py` (rewrites README.md), or with `--check`
(exit 1 when the README is out of date; the test suite runs this).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / ".venv" / "bin"
PLUGINS = ("tap-amplitude-cohort", "target-sendgrid-contacts")


def settings_table(plugin: str) -> str:
    """Return the `## Settings` table that `PLUGIN --about --format=markdown` prints."""
    about = subprocess.run(
        [str(BIN / plugin), "--about", "--format=markdown"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    match = re.search(r"## Settings\n\n(.*?)(?:\n\n|\Z)", about, re.DOTALL)
    if match is None:
        msg = f"{plugin} --about printed no settings table"
        raise RuntimeError(msg)
    return match.group(1).strip()


def reliability_table() -> str:
    """Return the fault matrix table that tests/faults/table.py renders from its cases."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from tests.faults.table import render as render_matrix

    return render_matrix()


def _replace(readme: str, name: str, content: str) -> str:
    begin, end = f"<!-- {name} -->", f"<!-- /{name} -->"
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.DOTALL)
    block = f"{begin}\n{content}\n{end}"
    readme, count = pattern.subn(lambda _m: block, readme)
    if count != 1:
        msg = f"README.md needs exactly one {begin} ... {end} block"
        raise RuntimeError(msg)
    return readme


def render(readme: str) -> str:
    """Return the README with every generated block replaced by a fresh one."""
    for plugin in PLUGINS:
        readme = _replace(readme, f"settings:{plugin}", settings_table(plugin))
    return _replace(readme, "reliability", reliability_table())


def main() -> int:
    """Rewrite or check the README."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if README.md is stale")
    args = parser.parse_args()
    path = ROOT / "README.md"
    current = path.read_text(encoding="utf-8")
    fresh = render(current)
    if args.check:
        if fresh != current:
            print("README.md generated tables are stale: run scripts/update_readme.py")
            return 1
        return 0
    path.write_text(fresh, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())

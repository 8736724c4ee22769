"""Regenerate the README's settings tables from each plugin's `--about --format=markdown`.

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
        capture_output=True, text=True, check=True,
    ).stdout
    match = re.search(r"## Settings\n\n(.*?)(?:\n\n|\Z)", about, re.DOTALL)
    if match is None:
        msg = f"{plugin} --about printed no settings table"
        raise RuntimeError(msg)
    return match.group(1).strip()


def render(readme: str) -> str:
    """Return the README with every generated block replaced by a fresh one."""
    for plugin in PLUGINS:
        begin = f"<!-- settings:{plugin} -->"
        end = f"<!-- /settings:{plugin} -->"
        pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.DOTALL)
        block = f"{begin}\n{settings_table(plugin)}\n{end}"
        readme, count = pattern.subn(lambda _m, b=block: b, readme)
        if count != 1:
            msg = f"README.md needs exactly one {begin} ... {end} block"
            raise RuntimeError(msg)
    return readme


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
            print("README.md settings tables are stale: run scripts/update_readme.py")
            return 1
        return 0
    path.write_text(fresh, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())

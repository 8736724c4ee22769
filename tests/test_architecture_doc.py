"""docs/architecture.md's layout names every module of both plugins and of the sandbox."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# (the package folder, the layout line that opens its block)
PACKAGES = [
    ("tap-amplitude-cohort/tap_amplitude_cohort", "tap-amplitude-cohort/tap_amplitude_cohort/"),
    (
        "target-sendgrid-contacts/target_sendgrid_contacts",
        "target-sendgrid-contacts/target_sendgrid_contacts/",
    ),
    ("sandbox", "sandbox/"),
]
# `dir/{a,b}.py` names dir/a.py and dir/b.py; `name.py` or `dir/name.py` names itself.
_BRACES = re.compile(r"([\w/]*)\{([\w,]+)\}\.py")
_MODULE = re.compile(r"(?<![\w/{,])([\w/]+\.py)\b")


def _layout_block(header: str) -> str:
    doc = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    layout = doc.split("## Layout", 1)[1].split("```", 2)[1]
    lines = layout.splitlines()
    start = next(n for n, line in enumerate(lines) if line.split(" ", 1)[0] == header)
    block = [lines[start].removeprefix(header)]
    for line in lines[start + 1 :]:
        if line and not line[0].isspace():
            break
        block.append(line)
    return "\n".join(block)


def named_modules(text: str) -> set[str]:
    """Module paths a layout block names, relative to its package."""
    names = {
        f"{folder}{stem}.py" for folder, stems in _BRACES.findall(text) for stem in stems.split(",")
    }
    return names | set(_MODULE.findall(_BRACES.sub("", text)))


def test_brace_groups_and_plain_names_are_read():
    text = "  tap.py  amplitude/{client,errors}.py (pure)  sendgrid/app.py"
    assert named_modules(text) == {
        "tap.py",
        "amplitude/client.py",
        "amplitude/errors.py",
        "sendgrid/app.py",
    }


@pytest.mark.parametrize(("folder", "header"), PACKAGES, ids=[h for _, h in PACKAGES])
def test_the_layout_names_every_module_of_the_package(folder, header):
    package = ROOT / folder
    modules = {
        p.relative_to(package).as_posix()
        for p in package.rglob("*.py")
        if p.name != "__init__.py" and "__pycache__" not in p.parts
    }
    named = named_modules(_layout_block(header))
    assert not modules - named, f"docs/architecture.md does not name: {sorted(modules - named)}"
    assert not named - modules, f"docs/architecture.md names gone: {sorted(named - modules)}"

"""docs/SECURITY.md and tools/removals.py say the same, and every removal still applies to the code.

The removals themselves run with ``make removals`` (minutes: each starts the tests that must notice);
this keeps their list from rotting between runs: a check that moved or was reworded fails here, and so
does a check listed in one place and not the other, or a test that no longer exists.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("removals", ROOT / "tools" / "removals.py")
removals = importlib.util.module_from_spec(_spec)
sys.modules["removals"] = removals  # dataclasses look their module up there
_spec.loader.exec_module(removals)
REMOVALS = {r.name: r for r in removals.REMOVALS}


def documented() -> dict[str, tuple[str, tuple[str, ...]]]:
    """name -> (path, tests) from the table under "## Every security check" in docs/SECURITY.md."""
    text = (ROOT / "docs" / "SECURITY.md").read_text(encoding="utf-8")
    section = text.split("## Every security check", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not line.startswith("| `") or len(cells) < 5:
            continue
        name = cells[0].strip("`")
        assert name not in rows, f"{name} listed twice"
        rows[name] = (cells[2].strip("`"), tuple(re.findall(r"`([^`]+)`", cells[3])))
    return rows


def test_the_document_lists_exactly_the_removals():
    doc = documented()
    assert set(doc) == set(REMOVALS)
    for name, (path, tests) in doc.items():
        assert (path, tests) == (REMOVALS[name].path, REMOVALS[name].tests), name


@pytest.mark.parametrize("name", sorted(REMOVALS))
def test_each_removal_still_applies_and_names_tests_that_exist(name):
    removal = REMOVALS[name]
    source = (ROOT / removal.path).read_text(encoding="utf-8")
    assert source.count(removal.old) == 1, f"{name}: the check moved or changed; update tools/removals.py"
    for node in removal.tests:
        path, _, function = node.partition("::")
        test_file = (ROOT / path).read_text(encoding="utf-8")
        assert not function or re.search(rf"^def {re.escape(function)}\(", test_file, re.M), node

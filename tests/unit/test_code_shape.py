"""The size limits of issue 19: no module in docfs/ over 800 lines, no class over 600.

A module that outgrows them holds more than one concern (the god classes of the emulators and
the one-file backends were 1,100 to 3,500 lines); splitting by responsibility keeps each piece
readable and each change local.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "docfs"
MODULE_MAX = 800
CLASS_MAX = 600


def sizes() -> tuple[dict[str, int], dict[str, int]]:
    modules: dict[str, int] = {}
    classes: dict[str, int] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        text = path.read_text()
        name = str(path.relative_to(PACKAGE.parent))
        modules[name] = len(text.splitlines())
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ClassDef) and node.end_lineno is not None:
                classes[f"{name}:{node.name}"] = node.end_lineno - node.lineno + 1
    return modules, classes


def test_no_module_over_800_lines_and_no_class_over_600() -> None:
    modules, classes = sizes()
    assert len(modules) > 50 and any(n.endswith("vfs/content.py") for n in modules)
    big = {n: lines for n, lines in modules.items() if lines > MODULE_MAX}
    assert not big, f"modules over {MODULE_MAX} lines: {big}"
    huge = {n: lines for n, lines in classes.items() if lines > CLASS_MAX}
    assert not huge, f"classes over {CLASS_MAX} lines: {huge}"

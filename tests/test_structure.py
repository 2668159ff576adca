"""The shape of the code: modules and functions short enough to read, or a reason written at their top.

A module over MODULE_LINES lines, or a function over FUNCTION_LINES lines, must say why in its docstring,
with a sentence starting "Long because".
"""

from __future__ import annotations

import ast
from pathlib import Path

import llm_feedback_loop

PACKAGE = Path(llm_feedback_loop.__file__).parent
MODULE_LINES = 400
FUNCTION_LINES = 80
REASON = "Long because"


def sources() -> list[Path]:
    return sorted(path for path in PACKAGE.rglob("*.py") if "migrations" not in path.parts)


def test_modules_are_short_or_say_why() -> None:
    long = []
    for path in sources():
        text = path.read_text(encoding="utf-8")
        lines = text.count("\n")
        if lines > MODULE_LINES and REASON not in (ast.get_docstring(ast.parse(text)) or ""):
            long.append(f"{path.relative_to(PACKAGE)}: {lines} lines")
    assert not long, f"modules over {MODULE_LINES} lines without '{REASON} ...' in their docstring: {long}"


def test_functions_are_short_or_say_why() -> None:
    long = []
    for path in sources():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > FUNCTION_LINES and REASON not in (ast.get_docstring(node) or ""):
                    long.append(f"{path.relative_to(PACKAGE)}:{node.lineno} {node.name}: {length} lines")
    assert not long, f"functions over {FUNCTION_LINES} lines without '{REASON} ...' in their docstring: {long}"

"""The layer contracts of pyproject.toml ([tool.importlinter]) hold, and they do catch an upward import."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import llm_feedback_loop

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = Path(llm_feedback_loop.__file__).parent
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(cwd: Path, python_path: Path) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "PYTHONPATH": str(python_path)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=cwd, env=environment, capture_output=True, text=True, timeout=120
    )


def test_the_layers_hold() -> None:
    result = lint_imports(ROOT, PACKAGE.parent)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_lower_layer_importing_a_higher_one_breaks_the_contract(tmp_path: Path) -> None:
    copy = tmp_path / "src" / "llm_feedback_loop"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    engine = copy / "storage" / "engine.py"
    engine.write_text(engine.read_text(encoding="utf-8") + "\nfrom llm_feedback_loop.api import app  # upward\n")
    result = lint_imports(tmp_path, tmp_path / "src")
    assert result.returncode != 0
    assert "llm_feedback_loop.storage is not allowed to import llm_feedback_loop.api" in result.stdout

"""The layers contract of pyproject.toml ([tool.importlinter]): the package keeps it, and it bites on an
upward import (a copy of the package with one added fails with a message naming that import)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def _lint(source_root: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(source_root)}
    return subprocess.run([str(LINT_IMPORTS), "--config", str(REPO / "pyproject.toml"), "--no-cache"],
                          capture_output=True, text=True, env=env, cwd=source_root, check=False)


def test_the_package_keeps_its_layers() -> None:
    result = _lint(REPO / "src")
    assert result.returncode == 0, result.stdout + result.stderr


def test_an_upward_import_breaks_the_contract(tmp_path: Path) -> None:
    shutil.copytree(REPO / "src" / "otx_xai", tmp_path / "otx_xai", ignore=shutil.ignore_patterns("__pycache__"))
    with (tmp_path / "otx_xai" / "explain" / "config.py").open("a") as module:
        module.write("\nimport otx_xai.engine.engine  # an upward import: explain must not know the engine\n")
    result = _lint(tmp_path)
    assert result.returncode != 0
    assert "otx_xai.explain.config -> otx_xai.engine.engine" in result.stdout

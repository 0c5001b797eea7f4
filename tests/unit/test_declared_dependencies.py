"""Every third-party package otx_xai's own code imports is a declared dependency in pyproject.toml, so a
plain `pip install otx_xai` (the demo's environment) can run every method, not only the test environment."""

from __future__ import annotations

import ast
import importlib.metadata as metadata
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).parents[2]


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _imported_top_level_modules() -> set[str]:
    modules: set[str] = set()
    for path in (ROOT / "src" / "otx_xai").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                modules |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules.add(node.module.split(".")[0])
    return modules - set(sys.stdlib_module_names) - {"otx_xai", "__future__"}


def test_every_imported_package_is_declared() -> None:
    declared = {_normalized(re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0])
                for requirement in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]}
    providers = metadata.packages_distributions()
    undeclared = {module: providers.get(module) for module in _imported_top_level_modules()
                  if not declared & {_normalized(d) for d in providers.get(module, [module])}}
    assert not undeclared, f"imported by src/otx_xai but not in pyproject dependencies: {undeclared}"

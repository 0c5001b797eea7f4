"""The README is a front page whose methods table is the registry's, and the docs site holds every page
its navigation and the README point at."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from otx_xai.explain.method_table import END, START, methods_table, with_table
from otx_xai.explain.registry import METHODS

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text()


def test_the_readme_methods_table_is_the_registry() -> None:
    assert with_table(README) == README, "run: python -m otx_xai.explain.method_table README.md"
    table = README.split(START, 1)[1].split(END, 1)[0]
    assert [f"`{spec.name}`" for spec in METHODS] == re.findall(r"^\| (`\w+`) \|", table, flags=re.M)


def test_the_table_changes_with_the_registry() -> None:
    assert with_table(README, methods_table(METHODS[:1])) != README


def test_the_readme_is_a_front_page_with_the_two_commands() -> None:
    assert len(README.splitlines()) < 150
    assert "python3 -m pip install -q tox && tox -e demo" in README
    assert "python3 -m pip install -q tox && tox " in README


def test_every_linked_page_exists_and_every_docs_page_is_in_the_navigation() -> None:
    for link in re.findall(r"\]\((docs/[^)#]+)", README):
        assert (REPO / link).is_file(), link

    def pages(entries: list) -> list[str]:
        found = []
        for entry in entries:
            value = next(iter(entry.values())) if isinstance(entry, dict) else entry
            found += pages(value) if isinstance(value, list) else [value]
        return found

    nav = pages(yaml.safe_load((REPO / "mkdocs.yml").read_text())["nav"])
    docs = REPO / "docs"
    assert sorted(nav) == sorted(str(p.relative_to(docs)) for p in docs.rglob("*.md"))
    for family in ("forward", "gradient", "perturbation"):
        assert f"methods/{family}.md" in nav

"""The methods table of the README and the docs, written from the registry (so neither can drift from it).

``python -m otx_xai.explain.method_table README.md`` rewrites the table between the README's markers;
the docs build writes the same table through ``docs/hooks.py``; a test fails when the README's differs.
"""

from __future__ import annotations

import sys
from pathlib import Path

from otx_xai.explain.registry import FAMILIES, METHODS, MethodSpec

START = "<!-- methods-table: generated from otx_xai/explain/registry.py, do not edit -->"
END = "<!-- methods-table: end -->"
FAMILY_TITLES = {"forward": "forward pass", "gradient": "gradient", "perturbation": "perturbation / search"}
TASK_SHORT = {"classification": "cls", "detection": "det", "instance_segmentation": "inst-seg"}


def _settings(spec: MethodSpec) -> str:
    return ", ".join(f"`{name}={value}`" for name, value in spec.settings.items()) or "—"


def methods_table(specs: tuple[MethodSpec, ...] | list[MethodSpec] = METHODS, settings: bool = False) -> str:
    """A markdown table of ``specs`` grouped by family: name, family, tasks, backends, cost, summary
    (and the settings with their defaults when ``settings``)."""
    header = ["method", "family", "tasks", "runs on", "inferences per image", "what it does"]
    if settings:
        header.append("settings (defaults)")
    rows = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for family in FAMILIES:
        for spec in (s for s in specs if s.family == family):
            cells = [f"`{spec.name}`", FAMILY_TITLES[family], ", ".join(TASK_SHORT[t] for t in spec.tasks),
                     ", ".join(spec.backends), spec.cost, spec.summary]
            if settings:
                cells.append(_settings(spec))
            rows.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(rows)


def with_table(text: str, table: str | None = None) -> str:
    """``text`` with the part between the markers replaced by the table."""
    if START not in text or END not in text:
        raise ValueError(f"no methods-table markers ({START} ... {END}) in the text")
    before, rest = text.split(START, 1)
    _, after = rest.split(END, 1)
    return f"{before}{START}\n{table or methods_table()}\n{END}{after}"


def main(argv: list[str]) -> int:
    """Rewrite the table in each file given (README.md by default)."""
    for name in argv or ["README.md"]:
        path = Path(name)
        path.write_text(with_table(path.read_text()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

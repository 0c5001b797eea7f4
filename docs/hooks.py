"""MkDocs hooks: pages that are generated from the code at build time, so they cannot drift from it.

- ``{{ cli_reference }}``: the help of every ``otx`` stage, from the real parser (``otx_xai.cli``);
- ``{{ methods_table }}``: every method of the registry with its settings (``otx_xai.explain.method_table``);
- ``{{ methods_table:<family> }}``: the methods of one family.
"""

from __future__ import annotations

import os
import re
from typing import Any

HELP_WIDTH = "100"


def cli_reference() -> str:
    """Markdown: one section per stage with its ``--help`` text."""
    os.environ["COLUMNS"] = HELP_WIDTH  # argparse wraps help at the terminal width: fix it
    from otx_xai.cli import STAGES, _stage_parser

    parts = []
    for stage, description in STAGES.items():
        parts.append(f"## otx {stage}\n\n{description}.\n\n```text\n{_stage_parser(stage).format_help()}```\n")
    return "\n".join(parts)


def _methods_table(match: re.Match[str]) -> str:
    from otx_xai.explain.method_table import methods_table
    from otx_xai.explain.registry import methods

    family = match.group(1)
    return methods_table(methods(family=family) if family else methods(), settings=True)


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """Fill the generated parts of a page."""
    if "{{ cli_reference }}" in markdown:
        markdown = markdown.replace("{{ cli_reference }}", cli_reference())
    return re.sub(r"\{\{ methods_table(?::(\w+))? \}\}", _methods_table, markdown)

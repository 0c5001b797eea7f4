"""The per-rank index files of a distributed explain run and their merge into the run's one index."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from otx_xai.explain.dump import INDEX_LINES, atomic_write_bytes, read_index_lines
from otx_xai.explain.index_summary import dedupe

_RANK_INDEX = re.compile(r"explain_index\.rank(\d+)\.jsonl")


def rank_index_name(rank: int) -> str:
    """The index file one rank of a distributed run appends to."""
    return f"explain_index.rank{rank}.jsonl"


def rank_index_files(run_dir: Path) -> list[Path]:
    """The per-rank index files of a run folder, by rank."""
    found = [(int(m.group(1)), path) for path in run_dir.glob("explain_index.rank*.jsonl")
             if (m := _RANK_INDEX.fullmatch(path.name))]
    return [path for _, path in sorted(found)]


def in_order(entries: list[dict[str, Any]], order: list[str] | None) -> list[dict[str, Any]]:
    """``entries`` sorted as the image ids in ``order`` (the dataset order); ids not in it go last."""
    if not order:
        return entries
    position = {image_id: k for k, image_id in enumerate(order)}
    return sorted(entries, key=lambda entry: position.get(entry["image_id"], len(position)))


def merge_rank_indexes(run_dir: Path, order: list[str] | None = None) -> int:
    """Fold every ``explain_index.rank<N>.jsonl`` into ``explain_index.jsonl`` (after the entries it holds,
    sorted by ``order``, one entry per image id, written atomically), then delete them; return how many
    rank entries there were."""
    files = rank_index_files(run_dir)
    if not files:
        return 0
    merged = in_order([entry for path in files for entry in read_index_lines(path)], order)
    entries = dedupe(read_index_lines(run_dir / INDEX_LINES) + merged)
    atomic_write_bytes(run_dir / INDEX_LINES, "".join(json.dumps(entry) + "\n" for entry in entries).encode())
    for path in files:
        path.unlink()
    return len(merged)

"""SAG's per-image files: each shown root's mask and the graph's picture, and the index record naming them.

A SAG run's PredictionBatch carries the method's ``sag_*`` outputs in ``extras`` (``SAG_OUTPUTS``); for each
image the sink writes ``<image_id>_sag_root<k>.png`` (the root's patches white, the rest black, at the original
image size) and ``<image_id>_sag_graph.png``, and its index entry gets a ``sag`` record: the explained class,
the full-image score and each root's patches (row-major indices of the grid) and score with its file.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from otx_xai.explain.dump import atomic_write_bytes, encode_png

SAG_OUTPUTS = ("sag_root_masks", "sag_root_scores", "sag_full_score", "sag_class", "sag_graph")


def has_sag(extras: Mapping[str, Any]) -> bool:
    """Whether a batch's extras hold SAG's outputs."""
    return all(name in extras for name in SAG_OUTPUTS)


def write_sag_files(run_dir: Path, folder: str, image_id: str, original_size: tuple[int, int],
                    extras: Mapping[str, np.ndarray], index: int,
                    label_names: list[str]) -> tuple[list[str], dict[str, Any]]:
    """Write image ``index``'s root masks and graph under ``run_dir / folder``; the files written (relative
    to the run folder) and the index record."""
    masks, scores = np.asarray(extras["sag_root_masks"][index]), np.asarray(extras["sag_root_scores"][index])
    target = int(extras["sag_class"][index])
    height, width = original_size
    files, roots = [], []
    for k in np.flatnonzero(~np.isnan(scores)):
        name = f"{folder}/{image_id}_sag_root{k}.png"
        mask = cv2.resize(masks[k].astype(np.uint8) * 255, (width, height), interpolation=cv2.INTER_NEAREST)
        atomic_write_bytes(run_dir / name, encode_png(mask))
        files.append(name)
        roots.append({"patches": [int(p) for p in np.flatnonzero(masks[k])], "score": round(float(scores[k]), 6),
                      "file": name})
    graph = f"{folder}/{image_id}_sag_graph.png"
    atomic_write_bytes(run_dir / graph, encode_png(np.asarray(extras["sag_graph"][index])))
    files.append(graph)
    record = {"class": {"index": target, "label": label_names[target] if target < len(label_names) else str(target)},
              "full_score": round(float(extras["sag_full_score"][index]), 6), "grid": int(masks.shape[-1]),
              "roots": roots, "graph": graph}
    return files, record

"""The explain index as flat per-image rows: reading it (labels, metrics, map files) and its CSV twin.

Per-image metrics are read from ``entry["metrics"]`` (``{name: number}``, e.g. ``pointing_game``,
``insertion_deletion``, ``adcc``); a top-level ``entry["pointing_game"]`` is used when ``metrics`` has none.
Ground-truth labels, when the index has them, are ``entry["ground_truth"]``: label names or
``{"index", "label"}`` objects like ``predicted``.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from otx_xai.errors import MissingFileError
from otx_xai.explain.dump import INDEX_JSON, atomic_write_bytes
from otx_xai.report.numbers import for_people

INDEX_CSV = "explain_index.csv"
LOWER_IS_BETTER = frozenset({"deletion", "average_drop", "complexity", "sanity_spearman"})
_MAP_SUFFIXES = ("_overlay.png", "_saliency_map.png")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class MapTarget:
    """One explained target of an image: its name, the file to show and the plain colour map if different."""

    name: str
    shown: str
    colour_map: str | None = None


def load_index(run_dir: Path) -> dict[str, Any]:
    """The run's ``explain_index.json`` as a dict (``images`` always a list)."""
    path = Path(run_dir) / INDEX_JSON
    if not path.is_file():
        raise MissingFileError(f"{path} not found: run explain with dump=True (--dump True) first")
    document = json.loads(path.read_text(encoding="utf-8"))
    document["images"] = list(document.get("images") or [])
    return document


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return None if math.isnan(value) else float(value)


def image_metrics(entry: dict[str, Any]) -> dict[str, float]:
    """The numeric per-image metrics of an index entry (non-numbers and NaN left out)."""
    raw = entry.get("metrics")
    values = {str(k): v for k, v in raw.items()} if isinstance(raw, dict) else {}
    if "pointing_game" not in values and "pointing_game" in entry:
        values["pointing_game"] = entry["pointing_game"]
    numbers = {name: _number(value) for name, value in values.items()}
    return {name: value for name, value in numbers.items() if value is not None}


def metric_names(images: list[dict[str, Any]]) -> list[str]:
    """Every metric some image has, in first-seen order."""
    return list(dict.fromkeys(name for entry in images for name in image_metrics(entry)))


def higher_is_better(metric: str) -> bool:
    """Whether a larger value of ``metric`` means a better explanation."""
    return metric not in LOWER_IS_BETTER


def _label(item: Any) -> str:
    return str(item.get("label", item.get("index", ""))) if isinstance(item, dict) else str(item)


def predicted_labels(entry: dict[str, Any]) -> list[str]:
    """Predicted label names of an entry, in index order."""
    return [_label(item) for item in entry.get("predicted") or []]


def predicted_scores(entry: dict[str, Any]) -> list[float | None]:
    """Scores of the predicted labels (None where the index has none)."""
    return [_number(item.get("score")) if isinstance(item, dict) else None for item in entry.get("predicted") or []]


def ground_truth_labels(entry: dict[str, Any]) -> list[str]:
    """Ground-truth label names of an entry (empty when the index has none)."""
    return [_label(item) for item in entry.get("ground_truth") or []]


def entry_labels(entry: dict[str, Any]) -> list[str]:
    """Predicted and ground-truth labels, each once: what the gallery's label filter matches."""
    return list(dict.fromkeys(predicted_labels(entry) + ground_truth_labels(entry)))


def _shown_and_plain(files: list[str]) -> tuple[str | None, str | None]:
    """The file to show (the overlay when there is one, else the saliency map) and the plain map if different."""
    overlay = next((f for f in files if f.endswith("_overlay.png")), None)
    plain = next((f for f in files if f.endswith("_saliency_map.png")), None)
    return overlay or plain, plain if overlay else None


def box_detections(entry: dict[str, Any]) -> list[dict[str, Any]]:
    """The entry's detections that have a per-box map (``files``), in index order."""
    return [d for d in entry.get("detections") or [] if isinstance(d, dict) and d.get("files")]


def box_targets(entry: dict[str, Any]) -> list[MapTarget]:
    """One target per box with a map, named ``box <k>: <label> <score>``."""
    targets = []
    for detection in box_detections(entry):
        shown, plain = _shown_and_plain([str(f) for f in detection["files"]])
        if shown is not None:
            score = _number(detection.get("score"))
            name = f"box {detection.get('box_index', '')}: {detection.get('label', '')}"
            targets.append(MapTarget(name + (f" {for_people(score)}" if score is not None else ""), shown, plain))
    return targets


def map_targets(entry: dict[str, Any]) -> list[MapTarget]:
    """The entry's class (or image) maps per target: the overlay when there is one, else the saliency map.
    Per-box maps are ``box_targets``."""
    by_stem: dict[str, dict[str, str]] = {}
    box_files = {str(f) for d in box_detections(entry) for f in d["files"]}
    for path in entry.get("files") or []:
        if str(path) in box_files:
            continue
        name = PurePosixPath(str(path)).name
        suffix = next((s for s in _MAP_SUFFIXES if name.endswith(s)), None)
        if suffix is not None:
            by_stem.setdefault(name[: -len(suffix)], {})[suffix] = str(path)
    image_id = str(entry.get("image_id", ""))
    targets = []
    for stem, files in by_stem.items():
        overlay, plain = files.get("_overlay.png"), files.get("_saliency_map.png")
        shown = overlay or plain
        if shown is not None:
            targets.append(MapTarget(_target_name(stem, image_id), shown, plain if overlay else None))
    return targets


def _target_name(stem: str, image_id: str) -> str:
    rest = stem[len(image_id) + 1:] if image_id and stem.startswith(f"{image_id}_") else stem
    return rest.removeprefix("class_") if rest.startswith("class_") else rest.replace("_", " ")


def _text(value: Any) -> str:
    """A cell a spreadsheet shows as text, never evaluates as a formula."""
    text = "" if value is None else str(value)
    return f"'{text}" if text.startswith(_FORMULA_START) else text


def _cell(value: float | None) -> str:
    return "" if value is None else for_people(value)


def _boxes_cell(entry: dict[str, Any]) -> str:
    """``<k>:<label>:<score>`` of each box with a map, ``;``-separated."""
    return ";".join(f"{d.get('box_index', '')}:{d.get('label', '')}:{_cell(_number(d.get('score')))}"
                    for d in box_detections(entry))


def csv_rows(index: dict[str, Any]) -> list[list[str]]:
    """Header row and one row per image of an index document (a ``boxes`` column when there are box maps)."""
    images = index["images"]
    metrics = metric_names(images)
    with_boxes = any(box_detections(entry) for entry in images)
    header = ["image_id", "source_path", "original_size", "predicted_labels", "predicted_scores",
              "ground_truth", "error", *metrics, *(["boxes"] if with_boxes else []), "files"]
    rows = [header]
    for entry in images:
        size = entry.get("original_size") or []
        values = image_metrics(entry)
        rows.append([
            _text(entry.get("image_id")), _text(entry.get("source_path")), "x".join(str(s) for s in size),
            _text(";".join(predicted_labels(entry))), ";".join(_cell(s) for s in predicted_scores(entry)),
            _text(";".join(ground_truth_labels(entry))), _text(entry.get("error")),
            *(_cell(values.get(name)) for name in metrics), *([_text(_boxes_cell(entry))] if with_boxes else []),
            _text(";".join(entry.get("files") or [])),
        ])
    return rows


def write_csv_index(run_dir: Path) -> Path:
    """Write ``<run>/explain_index.csv`` (UTF-8, one row per image, one column per metric) atomically."""
    run_dir = Path(run_dir)
    buffer = io.StringIO()
    csv.writer(buffer).writerows(csv_rows(load_index(run_dir)))
    path = run_dir / INDEX_CSV
    atomic_write_bytes(path, buffer.getvalue().encode("utf-8", "backslashreplace"))  # an odd path never stops it
    return path

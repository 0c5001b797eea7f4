"""The run summary, computed from the index entries alone (so a resumed run's summary covers every image)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np

from otx_xai.metrics import summarize

GATED = ("pointing_game", "insertion_deletion", "adcc")
SANITY_FLAG_ABOVE = 0.5  # median Spearman of the sanity check above which the maps barely depend on the model


def summarize_sanity(similarities: list[float]) -> dict[str, Any]:
    """Median similarity and whether it is high enough to flag."""
    if not similarities:
        return {}
    median = float(np.median(similarities))
    return {"median_spearman": median, "images": len(similarities), "flagged": median > SANITY_FLAG_ABOVE}


def _pointing_game(entries: list[dict[str, Any]]) -> tuple[float | None, int]:
    """Hit rate over every ground-truth object (entries carry their own rate and object count)."""
    weighted = [(e["pointing_game"], e.get("pointing_game_objects", 1)) for e in entries if "pointing_game" in e]
    objects = sum(n for _, n in weighted)
    return (float(sum(rate * n for rate, n in weighted) / objects) if objects else None), objects


def _metric_block(entries: list[dict[str, Any]]) -> dict[str, Any]:
    values: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for entry in entries:
        label = entry["predicted"][0]["label"] if entry.get("predicted") else "none"
        for name, value in (entry.get("metrics") or {}).items():
            values[name]["__all__"].append(value)
            values[name][label].append(value)
    return {name: {"overall": summarize(per["__all__"]),
                   "per_class": {label: summarize(v) for label, v in per.items() if label != "__all__"}}
            for name, per in values.items()}


def summarize_entries(entries: list[dict[str, Any]]) -> dict[str, Any]:
    """Counts, pointing game and per-metric statistics (overall and per predicted class)."""
    rate, objects = _pointing_game(entries)
    summary: dict[str, Any] = {
        "explained": sum(1 for e in entries if not e.get("error")),
        "failed": sum(1 for e in entries if e.get("error")),
        "files": sum(len(e.get("files", [])) for e in entries),
        "pointing_game": rate,
        "pointing_game_objects": objects,
    }
    metrics = _metric_block(entries)
    if metrics:
        summary["metrics"] = metrics
    similarities = [e["metrics"]["sanity_spearman"] for e in entries if "sanity_spearman" in (e.get("metrics") or {})]
    if similarities:
        summary["sanity_check"] = summarize_sanity(similarities)
    return summary


def gate_values(summary: dict[str, Any]) -> dict[str, float]:
    """The aggregate each ``--fail_under`` gate compares: hit rate, mean delta, mean ADCC."""
    values = {}
    if summary.get("pointing_game") is not None:
        values["pointing_game"] = float(summary["pointing_game"])
    for name in GATED[1:]:
        block = summary.get("metrics", {}).get(name)
        if block:
            values[name] = float(block["overall"]["mean"])
    return values


def dedupe(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per image id, the last one written winning (a resumed run may redo an image)."""
    return list({entry["image_id"]: entry for entry in entries}.values())


"""Saliency-map quality metrics: pointing game, insertion/deletion AUC and ADCC (plain numpy).

Maps are 2-D at the original image resolution (uint8 0..255 or float). Models are reached only through
``ScoreFn`` (uint8 image batch -> class scores) and ``ExplainFn`` (image, target -> saliency map).

Gates (``fail_under``) are keyed by metric name and compare one aggregated value per metric, the mean
over images of ``MetricInfo.gate_key``: pointing game's hit rate (``pointing_game_score``),
insertion/deletion's ``delta`` and ADCC's ``adcc``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from otx_xai.errors import UserError
from otx_xai.metrics.adcc import ExplainFn, adcc
from otx_xai.metrics.insertion_deletion import ScoreFn, insertion_deletion_auc, normalize_map, resize_map
from otx_xai.metrics.pointing_game import pointing_game, pointing_game_score


@dataclass(frozen=True)
class MetricInfo:
    """A metric's per-image function, the value its gate compares and that value's valid range."""

    name: str
    fn: Callable[..., Any]
    gate_key: str
    gate_range: tuple[float, float]

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)


METRICS: dict[str, MetricInfo] = {
    "pointing_game": MetricInfo("pointing_game", pointing_game, "hit_rate", (0.0, 1.0)),
    "insertion_deletion": MetricInfo("insertion_deletion", insertion_deletion_auc, "delta", (-1.0, 1.0)),
    "adcc": MetricInfo("adcc", adcc, "adcc", (0.0, 1.0)),
}


def summarize(values: Sequence[float]) -> dict[str, float]:
    """Mean, min, max and count of ``values``; the statistics are NaN when there are none."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.size == 0:
        return {"mean": math.nan, "min": math.nan, "max": math.nan, "count": 0}
    return {
        "mean": float(arr.mean()),
        "min": float(arr.min()),
        "max": float(arr.max()),
        "count": int(arr.size),
    }


def _check_name(name: str) -> str:
    if name not in METRICS:
        raise UserError(f"unknown metric '{name}': choose from {', '.join(METRICS)}")
    return name


def parse_metric_names(text: str) -> list[str]:
    """``"pointing_game,adcc"`` -> ``["pointing_game", "adcc"]`` (blanks ignored, duplicates dropped)."""
    names = [part.strip() for part in text.split(",") if part.strip()]
    if not names:
        raise UserError(f"no metric names given: choose from {', '.join(METRICS)}")
    return list(dict.fromkeys(_check_name(name) for name in names))


def parse_fail_under(text: str) -> dict[str, float]:
    """``"pointing_game=0.8,insertion_deletion=0.2"`` -> ``{"pointing_game": 0.8, ...}``."""
    thresholds: dict[str, float] = {}
    for entry in (part.strip() for part in text.split(",")):
        if not entry:
            continue
        name, sep, value = (piece.strip() for piece in entry.partition("="))
        if not sep or not name or not value:
            raise UserError(f"malformed fail_under entry '{entry}': expected metric=value")
        _check_name(name)
        if name in thresholds:
            raise UserError(f"fail_under gives metric '{name}' twice")
        thresholds[name] = _parse_threshold(name, value)
    if not thresholds:
        raise UserError("fail_under is empty: expected metric=value[,metric=value...]")
    return thresholds


def _parse_threshold(name: str, value: str) -> float:
    try:
        threshold = float(value)
    except ValueError:
        raise UserError(f"fail_under value for '{name}' is not a number: '{value}'") from None
    info = METRICS[name]
    low, high = info.gate_range
    if not low <= threshold <= high:
        bounds = f"[{low:g}, {high:g}]"
        raise UserError(f"fail_under value for '{name}' ({info.gate_key}) must be in {bounds}, got {value}")
    return threshold


def gate_failures(values: Mapping[str, float], thresholds: Mapping[str, float]) -> list[str]:
    """One message per gated metric whose aggregated value is missing, NaN or below its threshold."""
    failures = []
    for name, threshold in thresholds.items():
        key = METRICS[name].gate_key
        value = values.get(name, math.nan)
        if math.isnan(value):
            failures.append(f"{name}: no {key} value to compare with fail_under {threshold:g}")
        elif value < threshold:
            failures.append(f"{name}: {key} {value:.4f} < fail_under {threshold:g}")
    return failures


__all__ = [
    "METRICS",
    "ExplainFn",
    "MetricInfo",
    "ScoreFn",
    "adcc",
    "gate_failures",
    "insertion_deletion_auc",
    "normalize_map",
    "parse_fail_under",
    "parse_metric_names",
    "pointing_game",
    "pointing_game_score",
    "resize_map",
    "summarize",
]

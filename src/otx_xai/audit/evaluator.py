"""Per-image saliency quality during an explain run, and its aggregates per class and overall."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np

from otx_xai.audit.sanity import spearman, summarize_sanity
from otx_xai.audit.scorers import ImageScorer
from otx_xai.metrics import adcc, insertion_deletion_auc, resize_map, summarize

GATE_VALUES = {"pointing_game": "pointing_game", "insertion_deletion": "insertion_deletion", "adcc": "adcc"}


class AuditEvaluator:
    """Computes the requested metrics for each explained image and keeps their aggregates.

    Args:
        metrics: names from ``otx_xai.metrics.METRICS``.
        scorer: the explained model (torch or IR) as the metrics reach it.
        label_names: for the per-class summary.
        steps: insertion/deletion steps.
        sanity_scorer: the same model with a randomized head, for the sanity check (None: off).
    """

    def __init__(
        self, metrics: list[str], scorer: ImageScorer, label_names: list[str], steps: int = 30,
        sanity_scorer: ImageScorer | None = None,
    ) -> None:
        self.metrics = metrics
        self.scorer = scorer
        self.label_names = label_names
        self.steps = steps
        self.sanity_scorer = sanity_scorer
        self._values: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
        self._similarities: list[float] = []

    @property
    def needs_image(self) -> bool:
        return bool({"insertion_deletion", "adcc"} & set(self.metrics)) or self.sanity_scorer is not None

    def evaluate(self, image: np.ndarray | None, class_maps: np.ndarray, hits: list[bool],
                 target: int | None) -> dict[str, float]:
        """Metric values of one image; ``hits`` are its pointing-game results per ground-truth class,
        ``target`` the class whose map is judged by the other metrics (the top prediction)."""
        values: dict[str, float] = {}
        if "pointing_game" in self.metrics and hits:
            values["pointing_game"] = float(np.mean(hits))
        if target is not None and image is not None:
            saliency = resize_map(class_maps[target].astype(np.float32), image.shape[:2])
            if "insertion_deletion" in self.metrics:
                auc = insertion_deletion_auc(image, saliency, target, self.scorer.scores, steps=self.steps)
                values.update({"insertion": auc["insertion"], "deletion": auc["deletion"],
                               "insertion_deletion": auc["delta"]})
            if "adcc" in self.metrics:
                values.update(adcc(image, saliency, target, self.scorer.scores, self.scorer.class_map))
            if self.sanity_scorer is not None:
                similarity = spearman(class_maps[target], self.sanity_scorer.raw_class_map(image, target))
                values["sanity_spearman"] = similarity
                self._similarities.append(similarity)
        label = self.label_names[target] if target is not None and target < len(self.label_names) else "none"
        for name, value in values.items():
            self._values[name]["__all__"].append(value)
            self._values[name][label].append(value)
        return values

    def aggregates(self) -> dict[str, float]:
        """One value per metric, what ``--fail_under`` compares: the mean over images."""
        return {name: summarize(self._values[key]["__all__"])["mean"]
                for name, key in GATE_VALUES.items() if key in self._values}

    def summary(self) -> dict[str, Any]:
        """Overall and per-class statistics of every value, plus the sanity check's verdict."""
        block: dict[str, Any] = {
            name: {"overall": summarize(per_class["__all__"]),
                   "per_class": {label: summarize(v) for label, v in per_class.items() if label != "__all__"}}
            for name, per_class in self._values.items()
        }
        if self._similarities:
            block["sanity_check"] = summarize_sanity(self._similarities)
        return block

"""Per-image saliency quality during an explain run (aggregates come from the index: index_summary)."""

from __future__ import annotations

import numpy as np

from otx_xai.audit.sanity import spearman
from otx_xai.audit.scorers import ImageScorer
from otx_xai.metrics import adcc, insertion_deletion_auc, resize_map


class AuditEvaluator:
    """Computes the requested metrics for each explained image.

    Args:
        metrics: names from ``otx_xai.metrics.METRICS``.
        scorer: the explained model (torch or IR) as the metrics reach it.
        steps: insertion/deletion steps.
        sanity_scorer: the same model with a randomized head, for the sanity check (None: off).
    """

    def __init__(
        self, metrics: list[str], scorer: ImageScorer, steps: int = 30, sanity_scorer: ImageScorer | None = None,
    ) -> None:
        self.metrics = metrics
        self.scorer = scorer
        self.steps = steps
        self.sanity_scorer = sanity_scorer

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
                randomized = self.sanity_scorer.raw_class_map(image, target)
                values["sanity_spearman"] = spearman(class_maps[target], randomized)
        return values

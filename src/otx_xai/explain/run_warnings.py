"""Warnings an explain run gives once, however many images show the problem."""

from __future__ import annotations

import logging

import numpy as np

from otx_xai.explain.config import ExplainConfig, TargetExplainGroup

log = logging.getLogger("otx_xai.explain")

MANY_CLASSES = 20  # above this, ALL writes more maps per image than anyone looks at


class RunWarnings:
    """Says once per run that the maps are constant (nothing to see) or that ALL over many classes is costly."""

    def __init__(self, config: ExplainConfig) -> None:
        self.config = config
        self.given: set[str] = set()

    def _once(self, key: str, message: str, *args: object) -> None:
        if key not in self.given:
            self.given.add(key)
            log.warning(message, *args)

    def check_group(self, label_names: list[str]) -> None:
        """ALL on a model with more than MANY_CLASSES classes: one map per class per image."""
        if self.config.target_explain_group == TargetExplainGroup.ALL and len(label_names) > MANY_CLASSES:
            self._once("many_classes", "explaining ALL %d classes gives %d maps per image (files, time): pass "
                       "--explain_config.target_explain_group PREDICTIONS to explain the predicted classes only",
                       len(label_names), len(label_names))

    def check_maps(self, image_id: str, maps: dict[object, np.ndarray]) -> None:
        """A selected map with one value everywhere: the scores do not depend on where things are (checked
        until the warning has been given: no per-image cost after that)."""
        if "constant_map" in self.given:
            return
        flat = [key for key, saliency in maps.items() if saliency.size > 1 and saliency.min() == saliency.max()]
        if flat:
            self._once("constant_map", "the saliency map of %s (map %s) is constant over the image: the model's "
                       "scores do not depend on where things are (an untrained or degenerate model?); such maps "
                       "show nothing", image_id, flat[0])

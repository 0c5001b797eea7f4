"""ExplainConfig and TargetExplainGroup: what to explain and how to present it."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from otx_xai.errors import UserError


class TargetExplainGroup(str, Enum):
    """Which saliency maps an explain run returns.

    IMAGE: one class-agnostic map per image (key ``"map_per_image"``).
    ALL: one map per class, keyed by label index.
    PREDICTIONS: maps of the predicted labels only.
    """

    IMAGE = "IMAGE"
    ALL = "ALL"
    PREDICTIONS = "PREDICTIONS"


@dataclass
class ExplainConfig:
    """Options of an explain run.

    Args:
        target_explain_group: which maps to keep (IMAGE, ALL or PREDICTIONS).
        postprocess: resize each map to its image's original size and colour it with JET.
        crop_padded_map: crop the letterbox padding off a map before resizing it.
        predicted_maps_conf_thr: score a label needs to count as predicted (multilabel, detection).
        max_explain_chunk: largest number of masked copies Recipro-CAM (pooled vectors or feature-map
            copies) and ViT Recipro-CAM (whole images' patch copies) evaluate at once; bounds explain's
            extra memory whatever the batch size.
    """

    target_explain_group: TargetExplainGroup = TargetExplainGroup.ALL
    postprocess: bool = False
    crop_padded_map: bool = False
    predicted_maps_conf_thr: float = 0.3
    max_explain_chunk: int = 4096

    def __post_init__(self) -> None:
        try:
            self.target_explain_group = TargetExplainGroup(str(getattr(
                self.target_explain_group, "value", self.target_explain_group)).upper())
        except ValueError:
            choices = ", ".join(g.value for g in TargetExplainGroup)
            raise UserError(
                f"unknown target_explain_group {self.target_explain_group!r}: use one of {choices}"
            ) from None
        if not 0.0 <= float(self.predicted_maps_conf_thr) <= 1.0:
            raise UserError(
                f"predicted_maps_conf_thr={self.predicted_maps_conf_thr} is outside [0, 1]: "
                "give a score threshold between 0 and 1"
            )
        if int(self.max_explain_chunk) < 1:
            raise UserError(f"max_explain_chunk={self.max_explain_chunk} must be a positive integer")

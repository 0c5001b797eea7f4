"""Which explain algorithm a model gets: chosen by model type, or requested and checked."""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)

ACTIVATION_MAP = "ActivationMap"
BY_MODEL_TYPE = {
    "cnn": "ReciproCAM",
    "vit": "ViTReciproCAM",
    "single_stage_detector": "DetClassProbabilityMap",
    "mask_rcnn": "InstSegMaskAggregation",
}


def choose_method(model_name: str, requested: str, cut: bool = True, kind: str = "cnn") -> str:
    """The algorithm for a model of ``kind``: its specific one when ``cut`` (it can run it), else the
    Activation Map with a warning; a requested method the model cannot run is a one-line error."""
    specific = BY_MODEL_TYPE[kind]
    allowed = [specific, ACTIVATION_MAP] if cut else [ACTIVATION_MAP]
    if requested == "auto":
        if not cut:
            log.warning("%s has no %s support: falling back to the Activation Map (class-agnostic)",
                        model_name, specific)
        return allowed[0]
    if requested not in allowed:
        raise ValueError(f"explain_method {requested!r} is not supported for {model_name}: "
                         f"use auto or one of {', '.join(allowed)}")
    return requested

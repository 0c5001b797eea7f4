"""Which explain algorithm a model gets: chosen by model type, or requested and checked."""

from __future__ import annotations

import logging

from otx_xai.explain.methods.base import ExplainAlgo
from otx_xai.explain.methods.forward.activation_map import ActivationMap
from otx_xai.explain.methods.forward.eigen_cam import EigenCAM

log = logging.getLogger(__name__)

ACTIVATION_MAP = "ActivationMap"
EIGEN_CAM = "EigenCAM"
CLASS_AGNOSTIC = [ACTIVATION_MAP, EIGEN_CAM]  # one map per image, filling every class channel
BY_MODEL_TYPE = {
    "cnn": "ReciproCAM",
    "vit": "ViTReciproCAM",
    "single_stage_detector": "DetClassProbabilityMap",
    "mask_rcnn": "InstSegMaskAggregation",
}


def choose_method(model_name: str, requested: str, cut: bool = True, kind: str = "cnn") -> str:
    """The algorithm for a model of ``kind``: its specific one when ``cut`` (it can run it), else the
    Activation Map with a warning; a requested method the model cannot run is a one-line error.
    Classifiers (``cnn``, ``vit``) also run the class-agnostic Eigen-CAM on request."""
    specific = BY_MODEL_TYPE[kind]
    agnostic = CLASS_AGNOSTIC if kind in ("cnn", "vit") else [ACTIVATION_MAP]
    allowed = [specific, *agnostic] if cut else agnostic
    if requested == "auto":
        if not cut:
            log.warning("%s has no %s support: falling back to the Activation Map (class-agnostic)",
                        model_name, specific)
        return allowed[0]
    if requested not in allowed:
        raise ValueError(f"explain_method {requested!r} is not supported for {model_name}: "
                         f"use auto or one of {', '.join(allowed)}")
    return requested


WHITE_BOX_BY_TASK = {"classification": ["ReciproCAM", "ViTReciproCAM", *CLASS_AGNOSTIC],
                     "detection": ["DetClassProbabilityMap"], "instance_segmentation": ["InstSegMaskAggregation"]}
DEFAULT_BLACK_BOX = "AISE"  # the guide's black-box default: fewer inferences than RISE


def explain_time_method(model_name: str, task: str, requested: str, own: str, has_white_box: bool) -> str:
    """The method an explain run uses (``--explain_method``): ``auto`` keeps the model's own white-box
    method, or, for a model with none (the Activation Map fallback, an IR without XAI outputs), uses
    AISE with a warning; a named method must be one the task supports (one-line error otherwise)."""
    from otx_xai.explain.black_box.registry import black_box_names

    black_box = black_box_names(task)
    if requested == "auto":
        if has_white_box or DEFAULT_BLACK_BOX not in black_box:
            return own
        log.warning("%s has no white-box explain method: explaining with %s (black-box, perturbation-based) "
                    "instead of the Activation Map", model_name, DEFAULT_BLACK_BOX)
        return DEFAULT_BLACK_BOX
    allowed = [*WHITE_BOX_BY_TASK.get(task, []), *black_box]
    if requested not in allowed:
        raise ValueError(f"explain_method {requested!r} is not supported for {task}: use auto or one of "
                         f"{', '.join(allowed)}")
    return requested


def class_agnostic_explainer(method: str) -> ExplainAlgo:
    """The module computing a class-agnostic ``method`` (ActivationMap, EigenCAM) from a feature map."""
    return EigenCAM() if method == EIGEN_CAM else ActivationMap()

"""Which explain method a model gets: chosen by model type, or requested and checked against the registry."""

from __future__ import annotations

import logging

from otx_xai.errors import UserError
from otx_xai.explain.methods.base import ExplainAlgo
from otx_xai.explain.registry import MethodSpec, explains_through_runner, load_entry, method_spec, methods

log = logging.getLogger(__name__)

ACTIVATION_MAP = "ActivationMap"
EIGEN_CAM = "EigenCAM"
BY_MODEL_TYPE = {  # a model kind's own method: it needs the model's structure (a cut, a ViT's last block)
    "cnn": "ReciproCAM",
    "vit": "ViTReciproCAM",
    "single_stage_detector": "DetClassProbabilityMap",
    "mask_rcnn": "InstSegMaskAggregation",
}
TASK_OF_MODEL_TYPE = {"cnn": "classification", "vit": "classification", "single_stage_detector": "detection",
                      "mask_rcnn": "instance_segmentation"}
WHITE_BOX_FAMILIES = ("forward", "gradient")  # built into the model's explain forward
CAM = "CAM"  # a cut CNN with a GAP + one Linear head (the model checks its head)
GRADIENT = [spec.name for spec in methods(family="gradient") if spec.name in  # the gradient CAMs: at a cut
            ("GradCAM", "GradCAMPlusPlus", "XGradCAM", "LayerCAM")]
DEFAULT_BLACK_BOX = "AISE"  # the guide's black-box default: fewer inferences than RISE


def _names(specs: list[MethodSpec]) -> list[str]:
    return [spec.name for spec in specs]


def white_box_methods(task: str, backend: str | None = None) -> list[MethodSpec]:
    """The forward and gradient methods of ``task`` built into a model's explain forward (not I-GOS: it
    explains through a ModelRunner)."""
    return [spec for spec in methods(task=task, backend=backend)
            if spec.family in WHITE_BOX_FAMILIES and not explains_through_runner(spec)]


def model_agnostic_methods(task: str) -> list[str]:
    """White-box methods any model of ``task`` can run once its feature map is found (not one model
    kind's own method, such as Recipro-CAM for CNNs)."""
    specific = set(BY_MODEL_TYPE.values())
    return [name for name in _names(white_box_methods(task)) if name not in specific]


def choose_method(model_name: str, requested: str, cut: bool = True, kind: str = "cnn") -> str:
    """The algorithm for a model of ``kind``: its specific one when ``cut`` (it can run it), else the
    Activation Map with a warning; a requested method the model cannot run is a one-line error.
    Classifiers also run the registry's other forward and gradient methods (Eigen-CAM, the gradient CAMs;
    a CNN also CAM) on request; a CNN that cannot be cut runs only the class-agnostic ones."""
    specific = BY_MODEL_TYPE[kind]
    agnostic = model_agnostic_methods(TASK_OF_MODEL_TYPE[kind])
    needs_cut = {CAM, *GRADIENT} if kind == "cnn" and not cut else {CAM} if kind != "cnn" else set()
    agnostic = [name for name in agnostic if name not in needs_cut]  # CAM: a CNN's GAP + Linear head
    allowed = [specific, *agnostic] if cut else agnostic
    if requested == "auto":
        if not cut:
            log.warning("%s has no %s support: falling back to the Activation Map (class-agnostic)",
                        model_name, specific)
        return specific if cut else ACTIVATION_MAP
    if requested not in allowed:
        raise UserError(f"explain_method {requested!r} is not supported for {model_name}: "
                        f"use auto or one of {', '.join(allowed)}")
    return requested


def explain_time_method(model_name: str, task: str, requested: str, own: str, has_white_box: bool,
                        backend: str | None = None) -> str:
    """The method an explain run uses (``--explain_method``): ``auto`` keeps the model's own white-box
    method, or, for a model with none (the Activation Map fallback, an IR without XAI outputs), uses
    AISE with a warning; a named method must be one the registry lists for the task (and ``backend``,
    ``checkpoint`` or ``ir``, when given): a one-line error naming them otherwise."""
    available = _names(methods(task=task, backend=backend))
    if requested == "auto":
        if has_white_box or DEFAULT_BLACK_BOX not in available:
            return own
        log.warning("%s has no white-box explain method: explaining with %s (black-box, perturbation-based) "
                    "instead of the Activation Map", model_name, DEFAULT_BLACK_BOX)
        return DEFAULT_BLACK_BOX
    if requested not in available:
        if backend == "ir" and requested in _names(methods(task=task, backend="checkpoint")):
            raise UserError(f"explain_method {requested!r} needs the model's gradients, which an IR does not "
                            f"give: explain the .ckpt, or use one of the IR's forward-only methods "
                            f"({', '.join(available)})")
        raise UserError(f"explain_method {requested!r} is not supported for {task}: use auto or one of "
                        f"{', '.join(available)}")
    return requested


def class_agnostic_explainer(method: str) -> ExplainAlgo:
    """The module computing a class-agnostic ``method`` (ActivationMap, EigenCAM, ...) from a feature map."""
    return load_entry(method_spec(method))()

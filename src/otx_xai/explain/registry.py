"""Every explain method otx_xai has, declared as data: the one list that ``--explain_method`` validation,
``auto``, the error naming the alternatives and the method tables (README, docs) read.

A new method is one file under ``explain/methods/<family>/`` plus one ``MethodSpec`` in its family's
group below. This module imports no method: ``entry`` names the implementation as ``"module:attribute"``
and ``load_entry`` imports it when a run needs it, so any module may read the registry without a cycle.

What ``entry`` names, by family:

- ``forward`` and ``gradient``: the ``ExplainAlgo`` subclass the model's explain forward runs;
- ``perturbation``: a mapping ``{task: factory}``, ``factory(BlackBoxConfig)`` giving the object that
  explains a batch through a ``ModelRunner`` (``explain/black_box/protocol.py``), on a checkpoint or an IR.
  A gradient method that optimizes an input mask (I-GOS, I-GOS++) names such a mapping too: it explains
  through the runner's torch module rather than inside the model's forward (``explains_through_runner``).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from otx_xai.errors import UserError

FAMILIES = ("forward", "gradient", "perturbation")
TASKS = ("classification", "detection", "instance_segmentation")
BACKENDS = ("checkpoint", "ir")


@dataclass(frozen=True)
class MethodSpec:
    """One explain method: what it is called, where it runs, what it costs, its settings.

    Args:
        name: the ``--explain_method`` value, e.g. ``"ReciproCAM"``.
        family: ``"forward"`` (computed in the model's forward pass), ``"gradient"`` or ``"perturbation"``
            (scores perturbed inputs; perturbation and search methods).
        tasks: the tasks it explains (``classification``, ``detection``, ``instance_segmentation``).
        backends: where it runs: ``checkpoint`` (a Lightning checkpoint) and/or ``ir`` (an OpenVINO IR;
            for forward methods, an IR exported with the method's maps).
        entry: ``"module:attribute"`` of the implementation (imported by ``load_entry``).
        summary: one line for the method tables.
        cost: model inferences per image, e.g. ``"1 forward + 1 batched backward"``.
        settings: setting -> default (what a user can change, under the name they change it by).
    """

    name: str
    family: str
    tasks: tuple[str, ...]
    backends: tuple[str, ...]
    entry: str
    summary: str
    cost: str
    settings: Mapping[str, Any] = field(default_factory=dict)


# ---- forward: computed in the model's own forward pass (also traced into the IR) ----------------------
FORWARD = (
    MethodSpec(
        name="ReciproCAM", family="forward", tasks=("classification",), backends=BACKENDS,
        entry="otx_xai.explain.methods.forward.recipro_cam:ReciproCAM",
        summary="CNN classifiers: the head re-scores the feature map with one position kept at a time "
                "(gradient-free CAM; the default for CNNs)",
        cost="1 forward (the head runs on h·w masked copies of the feature map, batched)",
        settings={"max_explain_chunk": 4096}),
    MethodSpec(
        name="ViTReciproCAM", family="forward", tasks=("classification",), backends=BACKENDS,
        entry="otx_xai.explain.methods.forward.vit_recipro_cam:ViTReciproCAM",
        summary="ViT/DeiT classifiers: the last block re-scores the tokens with one patch (3×3 Gaussian "
                "neighbourhood) kept at a time (the default for ViTs)",
        cost="1 forward (the last block's CLS row on N patch copies, as batched products)",
        settings={"use_gaussian": True, "max_explain_chunk": 4096}),
    MethodSpec(
        name="ActivationMap", family="forward", tasks=TASKS, backends=BACKENDS,
        entry="otx_xai.explain.methods.forward.activation_map:ActivationMap",
        summary="channel mean of the feature map, one class-agnostic map (the fallback of any model)",
        cost="1 forward"),
    MethodSpec(
        name="EigenCAM", family="forward", tasks=("classification",), backends=BACKENDS,
        entry="otx_xai.explain.methods.forward.eigen_cam:EigenCAM",
        summary="first principal component of the feature map, one class-agnostic map",
        cost="1 forward (+ a power iteration on the C'×C' Gram matrix)",
        settings={"squarings": 16}),
    MethodSpec(
        name="DetClassProbabilityMap", family="forward", tasks=("detection",), backends=BACKENDS,
        entry="otx_xai.explain.methods.forward.det_class_prob_map:DetClassProbabilityMap",
        summary="single-stage detectors: class scores of the head per pyramid level, max over anchors, "
                "averaged over levels (plus per-box maps, DetBoxProbabilityMap)",
        cost="1 forward",
        settings={"use_softmax": True}),
    MethodSpec(
        name="InstSegMaskAggregation", family="forward", tasks=("instance_segmentation",), backends=BACKENDS,
        entry="otx_xai.explain.methods.forward.instance_seg_map:InstSegMaskMap",
        summary="Mask R-CNN: per class, the score-weighted mean of the predicted masks",
        cost="1 forward"),
    MethodSpec(
        name="CAM", family="forward", tasks=("classification",), backends=BACKENDS,
        entry="otx_xai.explain.methods.forward.cam:CAM",
        summary="CNNs with a global-average-pooling + one Linear head: the classifier row of each class "
                "weights the last feature map (Zhou et al., 2016)",
        cost="1 forward (one 1×1 convolution of the feature map)"),
)

# ---- gradient: one forward and backward passes through the checkpoint --------------------------------
_GRADIENT_SETTINGS = {"max_explain_chunk": 4096}  # the layer: --explain_layer (default: the traced cut)
GRADIENT: tuple[MethodSpec, ...] = (
    MethodSpec(
        name="GradCAM", family="gradient", tasks=("classification",), backends=("checkpoint",),
        entry="otx_xai.explain.methods.gradient.grad_cam:GradCAM",
        summary="channels weighted by the spatial mean of the class logit's gradient, ReLU "
                "(Selvaraju et al., 2017), at the traced last feature map or --explain_layer",
        cost="1 forward + batched backward passes through the head (all classes at once)",
        settings=_GRADIENT_SETTINGS),
    MethodSpec(
        name="GradCAMPlusPlus", family="gradient", tasks=("classification",), backends=("checkpoint",),
        entry="otx_xai.explain.methods.gradient.grad_cam_plusplus:GradCAMPlusPlus",
        summary="Grad-CAM++: positive gradients weighted by closed-form higher-order coefficients "
                "(Chattopadhay et al., 2018)",
        cost="1 forward + batched backward passes through the head (all classes at once)",
        settings=_GRADIENT_SETTINGS),
    MethodSpec(
        name="XGradCAM", family="gradient", tasks=("classification",), backends=("checkpoint",),
        entry="otx_xai.explain.methods.gradient.xgrad_cam:XGradCAM",
        summary="XGrad-CAM: gradients weighted by each activation's share of its channel (Fu et al., 2020)",
        cost="1 forward + batched backward passes through the head (all classes at once)",
        settings=_GRADIENT_SETTINGS),
    MethodSpec(
        name="LayerCAM", family="gradient", tasks=("classification",), backends=("checkpoint",),
        entry="otx_xai.explain.methods.gradient.layer_cam:LayerCAM",
        summary="LayerCAM: each position weighted by its own positive gradient (Jiang et al., 2021)",
        cost="1 forward + batched backward passes through the head (all classes at once)",
        settings=_GRADIENT_SETTINGS),
    MethodSpec(
        name="IGOS", family="gradient", tasks=("classification",), backends=("checkpoint",),
        entry="otx_xai.explain.methods.gradient.igos:FOR_TASK",
        summary="I-GOS: the smallest, smoothest deletion mask (28×28 at 224 px, blurred-image baseline) "
                "killing the class score, by integrated-gradient descent with an L1 + TV loss and a line search",
        cost="per explained class iterations·ig_steps forward+backward (balance: 20·15) + ig_steps forwards per "
             "line-search trial",
        settings={"preset": "balance", "iterations": 20, "ig_steps": 15, "seed": 0}),
    MethodSpec(
        name="IGOSPlusPlus", family="gradient", tasks=("classification",), backends=("checkpoint",),
        entry="otx_xai.explain.methods.gradient.igos_plus_plus:FOR_TASK",
        summary="I-GOS++: deletion and insertion masks optimized together (their product the map), bilateral "
                "TV to follow the image's edges",
        cost="per explained class 4·iterations·ig_steps forward+backward (balance: 4·15·20) + 4·ig_steps "
             "forwards per line-search trial",
        settings={"preset": "balance", "iterations": 15, "ig_steps": 20, "seed": 0}),
)

# ---- perturbation and search: model outputs on perturbed inputs, any model, checkpoint or IR ----------
PERTURBATION = (
    MethodSpec(
        name="RISE", family="perturbation", tasks=("classification", "detection"), backends=BACKENDS,
        entry="otx_xai.explain.methods.perturbation.rise:FOR_TASK",
        summary="random cell masks, each class's map the score-weighted mean of the masks "
                "(on a detector RISE is D-RISE)",
        cost="num_masks inferences (preset speed/balance/quality: 1000/2000/5000), every class at once",
        settings={"preset": "balance", "num_masks": 2000, "num_cells": 8, "prob": 0.5, "seed": 0,
                  "batch_size": 32}),
    MethodSpec(
        name="DRISE", family="perturbation", tasks=("detection",), backends=BACKENDS,
        entry="otx_xai.explain.methods.perturbation.drise:FOR_TASK",
        summary="D-RISE: RISE's masks scored by each detected box's similarity to the masked image's boxes",
        cost="num_masks inferences (1000/2000/5000 by preset), every box at once",
        settings={"preset": "balance", "num_masks": 2000, "num_cells": 8, "prob": 0.5, "seed": 0,
                  "batch_size": 32}),
    MethodSpec(
        name="AISE", family="perturbation", tasks=("classification", "detection"), backends=BACKENDS,
        entry="otx_xai.explain.methods.perturbation.aise:FOR_TASK",
        summary="Gaussian kernels placed by the DIRECT optimizer where keeping (deleting) them moves the "
                "score most (the black-box default)",
        cost="per explained class 2·iterations·widths (balance: 300); per detected box iterations·widths "
             "(balance: 150)",
        settings={"preset": "balance", "iterations": 50, "kernel_widths": (0.1, 0.175, 0.25),
                  "batch_size": 32}),
    MethodSpec(
        name="Occlusion", family="perturbation", tasks=("classification",), backends=BACKENDS,
        entry="otx_xai.explain.methods.perturbation.occlusion:FOR_TASK",
        summary="a window slid over the input and set to the preprocessing mean; a pixel's map is the class "
                "score's drop averaged over the windows covering it (captum's Occlusion)",
        cost="1 + windows inferences (224 px, window 32, stride 16: 170), every class at once",
        settings={"preset": "balance", "window": 32, "stride": 16, "batch_size": 32}),
    MethodSpec(
        name="LIME", family="perturbation", tasks=("classification",), backends=BACKENDS,
        entry="otx_xai.explain.methods.perturbation.lime:FOR_TASK",
        summary="superpixels hidden at random; per class a kernel-weighted ridge regression gives each "
                "superpixel its weight (lime's LimeImageExplainer)",
        cost="num_samples inferences (preset speed/balance/quality: 500/1000/2000), every class at once",
        settings={"preset": "balance", "num_samples": 1000, "segmentation": "quickshift", "fill": "mean",
                  "seed": 0, "batch_size": 32}),
    MethodSpec(
        name="ScoreCAM", family="perturbation", tasks=("classification",), backends=BACKENDS,
        entry="otx_xai.explain.methods.perturbation.score_cam:FOR_TASK",
        summary="each channel of the feature map at the traced cut, upsampled and min-max normalized, masks "
                "the input; its weight is the class probability of the masked input (the official code's "
                "Score-CAM; checkpoint or an IR with a feature_map output)",
        cost="1 + C inferences (C: non-constant channels of the feature map, 512 for resnet18), every class "
             "at once",
        settings={"batch_size": 32, "max_explain_chunk": 4096}),
    MethodSpec(
        name="SAG", family="perturbation", tasks=("classification",), backends=BACKENDS,
        entry="otx_xai.explain.methods.perturbation.sag:FOR_TASK",
        summary="Structured Attention Graphs: beam search over a 7×7 patch grid for diverse minimal patch sets "
                "each keeping ≥ 90 % of the score, drawn as a graph of roots and children",
        cost="1 + the prior (own Recipro-CAM: 0; else RISE, 500) + ≤ beam_width·successors per level + "
             "minimizing and children (typically 100-1000)",
        settings={"preset": "balance", "patches": 7, "keep": 0.9, "beam_width": 3, "successors": 15,
                  "max_roots": 10, "shown_roots": 3, "overlap": 1, "batch_size": 32}),
)

METHODS: tuple[MethodSpec, ...] = (*FORWARD, *GRADIENT, *PERTURBATION)


def _known(specs: list[MethodSpec] | tuple[MethodSpec, ...]) -> str:
    return ", ".join(spec.name for spec in specs)


def method_spec(name: str) -> MethodSpec:
    """The method called ``name``; a ``UserError`` naming every known method otherwise."""
    for spec in METHODS:
        if spec.name == name:
            return spec
    raise UserError(f"unknown explain method {name!r}: use auto or one of {_known(METHODS)}")


def methods(task: str | None = None, backend: str | None = None, family: str | None = None) -> list[MethodSpec]:
    """The methods that explain ``task`` on ``backend`` in ``family`` (None: any), in registry order."""
    return [spec for spec in METHODS
            if (task is None or task in spec.tasks) and (backend is None or backend in spec.backends)
            and (family is None or spec.family == family)]


def explains_through_runner(spec: MethodSpec) -> bool:
    """Whether ``spec`` explains by running the model on inputs it builds (a ModelRunner: the perturbation
    methods and the input-mask gradient methods), i.e. its entry names a ``{task: factory}`` mapping."""
    return spec.entry.endswith(":FOR_TASK")


def load_entry(spec: MethodSpec) -> Any:
    """Import and return the implementation ``spec.entry`` names (``"module:attribute"``)."""
    module, _, attribute = spec.entry.partition(":")
    return getattr(importlib.import_module(module), attribute)

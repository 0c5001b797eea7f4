"""What a black-box (perturbation) method provides, and the method for a task by name.

A method turns a batch of preprocessed images and a ModelRunner into the model's plain outputs plus
``saliency_map`` uint8 (B, K, h, w) (and whatever else its task's PredictionBatch reads), so everything
downstream (sink, index, gallery, metrics) treats its maps like any other. Which methods exist, for which
tasks, is declared in ``otx_xai.explain.registry`` (family ``perturbation``); each entry names a mapping
``{task: factory}`` that ``black_box_method`` reads.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from otx_xai.errors import UserError
from otx_xai.explain.black_box.presets import BlackBoxConfig
from otx_xai.explain.black_box.runners import ModelRunner
from otx_xai.explain.config import ExplainConfig
from otx_xai.explain.entity import ModelInfo
from otx_xai.explain.registry import explains_through_runner, load_entry, method_spec, methods

PERTURBATION = "perturbation"


class BlackBoxMethod(Protocol):
    """What a perturbation method's factory builds."""

    name: str

    def explain(self, images: np.ndarray, run: ModelRunner, model: ModelInfo, config: ExplainConfig,
                targets: list[list[int]] | None = None) -> dict[str, np.ndarray]:
        """Plain outputs of ``images`` (B, 3, h, w) plus ``saliency_map``; ``targets`` (per image) overrides
        which classes (boxes) are explained where the method explains only some."""

    def settings(self) -> dict[str, Any]:
        """What ran, for the index (masks, cells, prob, seed; or iterations, kernel widths; preset)."""


MethodFactory = Callable[[BlackBoxConfig], BlackBoxMethod]


def black_box_names(task: str | None = None) -> list[str]:
    """The methods explaining through a ModelRunner for ``task`` (every task's when None), in registry
    order: the perturbation methods and the input-mask gradient methods (I-GOS, I-GOS++)."""
    return [spec.name for spec in methods(task=task) if explains_through_runner(spec)]


def is_black_box(name: str) -> bool:
    """Whether ``name`` is a perturbation method (run through a ModelRunner, checkpoint or IR)."""
    return name in black_box_names()


def black_box_outputs(name: str) -> set[str]:
    """The model outputs perturbation method ``name`` reads besides the logits (its factory's ``outputs``),
    e.g. Score-CAM's ``feature_map``, which an IR then keeps computing; empty for any other name."""
    if not is_black_box(name):
        return set()
    factories: dict[str, MethodFactory] = load_entry(method_spec(name))
    return {output for factory in factories.values() for output in getattr(factory, "outputs", ())}


def black_box_method(task: str, name: str, config: BlackBoxConfig | None = None) -> BlackBoxMethod:
    """The method ``name`` for ``task``; a one-line error names the task's methods otherwise."""
    if name not in black_box_names(task):
        known = ", ".join(black_box_names(task)) or "none"
        raise UserError(f"black-box method {name!r} is not available for {task}: use one of {known}")
    factories: dict[str, MethodFactory] = load_entry(method_spec(name))
    return factories[task](config or BlackBoxConfig())

"""The black-box methods by task and name: ``register`` adds one, ``black_box_method`` builds one.

A method turns a batch of preprocessed images and a ModelRunner into the model's plain outputs plus
``saliency_map`` uint8 (B, K, h, w) (and whatever else its task's PredictionBatch reads), so everything
downstream (sink, index, gallery, metrics) treats its maps like any other.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from otx_xai.explain.black_box.presets import BlackBoxConfig
from otx_xai.explain.black_box.runners import ModelRunner
from otx_xai.explain.config import ExplainConfig
from otx_xai.explain.entity import ModelInfo


class BlackBoxMethod(Protocol):
    """What a registered method provides."""

    name: str

    def explain(self, images: np.ndarray, run: ModelRunner, model: ModelInfo, config: ExplainConfig,
                targets: list[list[int]] | None = None) -> dict[str, np.ndarray]:
        """Plain outputs of ``images`` (B, 3, h, w) plus ``saliency_map``; ``targets`` (per image) overrides
        which classes (boxes) are explained where the method explains only some."""

    def settings(self) -> dict[str, Any]:
        """What ran, for the index (masks, cells, prob, seed; or iterations, kernel widths; preset)."""


MethodFactory = Callable[[BlackBoxConfig], BlackBoxMethod]
REGISTRY: dict[str, dict[str, MethodFactory]] = {}


def register(task: str, name: str, factory: MethodFactory) -> None:
    """Make ``name`` available to ``explain_method`` for models of ``task``."""
    REGISTRY.setdefault(task, {})[name] = factory


def black_box_names(task: str | None = None) -> list[str]:
    """The registered names for ``task`` (every task's when None)."""
    _load_builtin()
    tasks = [task] if task is not None else list(REGISTRY)
    return list(dict.fromkeys(name for t in tasks for name in REGISTRY.get(t, {})))


def is_black_box(name: str) -> bool:
    """Whether ``name`` is a black-box method for some task."""
    return name in black_box_names()


def black_box_method(task: str, name: str, config: BlackBoxConfig | None = None) -> BlackBoxMethod:
    """The method ``name`` for ``task``; a one-line error names the task's methods otherwise."""
    _load_builtin()
    methods = REGISTRY.get(task, {})
    if name not in methods:
        known = ", ".join(methods) or "none"
        raise ValueError(f"black-box method {name!r} is not available for {task}: use one of {known}")
    return methods[name](config or BlackBoxConfig())


def _load_builtin() -> None:
    """Import the modules that register the built-in methods (once); a task's module calls ``register``
    at import time and is listed here."""
    from otx_xai.explain.black_box import classification, detection  # noqa: F401

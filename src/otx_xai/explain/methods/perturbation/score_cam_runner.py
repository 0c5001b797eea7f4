"""The model as Score-CAM runs it on a checkpoint: logits and the feature map at the traced cut, per batch.

Score-CAM's cost is one forward per channel of the feature map (512 for resnet18), so those forwards run
on an inference copy of the network: batch norms folded into the convolutions before them (found in the
traced graphs, ``torch.fx.experimental.optimization.fuse``) and weights and inputs in channels-last
layout, which oneDNN convolves fastest on a CPU. The copy computes the same function to float rounding
(logits within ~1e-5) and is remade whenever the model's parameters change (training-time probes).
"""

from __future__ import annotations

import copy
import logging
from typing import Any

import numpy as np
import torch
from torch import Tensor, fx
from torch.fx.experimental.optimization import fuse

from otx_xai.errors import UserError
from otx_xai.explain.black_box.runners import ModelRunner
from otx_xai.explain.methods.perturbation.score_cam_layer import LayerForward, layer_forward

log = logging.getLogger(__name__)


def logits_and_feature_map(model: Any, images: Tensor, layer: LayerForward | None = None) -> dict[str, Tensor]:
    """``logits`` (B, K) and ``feature_map`` (B, C, h, w) of one forward of ``model`` (at ``layer``'s map)."""
    if layer is not None:
        logits, feature_map = layer(images)
        return {"logits": logits, "feature_map": feature_map}
    if hasattr(model, "logits_and_feature_map"):
        logits, feature_map = model.logits_and_feature_map(images)
        return {"logits": logits, "feature_map": feature_map}
    outputs = model.forward_explain(images)
    if outputs.get("feature_map") is None:
        raise UserError(f"{type(model).__name__} gives no feature_map: Score-CAM needs the feature map its "
                        "saliency is computed from (use another explain method)")
    return {"logits": outputs["logits"], "feature_map": outputs["feature_map"]}


def _fingerprint(model: torch.nn.Module) -> tuple[tuple[int, int], ...]:
    """Which tensors the model holds and how often each was changed in place (an optimizer step counts)."""
    return tuple((t.data_ptr(), t._version) for t in (*model.parameters(), *model.buffers()))


def inference_copy(model: torch.nn.Module) -> torch.nn.Module:
    """An eval copy of ``model`` with batch norms folded into the convolutions of its traced graphs and its
    weights channels-last (see the module docstring)."""
    clone = copy.deepcopy(model).eval()
    if isinstance(clone, fx.GraphModule):
        clone = _folded(clone)
    for name, graph_module in [(n, m) for n, m in clone.named_modules() if isinstance(m, fx.GraphModule) and n]:
        parent, _, attribute = name.rpartition(".")
        setattr(clone.get_submodule(parent), attribute, _folded(graph_module))
    return clone.to(memory_format=torch.channels_last)


def _folded(graph_module: fx.GraphModule) -> fx.GraphModule:
    """``graph_module`` with each batch norm that follows a convolution folded into it (itself on failure)."""
    try:
        return fuse(graph_module, inplace=False, no_trace=True)
    except (RuntimeError, TypeError, ValueError, AttributeError) as error:
        log.debug("Score-CAM: batch norms of %s not folded (%s)", type(graph_module).__name__, error)
        return graph_module


class InferenceCopies:
    """Inference copies of the last ``size`` models asked for (e.g. a model and the sanity check's
    randomized copy of it), each remade when its model's weights change."""

    def __init__(self, size: int = 2) -> None:
        self.size = size
        self._copies: dict[int, tuple[tuple[tuple[int, int], ...], torch.nn.Module]] = {}

    def of(self, model: torch.nn.Module) -> torch.nn.Module:
        fingerprint = _fingerprint(model)
        held = self._copies.pop(id(model), None)
        if held is None or held[0] != fingerprint:
            held = (fingerprint, inference_copy(model))
        self._copies[id(model)] = held  # the most recent last
        while len(self._copies) > self.size:
            self._copies.pop(next(iter(self._copies)))
        return held[1]


def feature_map_runner(model: torch.nn.Module, batch_size: int, layer: str | None = None) -> ModelRunner:
    """Preprocessed images (N, 3, H, W) → ``logits`` and ``feature_map`` of ``model`` (at the module called
    ``layer``, if given), ``batch_size`` at a time."""
    forward = layer_forward(model, layer) if layer else None

    def run(images: np.ndarray) -> dict[str, np.ndarray]:
        parts: dict[str, list[np.ndarray]] = {"logits": [], "feature_map": []}
        with torch.inference_mode():
            for start in range(0, len(images), batch_size):
                batch = torch.from_numpy(np.ascontiguousarray(images[start : start + batch_size], dtype=np.float32))
                outputs = logits_and_feature_map(model, batch.contiguous(memory_format=torch.channels_last), forward)
                for name in parts:
                    parts[name].append(outputs[name].float().contiguous().cpu().numpy())
        return {name: np.concatenate(values) for name, values in parts.items()}

    return run

"""The model as Score-CAM runs it on a checkpoint: logits and the feature map at the traced cut, per batch.

Score-CAM's cost is one forward per channel of the feature map (512 for resnet18), so those forwards run
on an inference copy of the network (``explain/black_box/inference_copy.py``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from otx_xai.errors import UserError
from otx_xai.explain.black_box.runners import ModelRunner
from otx_xai.explain.methods.perturbation.score_cam_layer import LayerForward, layer_forward


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

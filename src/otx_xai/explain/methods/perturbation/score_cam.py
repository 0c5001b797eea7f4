"""Score-CAM (Wang et al. 2020): each channel of the feature map, as a mask on the input, is weighted by
the class score the model gives the masked input (``score_cam_core``: the formula and its cost).

Runs wherever a model gives its logits and the feature map at the traced cut (the one Recipro-CAM uses;
Swin's token grid; a torchvision ViT's patch-token grid, the CLS token left out): a checkpoint (through
the Trainer, as a black-box module) or an IR with a ``feature_map`` output (otx_xai's explain export, or
one otx_xai did not write, whose global pooling's input the insertion exposes). It costs one forward for
the image and one per non-constant channel, whatever the number of classes explained. Maps are at the
input size, uint8, each class map min-max normalized (``normalize_map``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from otx_xai.errors import UserError
from otx_xai.explain.black_box.classification import CALLS_IN_FLIGHT, class_scores, explained_classes
from otx_xai.explain.black_box.inference_copy import InferenceCopies
from otx_xai.explain.black_box.presets import BlackBoxConfig
from otx_xai.explain.black_box.runners import ModelRunner
from otx_xai.explain.config import ExplainConfig
from otx_xai.explain.entity import ModelInfo
from otx_xai.explain.methods.base import normalize_map
from otx_xai.explain.methods.perturbation.score_cam_core import score_cam_saliency, score_cam_weights
from otx_xai.explain.methods.perturbation.score_cam_layer import check_layer
from otx_xai.explain.methods.perturbation.score_cam_runner import feature_map_runner

MAPS_PER_STEP = 64  # class maps upsampled and normalized at once (K = 1000 at 224 px would take 200 MB)


class ScoreCAM:
    """Score-CAM over a classifier's feature map; the masked forwards are shared by all classes.

    Masked images are scored ``min(batch_size × CALLS_IN_FLIGHT, max_explain_chunk)`` per runner call (an
    IR keeps ``CALLS_IN_FLIGHT`` batches of ``batch_size`` in flight), which bounds the extra memory.
    """

    name = "ScoreCAM"
    outputs = ("logits", "feature_map")  # what the runner must give (an IR keeps its feature_map output)

    def __init__(self, config: BlackBoxConfig | None = None, layer: str | None = None) -> None:
        self.config = config or BlackBoxConfig()
        self.layer = layer  # a module picked by name (checkpoints only); None: the traced cut's feature map
        self._copies = InferenceCopies()

    def settings(self) -> dict[str, Any]:
        return {"method": self.name, "layer": self.layer or "feature_map (the traced cut)", "upsampling": "bilinear",
                "batch_size": self.config.batch_size, "masked_images_per_call": self.chunk(None),
                "inferences_per_image": "1 + one per non-constant channel of the feature map"}

    def chunk(self, config: ExplainConfig | None) -> int:
        """Masked images per runner call."""
        chunk = self.config.batch_size * CALLS_IN_FLIGHT
        return min(chunk, int(config.max_explain_chunk)) if config is not None else chunk

    def check_layer(self, model: Any) -> None:
        """A one-line error before the run when ``layer`` is not a spatial layer of ``model``."""
        if self.layer:
            check_layer(model, self.layer)

    def torch_runner(self, model: Any, batch_size: int) -> ModelRunner:
        """Logits and feature map of a checkpoint's model, on its inference copy (``score_cam_runner``)."""
        return feature_map_runner(self._copies.of(model), batch_size, self.layer)

    def explain(self, images: np.ndarray, run: ModelRunner, model: ModelInfo, config: ExplainConfig,
                targets: list[list[int]] | None = None) -> dict[str, np.ndarray]:
        outputs = run(images)
        if "feature_map" not in outputs:
            raise UserError("Score-CAM needs the model's feature_map: export the IR with `otx export --explain "
                            "True` (or use an IR whose global pooling otx_xai finds), or pick another method")
        feature_maps = torch.from_numpy(np.ascontiguousarray(outputs["feature_map"], dtype=np.float32))
        if feature_maps.ndim != 4:
            raise UserError(f"feature_map has shape {tuple(feature_maps.shape)}, not (B, C, h, w): Score-CAM "
                            "needs a spatial feature map")
        scores = class_scores(outputs["logits"], model.multilabel)
        pixels = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32))

        def score_fn(masked: torch.Tensor) -> torch.Tensor:
            return torch.from_numpy(class_scores(run(masked.numpy())["logits"], model.multilabel)).float()

        weights = score_cam_weights(pixels, feature_maps, score_fn, scores.shape[1], self.chunk(config))
        size = (int(images.shape[-2]), int(images.shape[-1]))
        maps = np.zeros((len(images), scores.shape[1], *size), dtype=np.uint8)
        for index in range(len(images)):
            classes = targets[index] if targets is not None else explained_classes(scores[index], model, config)
            for start in range(0, len(classes), MAPS_PER_STEP):
                picked = list(classes[start : start + MAPS_PER_STEP])
                saliency = score_cam_saliency(feature_maps[index : index + 1], weights[index : index + 1, picked],
                                              size)
                maps[index, picked] = normalize_map(saliency)[0].numpy()
        plain = {name: value for name, value in outputs.items() if name != "feature_map"}  # IMAGE: max of the maps
        return {**plain, "saliency_map": maps}


FOR_TASK = {"classification": ScoreCAM}

"""The model as the metrics see it: original-space RGB images in, class scores or a class map out.

The same two operations exist for a checkpoint (torch) and an exported IR, so insertion/deletion and
ADCC run the model's own inference whichever the run explains.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np
import torch

from otx_xai.data.transforms import Preprocess
from otx_xai.explain.entity import softmax
from otx_xai.metrics import resize_map


class ImageScorer(ABC):
    """Preprocess + a function from an input batch to IR-named outputs."""

    def __init__(self, preprocess: Preprocess, multilabel: bool) -> None:
        self.preprocess = preprocess
        self.multilabel = multilabel

    @abstractmethod
    def _outputs(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        """IR-named outputs of a preprocessed batch (N, 3, h, w)."""

    def _inputs(self, images: np.ndarray) -> np.ndarray:
        return np.stack([self.preprocess(image)[0].numpy() for image in images])

    def scores(self, images: np.ndarray) -> np.ndarray:
        """Class scores (N, K) of uint8 RGB images (N, H, W, 3)."""
        logits = self._outputs(self._inputs(images))["logits"].astype(np.float64)
        return 1.0 / (1.0 + np.exp(-logits)) if self.multilabel else softmax(logits)

    def _saliency(self, batch: np.ndarray, target: int) -> np.ndarray:
        """uint8 maps (N, K, h, w) of a preprocessed batch (``target``: the class the caller reads)."""
        return self._outputs(batch)["saliency_map"]

    def raw_class_map(self, image: np.ndarray, target: int) -> np.ndarray:
        """The model's uint8 saliency map of class ``target`` for one image, at the feature grid."""
        return self._saliency(self._inputs(image[None]), target)[0, target]

    def class_map(self, image: np.ndarray, target: int) -> np.ndarray:
        """The model's saliency map of class ``target`` for one image, resized to the image."""
        return resize_map(self.raw_class_map(image, target).astype(np.float32), image.shape[:2])


class TorchScorer(ImageScorer):
    """A LightningModule implementing forward_explain."""

    def __init__(self, model: Any, preprocess: Preprocess, multilabel: bool) -> None:
        super().__init__(preprocess, multilabel)
        self.model = model

    def _outputs(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        with torch.inference_mode():
            outputs = self.model.forward_explain(torch.from_numpy(batch))
        return {name: value.cpu().numpy() for name, value in outputs.items()}


class IRScorer(ImageScorer):
    """An exported IR with XAI outputs (otx_xai.openvino.inference.IRModel)."""

    def __init__(self, ir: Any, preprocess: Preprocess, multilabel: bool) -> None:
        super().__init__(preprocess, multilabel)
        self.ir = ir

    def _outputs(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        return self.ir.infer(batch)


class BlackBoxScorer(ImageScorer):
    """A model reached through a ModelRunner (torch or IR) and explained by a black-box method: scores
    are one plain inference, maps re-run the method (for ADCC's coherency and the sanity check)."""

    def __init__(self, run: Any, method: Any, info: Any, config: Any, preprocess: Preprocess) -> None:
        super().__init__(preprocess, info.multilabel)
        self.run, self.method, self.info, self.config = run, method, info, config

    def _outputs(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        return self.run(batch)

    def _saliency(self, batch: np.ndarray, target: int) -> np.ndarray:
        targets = [[target]] * len(batch)
        return self.method.explain(batch, self.run, self.info, self.config, targets)["saliency_map"]

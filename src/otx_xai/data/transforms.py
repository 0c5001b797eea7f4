"""Turning an RGB image into the model's input tensor: resize (or letterbox) and normalize."""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np
import torch

IMAGENET_MEAN = [123.675, 116.28, 103.53]
IMAGENET_STD = [58.395, 57.12, 57.375]


@dataclass
class Preprocess:
    """Resize to ``input_size`` (h, w) — keeping the aspect ratio and padding bottom/right when
    ``letterbox`` — then normalize with ``mean``/``std`` given in 0..255 pixel units."""

    input_size: tuple[int, int] = (224, 224)
    mean: list[float] = field(default_factory=lambda: list(IMAGENET_MEAN))
    std: list[float] = field(default_factory=lambda: list(IMAGENET_STD))
    letterbox: bool = False

    def __call__(self, image: np.ndarray) -> tuple[torch.Tensor, tuple[int, int]]:
        """(3, h, w) float tensor and the (h, w) region of it that holds the image."""
        resized, valid = self.resize(image)
        normalized = (resized.astype(np.float32) - np.float32(self.mean)) / np.float32(self.std)
        return torch.from_numpy(np.ascontiguousarray(normalized.transpose(2, 0, 1))), valid

    def resize(self, image: np.ndarray) -> tuple[np.ndarray, tuple[int, int]]:
        """The resized (letterboxed) uint8 image and its valid (h, w) region."""
        height, width = self.input_size
        if not self.letterbox:
            return cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR), (height, width)
        scale = min(height / image.shape[0], width / image.shape[1])
        valid = (max(1, round(image.shape[0] * scale)), max(1, round(image.shape[1] * scale)))
        canvas = np.zeros((height, width, 3), dtype=np.uint8)
        canvas[: valid[0], : valid[1]] = cv2.resize(image, (valid[1], valid[0]), interpolation=cv2.INTER_LINEAR)
        return canvas, valid

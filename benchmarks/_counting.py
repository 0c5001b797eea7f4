"""A model runner that counts the images it ran: the black-box benchmarks' inferences per image."""

from __future__ import annotations

import numpy as np

from otx_xai.explain.black_box.runners import ModelRunner


class CountingRunner:
    """A runner that counts the images it ran."""

    def __init__(self, run: ModelRunner) -> None:
        self.run, self.images = run, 0

    def __call__(self, images: np.ndarray) -> dict[str, np.ndarray]:
        self.images += len(images)
        return self.run(images)

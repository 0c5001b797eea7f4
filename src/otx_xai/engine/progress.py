"""Progress bars for people at a terminal: a Lightning bar with images/s, and one for the IR loop.

Nothing is drawn when stderr is not a terminal (CI logs, pipes, notebooks): ``interactive()`` decides.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import lightning
from lightning.pytorch.callbacks import TQDMProgressBar
from tqdm import tqdm

from otx_xai.data.dataset import batch_images


def interactive() -> bool:
    """Whether progress bars are shown: only when stderr (where they are drawn) is a terminal."""
    return sys.stderr.isatty()


class ImagesPerSecondBar(TQDMProgressBar):
    """Lightning's tqdm bar, with the images per second of the running stage in its postfix."""

    def __init__(self) -> None:
        super().__init__(leave=False)
        self._images = 0
        self._start = time.perf_counter()
        self._rate: dict[str, str] = {}

    def _reset(self) -> None:
        self._images, self._start, self._rate = 0, time.perf_counter(), {}

    def _count(self, batch: Any) -> dict[str, str]:
        images = batch_images(batch)
        self._images += int(images.shape[0]) if hasattr(images, "shape") and images.dim() else 0
        return {"img/s": f"{self._images / max(time.perf_counter() - self._start, 1e-9):.1f}"}

    def on_train_epoch_start(self, trainer: lightning.Trainer, *args: Any) -> None:
        super().on_train_epoch_start(trainer, *args)
        self._reset()

    def on_train_batch_end(self, trainer: lightning.Trainer, pl_module: lightning.LightningModule, outputs: Any,
                           batch: Any, batch_idx: int) -> None:
        self._rate = self._count(batch)
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)  # postfix: get_metrics

    def get_metrics(self, trainer: lightning.Trainer, pl_module: lightning.LightningModule) -> dict[str, Any]:
        return {**super().get_metrics(trainer, pl_module), **self._rate}

    def on_predict_start(self, trainer: lightning.Trainer, pl_module: lightning.LightningModule) -> None:
        super().on_predict_start(trainer, pl_module)
        self._reset()

    def on_predict_batch_end(self, trainer: lightning.Trainer, pl_module: lightning.LightningModule, outputs: Any,
                             batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        super().on_predict_batch_end(trainer, pl_module, outputs, batch, batch_idx, dataloader_idx)
        self.predict_progress_bar.set_postfix(self._count(batch))

    def on_test_start(self, trainer: lightning.Trainer, pl_module: lightning.LightningModule) -> None:
        super().on_test_start(trainer, pl_module)
        self._reset()

    def on_test_batch_end(self, trainer: lightning.Trainer, pl_module: lightning.LightningModule, outputs: Any,
                          batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        super().on_test_batch_end(trainer, pl_module, outputs, batch, batch_idx, dataloader_idx)
        self.test_progress_bar.set_postfix(self._count(batch))


def trainer_progress(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Trainer arguments with the images/s bar added at a terminal, and no bar otherwise."""
    if not interactive():
        return {**kwargs, "enable_progress_bar": False}
    return {**kwargs, "enable_progress_bar": True, "callbacks": [*kwargs.get("callbacks", []), ImagesPerSecondBar()]}


def image_bar(total: int, description: str) -> tqdm:
    """A bar counting images (its rate reads img/s) for loops outside Lightning; disabled off a terminal."""
    return tqdm(total=total, desc=description, unit="img", leave=False, dynamic_ncols=True, disable=not interactive())

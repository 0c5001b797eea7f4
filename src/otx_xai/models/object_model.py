"""What detectors and instance segmenters share: labels, optimizer, the predict/export dispatch, training.

Their outputs are dicts named as in the IR (``bboxes``, ``labels``, ...); a subclass says what an empty
batch predicts (``empty_predictions``) and how a batch's losses are computed (``losses``).
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

from otx_xai.models.base import ExplainableModel, batch_images


class ObjectModel(ExplainableModel):
    """An ExplainableModel whose predictions are objects (boxes, labels and perhaps masks).

    Subclasses call ``save_hyperparameters()`` in their own ``__init__`` (Lightning reads the caller's
    arguments) and implement ``forward``, ``forward_explain``, ``empty_predictions`` and ``losses``.
    """

    def __init__(self, label_names: list[str], lr: float) -> None:
        super().__init__()
        self.label_names = list(label_names)
        self.multilabel = False
        self.lr = lr

    def empty_predictions(self, images: Tensor) -> dict[str, Tensor]:
        """The outputs of a batch with no image (every image of it was unreadable)."""
        raise TypeError(f"{type(self).__name__} does not implement empty_predictions")

    def losses(self, batch: dict[str, Any]) -> dict[str, Tensor]:
        """The training losses of a batch with at least one image, by name."""
        raise TypeError(f"{type(self).__name__} does not implement losses")

    def export_outputs(self, images: Tensor, explain: bool) -> dict[str, Tensor]:
        return self.forward_explain(images) if explain else self(images)

    def predict_step(self, batch: Any, batch_idx: int) -> dict[str, Tensor]:
        images = batch_images(batch)
        if images.numel() == 0:
            return self.empty_predictions(images)
        return self.forward_explain(images) if self.explain_mode else self(images)

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor | None:
        if not batch["infos"]:
            return None  # every image of the batch was unreadable
        losses = self.losses(batch)
        loss = sum(losses.values())
        size = len(batch["infos"])
        self.log("train/loss", loss, prog_bar=True, batch_size=size)
        for name, value in losses.items():
            self.log(f"train/{name}", value, batch_size=size)
        return loss

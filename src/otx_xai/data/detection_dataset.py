"""Detection data: COCO records → resized images with box targets in input pixels → loaders per stage.

Training targets are scaled into model-input pixels (resize or letterbox, exactly as the image);
``ImageInfo.gt_boxes`` / ``gt_labels`` stay in original-image pixels. Unreadable images travel as
``FailedImage`` under ``"failed"``, as in the classification pipeline.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from otx_xai.data.base_datamodule import RecordsDataModule
from otx_xai.data.coco import COCO_HINT, CocoRecord
from otx_xai.data.datamodule import DataConfig
from otx_xai.data.dataset import FailedImage, RecordImageDataset, SampleRecord
from otx_xai.data.image_info import ImageInfo
from otx_xai.data.object_records import read_object_records

MIN_BOX_SIDE = 1.0  # input pixels; thinner target boxes are dropped (torchvision rejects degenerate boxes)


def scale_boxes(boxes: np.ndarray, original: tuple[int, int], valid: tuple[int, int]) -> np.ndarray:
    """Boxes (N, 4) from original-image pixels to model-input pixels (the image fills ``valid``)."""
    scale = np.array([valid[1] / original[1], valid[0] / original[0]] * 2, dtype=np.float32)
    limits = np.array([original[1], original[0]] * 2, dtype=np.float32)
    return np.clip(boxes, 0.0, limits) * scale


class DetectionDataset(RecordImageDataset):
    """Samples ``{"image", "target": {"boxes", "labels"}, "info"}`` or a ``FailedImage``."""

    def make_sample(self, record: SampleRecord, image: torch.Tensor, info: ImageInfo,
                    flipped: bool) -> dict[str, Any]:
        original, valid = info.original_size, info.valid_size
        boxes = np.asarray(record.boxes, dtype=np.float32).reshape(-1, 4)
        if flipped:
            boxes = np.stack([original[1] - boxes[:, 2], boxes[:, 1], original[1] - boxes[:, 0], boxes[:, 3]], 1)
        return {"image": image, "target": self._target(boxes, record.labels, original, valid), "info": info}

    @staticmethod
    def _target(
        boxes: np.ndarray, labels: list[int], original: tuple[int, int], valid: tuple[int, int]
    ) -> dict[str, torch.Tensor]:
        scaled = scale_boxes(boxes, original, valid)
        keep = ((scaled[:, 2] - scaled[:, 0]) >= MIN_BOX_SIDE) & ((scaled[:, 3] - scaled[:, 1]) >= MIN_BOX_SIDE)
        return {"boxes": torch.from_numpy(scaled[keep]).reshape(-1, 4),
                "labels": torch.as_tensor(np.asarray(labels, dtype=np.int64)[keep]).reshape(-1)}


def collate_detection(samples: list[dict[str, Any] | FailedImage]) -> dict[str, Any]:
    """Stack readable images, list their targets; keep unreadable ones aside under ``"failed"``."""
    good = [s for s in samples if not isinstance(s, FailedImage)]
    failed = [s for s in samples if isinstance(s, FailedImage)]
    if not good:
        return {"images": torch.zeros(0), "targets": [], "infos": [], "failed": failed}
    return {
        "images": torch.stack([s["image"] for s in good]),
        "targets": [s["target"] for s in good],
        "infos": [s["info"] for s in good],
        "failed": failed,
    }


class DetectionDataModule(RecordsDataModule):
    """Train / val / test / predict (= test) loaders over a COCO data_root.

    Subclasses (e.g. instance segmentation) override ``make_dataset`` for richer targets.
    """

    layout_hint = COCO_HINT

    def __init__(self, data_root: str, config: DataConfig | None = None) -> None:
        super().__init__(data_root, config or DataConfig(), read_object_records(data_root))

    def make_dataset(self, records: list[CocoRecord], train: bool) -> DetectionDataset:
        return DetectionDataset(records, self.config.preprocess(), augment=train)

    @property
    def collate_fn(self) -> Callable[[list[Any]], dict[str, Any]]:
        return collate_detection

"""A torch Dataset over image records; unreadable images travel as failures, never as crashes."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch
from torch.utils.data import Dataset

from otx_xai.data.image_info import ImageInfo
from otx_xai.data.image_io import ImageReadError, printable_path, read_image_rgb
from otx_xai.data.records import ImageRecord
from otx_xai.data.transforms import Preprocess


@dataclass
class FailedImage:
    """An image that could not be read: where it is and why."""

    image_id: str
    source_path: str
    error: str


class SampleRecord(Protocol):
    """What a dataset reads from any record (ImageRecord, CocoRecord): the image and its ground truth."""

    image_id: str
    path: str
    labels: list[int]
    boxes: list


def read_record_image(record: SampleRecord) -> np.ndarray | FailedImage:
    """The record's image as RGB uint8 (H, W, 3), or a FailedImage saying why it cannot be read."""
    try:
        return read_image_rgb(record.path)
    except ImageReadError as error:
        return FailedImage(record.image_id, printable_path(record.path), str(error))


def record_info(record: SampleRecord, original: tuple[int, int], valid: tuple[int, int],
                preprocess: Preprocess) -> ImageInfo:
    """The ImageInfo of a read record: sizes, and ground truth in original-image pixels."""
    return ImageInfo(
        image_id=record.image_id, source_path=record.path, original_size=original, valid_size=valid,
        input_size=tuple(preprocess.input_size), gt_labels=list(record.labels),
        gt_boxes=[list(b) for b in record.boxes],
    )


class RecordImageDataset(Dataset, ABC):
    """What every dataset of image records shares: read the image (or a ``FailedImage``), flip it at
    random when augmenting, preprocess it and describe it; subclasses turn that into their sample."""

    def __init__(self, records: list[SampleRecord], preprocess: Preprocess, augment: bool = False) -> None:
        self.records = records
        self.preprocess = preprocess
        self.augment = augment

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> dict[str, Any] | FailedImage:
        record = self.records[index]
        image = read_record_image(record)
        if isinstance(image, FailedImage):
            return image
        original = (int(image.shape[0]), int(image.shape[1]))
        flipped = bool(self.augment and np.random.random() < 0.5)
        if flipped:
            image = np.ascontiguousarray(image[:, ::-1])
        tensor, valid = self.preprocess(image)
        return self.make_sample(record, tensor, record_info(record, original, valid, self.preprocess), flipped)

    @abstractmethod
    def make_sample(self, record: SampleRecord, image: torch.Tensor, info: ImageInfo,
                    flipped: bool) -> dict[str, Any]:
        """The sample of a read record: ``image`` preprocessed, ``flipped`` when it was mirrored left-right."""


class ImageDataset(RecordImageDataset):
    """Samples ``{"image", "label", "info"}`` or a ``FailedImage`` for unreadable files."""

    def __init__(
        self, records: list[ImageRecord], preprocess: Preprocess, num_classes: int,
        multilabel: bool = False, augment: bool = False,
    ) -> None:
        super().__init__(records, preprocess, augment)
        self.num_classes = num_classes
        self.multilabel = multilabel

    def make_sample(self, record: SampleRecord, image: torch.Tensor, info: ImageInfo,
                    flipped: bool) -> dict[str, Any]:
        return {"image": image, "label": self._target(record.labels), "info": info}

    def _target(self, labels: list[int]) -> torch.Tensor:
        if self.multilabel:
            target = torch.zeros(self.num_classes)
            target[labels] = 1.0
            return target
        return torch.tensor(labels[0] if labels else -1)


def collate(samples: list[dict[str, Any] | FailedImage]) -> dict[str, Any]:
    """Stack readable samples; keep unreadable ones aside under ``"failed"``."""
    good = [s for s in samples if not isinstance(s, FailedImage)]
    failed = [s for s in samples if isinstance(s, FailedImage)]
    if not good:
        return {"images": torch.zeros(0), "labels": torch.zeros(0), "infos": [], "failed": failed}
    return {
        "images": torch.stack([s["image"] for s in good]),
        "labels": torch.stack([s["label"] for s in good]),
        "infos": [s["info"] for s in good],
        "failed": failed,
    }


def batch_images(batch: Any) -> torch.Tensor:
    """The image tensor of a batch: a dict's ``"images"``, a tuple's first item, or the tensor itself."""
    if isinstance(batch, dict):
        return batch["images"]
    if isinstance(batch, list | tuple):
        return batch[0]
    return batch

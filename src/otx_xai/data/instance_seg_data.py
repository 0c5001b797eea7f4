"""Instance segmentation data: the COCO detection pipeline plus one mask per object, in input pixels.

Each target gains ``"masks"``: uint8 (N, H, W) at the model-input size, rasterized from the object's
polygons after scaling them exactly as the image (resize or letterbox), so mask i belongs to box i.
The horizontal flip of training is applied here, inside the valid (non-padding) region, to the image,
boxes and masks together.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import torch

from otx_xai.data.coco import CocoRecord, rasterize_polygons
from otx_xai.data.dataset import FailedImage
from otx_xai.data.detection_dataset import (
    MIN_BOX_SIDE,
    DetectionDataModule,
    DetectionDataset,
    scale_boxes,
)
from otx_xai.data.records import DatasetError
from otx_xai.data.transforms import Preprocess


def input_masks(record: CocoRecord, original: tuple[int, int], valid: tuple[int, int],
                input_size: tuple[int, int]) -> np.ndarray:
    """The record's objects as uint8 (N, H, W) masks in model-input pixels."""
    scale = np.array([valid[1] / original[1], valid[0] / original[0]])
    polygons = [[(np.asarray(p, dtype=np.float64).reshape(-1, 2) * scale).ravel().tolist() for p in parts]
                for parts in record.polygons]
    return rasterize_polygons(replace(record, polygons=polygons), *input_size).astype(np.uint8)


def flip_sample(sample: dict[str, Any]) -> dict[str, Any]:
    """Mirror image, boxes and masks left-right inside the valid region (top-left anchored)."""
    width = sample["info"].valid_size[1]
    image = sample["image"].clone()
    image[..., :width] = image[..., :width].flip(-1)
    target = dict(sample["target"])
    boxes = target["boxes"]
    target["boxes"] = torch.stack([width - boxes[:, 2], boxes[:, 1], width - boxes[:, 0], boxes[:, 3]], 1)
    masks = target["masks"].clone()
    masks[..., :width] = masks[..., :width].flip(-1)
    target["masks"] = masks
    return {**sample, "image": image, "target": target}


class InstanceSegDataset(DetectionDataset):
    """Detection samples whose targets also hold ``"masks"`` uint8 (N, H, W) in input pixels."""

    def __init__(self, records: list[CocoRecord], preprocess: Preprocess, augment: bool = False) -> None:
        super().__init__(records, preprocess, augment=False)  # the flip is done here, masks included
        self.flip = augment

    def __getitem__(self, index: int) -> dict[str, Any] | FailedImage:
        sample = super().__getitem__(index)
        if isinstance(sample, FailedImage):
            return sample
        record, info = self.records[index], sample["info"]
        masks = input_masks(record, info.original_size, info.valid_size, info.input_size)
        boxes = scale_boxes(np.asarray(record.boxes, dtype=np.float32).reshape(-1, 4), info.original_size,
                            info.valid_size)
        keep = ((boxes[:, 2] - boxes[:, 0]) >= MIN_BOX_SIDE) & ((boxes[:, 3] - boxes[:, 1]) >= MIN_BOX_SIDE)
        sample["target"] = {**sample["target"], "masks": torch.from_numpy(masks[keep])}
        if self.flip and np.random.random() < 0.5:
            sample = flip_sample(sample)
        return sample


class InstanceSegDataModule(DetectionDataModule):
    """COCO loaders for instance segmentation: every annotated object needs a polygon."""

    def make_dataset(self, records: list[CocoRecord], train: bool) -> InstanceSegDataset:
        return InstanceSegDataset(records, self.config.preprocess(), augment=train)

    def require_labels(self, stage: str) -> None:
        """Raise a one-line error when ``stage`` needs annotations, or objects lack polygons."""
        super().require_labels(stage)
        missing = [(r, i) for records in self.records.subsets.values() for r in records
                   for i, parts in enumerate(r.polygons) if not parts]
        if missing:
            raise DatasetError(
                f"{len(missing)} object(s) in {self.data_root} have a box but no polygon (first: "
                f"{missing[0][0].path}): {stage} of instance segmentation needs a COCO 'segmentation' "
                "polygon per object (RLE masks are not read)"
            )

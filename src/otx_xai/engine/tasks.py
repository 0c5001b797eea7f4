"""Which data module reads the data of each task."""

from __future__ import annotations

from typing import Any

from otx_xai.data.datamodule import ClassificationDataModule, DataConfig
from otx_xai.data.detection_dataset import DetectionDataModule
from otx_xai.data.instance_seg_data import InstanceSegDataModule
from otx_xai.errors import UserError

DATA_MODULES: dict[str, type] = {"classification": ClassificationDataModule, "detection": DetectionDataModule,
                                  "instance_segmentation": InstanceSegDataModule}


def build_datamodule(task: str, data_root: str, config: DataConfig) -> Any:
    """The data module of ``task`` over ``data_root``."""
    if task not in DATA_MODULES:
        raise UserError(f"unknown task {task!r}: one of {', '.join(DATA_MODULES)}")
    return DATA_MODULES[task](data_root, config)

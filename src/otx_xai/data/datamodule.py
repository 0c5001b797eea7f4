"""The classification data module and the data settings every recipe shares."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from otx_xai.data.base_datamodule import RecordsDataModule
from otx_xai.data.classification_records import read_classification_records
from otx_xai.data.dataset import ImageDataset, collate
from otx_xai.data.records import DatasetError, ImageRecord
from otx_xai.data.transforms import IMAGENET_MEAN, IMAGENET_STD, Preprocess
from otx_xai.errors import UserError


@dataclass
class DataConfig:
    """How a recipe reads data: input size, normalization, batching, split seed."""

    input_size: tuple[int, int] = (224, 224)
    mean: list[float] = field(default_factory=lambda: list(IMAGENET_MEAN))
    std: list[float] = field(default_factory=lambda: list(IMAGENET_STD))
    letterbox: bool = False
    batch_size: int = 16
    num_workers: int = 0
    seed: int = 0
    multilabel: bool = False

    def __post_init__(self) -> None:
        size = self.input_size
        if not (isinstance(size, list | tuple) and len(size) == 2 and all(isinstance(v, int) and v > 0 for v in size)):
            raise UserError(f"input_size must be two positive integers [height, width], not {size!r}")
        self.input_size = tuple(size)
        for name in ("mean", "std"):
            values = getattr(self, name)
            if not (isinstance(values, list | tuple) and len(values) == 3
                    and all(isinstance(v, int | float) for v in values)):
                raise UserError(f"{name} must be three numbers (R, G, B in 0..255 units), not {values!r}")
        if any(v == 0 for v in self.std):
            raise UserError("std must not contain 0")
        for name in ("batch_size", "num_workers", "seed"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < (1 if name == "batch_size" else 0):
                raise UserError(f"{name} must be a {'positive' if name == 'batch_size' else 'non-negative'} "
                                 f"integer, not {value!r}")

    def preprocess(self) -> Preprocess:
        """The input transform this config describes."""
        return Preprocess(tuple(self.input_size), list(self.mean), list(self.std), self.letterbox)


class ClassificationDataModule(RecordsDataModule):
    """Train / val / test / predict loaders over a classification data_root."""

    layout_hint = "class folders <root>/<label>/<image>"

    def __init__(self, data_root: str, config: DataConfig | None = None) -> None:
        config = config or DataConfig()
        super().__init__(data_root, config, read_classification_records(data_root, config.seed))
        if not config.multilabel and any(len(set(r.labels)) > 1 for rs in self.records.subsets.values() for r in rs):
            raise DatasetError(f"{data_root} gives several labels to some images: use a multilabel recipe "
                               "(recipes/classification/*_multilabel.yaml, data.multilabel: true)")

    def make_dataset(self, records: list[ImageRecord], train: bool) -> ImageDataset:
        return ImageDataset(records, self.config.preprocess(), len(self.label_names),
                            multilabel=self.config.multilabel, augment=train)

    @property
    def collate_fn(self) -> Callable[[list[Any]], dict[str, Any]]:
        return collate

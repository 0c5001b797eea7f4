"""The Lightning data module: records (through datumaro) → datasets → loaders per stage."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import lightning
from torch.utils.data import DataLoader

from otx_xai.data.dataset import ImageDataset, collate
from otx_xai.data.records import DatasetError, DatasetRecords, read_classification_records
from otx_xai.data.transforms import IMAGENET_MEAN, IMAGENET_STD, Preprocess

log = logging.getLogger(__name__)


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

    def preprocess(self) -> Preprocess:
        """The input transform this config describes."""
        return Preprocess(tuple(self.input_size), list(self.mean), list(self.std), self.letterbox)


class ClassificationDataModule(lightning.LightningDataModule):
    """Train / val / test / predict loaders over a classification data_root."""

    def __init__(self, data_root: str, config: DataConfig | None = None) -> None:
        super().__init__()
        self.data_root = str(data_root)
        self.config = config or DataConfig()
        self.records: DatasetRecords = read_classification_records(self.data_root, self.config.seed)

    @property
    def label_names(self) -> list[str]:
        return self.records.label_names

    def _loader(self, subset: str, train: bool = False) -> DataLoader:
        records = self.records.subsets.get(subset) or []
        if not records:
            raise DatasetError(
                f"the {subset} subset of {self.data_root} is empty: add images there "
                "(or give a folder with more images per class)"
            )
        dataset = ImageDataset(records, self.config.preprocess(), len(self.label_names),
                               multilabel=self.config.multilabel, augment=train)
        return DataLoader(dataset, batch_size=self.config.batch_size, shuffle=train,
                          num_workers=self.config.num_workers, collate_fn=collate, drop_last=False)

    def require_labels(self, stage: str) -> None:
        """Raise a one-line error when ``stage`` needs labels and the folder has none."""
        if not self.records.labelled:
            raise DatasetError(
                f"{self.data_root} holds unlabelled images: {stage} needs class folders "
                "<root>/<label>/<image>; predict and explain accept a plain folder"
            )

    def train_dataloader(self) -> DataLoader:
        self.require_labels("train")
        return self._loader("train", train=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")

    def predict_dataloader(self) -> DataLoader:
        return self._loader("test")

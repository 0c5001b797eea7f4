"""What every task's data module shares: records per subset → datasets → loaders per stage."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

import lightning
from torch.utils.data import DataLoader, Dataset

from otx_xai.data.records import DatasetError, DatasetRecords, ImageRecord


class RecordsDataModule(lightning.LightningDataModule, ABC):
    """Loaders over ``records``; subclasses say how a dataset and a batch are built.

    Predict (and so explain) reads the test subset, minus ``exclude_ids`` (images a resumed run already
    explained).
    """

    layout_hint = "see the README's data section"

    def __init__(self, data_root: str, config: Any, records: DatasetRecords) -> None:
        super().__init__()
        self.data_root = str(data_root)
        self.config = config
        self.records = records
        self.exclude_ids: set[str] = set()

    @property
    def label_names(self) -> list[str]:
        return self.records.label_names

    @abstractmethod
    def make_dataset(self, records: list[ImageRecord], train: bool) -> Dataset:
        """The dataset over ``records`` (augmented when ``train``)."""

    @property
    @abstractmethod
    def collate_fn(self) -> Callable[[list[Any]], dict[str, Any]]:
        """Turns samples (or FailedImage) into a batch dict with images, infos and failed."""

    def require_labels(self, stage: str) -> None:
        """Raise a one-line error when ``stage`` needs labels and the folder has none."""
        if not self.records.labelled:
            raise DatasetError(f"{self.data_root} holds unlabelled images: {stage} needs annotated data "
                               f"({self.layout_hint}); predict and explain accept a plain folder")

    def predict_records(self) -> list[ImageRecord]:
        """The images predict and explain read."""
        return [r for r in self.records.subsets.get("test") or [] if r.image_id not in self.exclude_ids]

    def _loader(self, subset: str, records: list[ImageRecord], train: bool = False) -> DataLoader:
        if not records and not self.exclude_ids:
            raise DatasetError(f"the {subset} subset of {self.data_root} is empty: add images there "
                               f"({self.layout_hint})")
        return DataLoader(self.make_dataset(records, train), batch_size=self.config.batch_size, shuffle=train,
                          num_workers=self.config.num_workers, collate_fn=self.collate_fn, drop_last=False)

    def _subset(self, subset: str) -> list[ImageRecord]:
        return self.records.subsets.get(subset) or []

    def train_dataloader(self) -> DataLoader:
        self.require_labels("train")
        return self._loader("train", self._subset("train"), train=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", self._subset("val"))

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", self._subset("test"))

    def predict_dataloader(self) -> DataLoader:
        return self._loader("test", self.predict_records())

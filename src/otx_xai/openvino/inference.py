"""Running an exported IR with the OpenVINO runtime, yielding the same PredictionBatch as a checkpoint."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import openvino as ov

from otx_xai.data.datamodule import DataConfig
from otx_xai.explain.entity import ModelInfo, PredictionBatch, build_prediction_batch
from otx_xai.openvino.metadata import XAI_OUTPUTS, read_metadata


class IRError(ValueError):
    """An IR that cannot be used; the message names the problem and the fix."""


class IRModel:
    """An exported model compiled for the CPU, with the metadata it was exported with.

    ``precision`` is the CPU plugin's inference precision: "f32" (exact, the default) or "bf16"
    (faster on processors that have it; maps may differ by several grey levels).
    """

    def __init__(self, xml_path: str | Path, precision: str = "f32", device: str = "CPU") -> None:
        self.path = Path(xml_path)
        if not self.path.is_file() or not self.path.with_suffix(".bin").is_file():
            raise IRError(f"IR {self.path} (with its .bin) not found: export with `otx export` first")
        core = ov.Core()
        try:
            model = core.read_model(str(self.path))
        except RuntimeError as error:
            raise IRError(f"cannot read IR {self.path}: {str(error).splitlines()[0]}") from None
        self.meta = read_metadata(model)
        if not self.meta:
            raise IRError(f"{self.path} carries no otx_xai metadata: export it with `otx export`")
        self.output_names = [port.get_any_name() for port in model.outputs]
        self.precision = precision
        config = {"INFERENCE_PRECISION_HINT": precision, "PERFORMANCE_HINT": "THROUGHPUT"}
        self.compiled = core.compile_model(model, device, config)

    @property
    def has_xai_outputs(self) -> bool:
        return all(name in self.output_names for name in XAI_OUTPUTS)

    def require_xai_outputs(self) -> None:
        """A one-line error when the IR was exported without ``--explain``."""
        if not self.has_xai_outputs:
            raise IRError(f"{self.path} has no saliency_map output: re-export it with "
                          "`otx export --explain True` (or engine.export(explain=True))")

    @property
    def model_info(self) -> ModelInfo:
        meta = self.meta
        return ModelInfo(task=meta["task"], label_names=list(meta["label_names"]),
                         multilabel=bool(meta.get("multilabel", False)),
                         explain_method=meta.get("explain_method", "none"))

    def data_config(self, batch_size: int = 8) -> DataConfig:
        """The input settings the model was exported with."""
        meta = self.meta
        return DataConfig(input_size=tuple(meta["input_size"]), mean=list(meta["mean"]), std=list(meta["std"]),
                          letterbox=bool(meta.get("letterbox", False)), batch_size=batch_size)

    def infer(self, images: np.ndarray) -> dict[str, np.ndarray]:
        """Outputs by name for a (B, 3, H, W) float32 batch."""
        result = self.compiled(np.ascontiguousarray(images, dtype=np.float32))
        return {name: result[port] for name, port in zip(self.output_names, self.compiled.outputs, strict=True)}

    def predict(self, batches: Iterable[dict[str, Any]]) -> Iterator[tuple[PredictionBatch | None, list]]:
        """For each collated batch: its PredictionBatch (None if no image was readable) and failures."""
        info = self.model_info
        for batch in batches:
            if not batch["infos"]:
                yield None, batch["failed"]
                continue
            outputs = self.infer(batch["images"].numpy())
            yield build_prediction_batch(outputs, batch["infos"], info), batch["failed"]

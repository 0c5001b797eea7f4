"""IRs compiled as the explain stage compiles them."""

from __future__ import annotations

from pathlib import Path

import torch

from otx_xai.data.datamodule import DataConfig
from otx_xai.explain.config import ExplainConfig
from otx_xai.explain.saliency import unread_outputs
from otx_xai.openvino.compiled_forms import MAX_STATIC_BATCHES
from otx_xai.openvino.export import export_ir
from otx_xai.openvino.inference import IRModel

STAGE_SKIPS = unread_outputs(ExplainConfig())  # what `otx explain` leaves uncomputed by default: feature_map
ALL_OUTPUTS = "all_outputs"  # an IR-only mode: the explain IR with every output computed, feature_map too


def load_ir(path: str | Path, precision: str = "f32", num_requests: int | None = None,
            every_output: bool = False, max_static_batches: int = MAX_STATIC_BATCHES) -> IRModel:
    """An IR compiled as the explain stage compiles it with its default config, or with ``every_output``
    (``max_static_batches=0``: every batch on the dynamic form)."""
    skips = () if every_output else STAGE_SKIPS
    return IRModel(path, precision=precision, num_requests=num_requests, skip_outputs=skips,
                   max_static_batches=max_static_batches)


def export_and_load(model: torch.nn.Module, size: int, directory: str | Path, explain: bool,
                    precision: str = "f32") -> IRModel:
    """Export ``model`` to an IR in ``directory`` (input size×size) and compile it (THROUGHPUT hint) as
    the explain stage does."""
    xml = export_ir(model, DataConfig(input_size=(size, size)), Path(directory), explain=explain)
    return load_ir(xml, precision=precision)

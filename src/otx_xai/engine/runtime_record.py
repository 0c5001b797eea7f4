"""What an explain run ran on, for the run index header: backend, version, device, precision, parallelism."""

from __future__ import annotations

from typing import Any

import openvino
import torch
from torch import nn

from otx_xai.openvino.inference import IRModel


def torch_runtime(model: nn.Module, trainer_options: dict[str, Any] | None = None) -> dict[str, Any]:
    """A checkpoint's explain run: torch, the model's device and dtype, intra-op threads, Trainer flags."""
    parameter = next(model.parameters(), None)
    return {
        "backend": "torch",
        "version": torch.__version__,
        "device": str(parameter.device) if parameter is not None else "cpu",
        "precision": str(parameter.dtype).removeprefix("torch.") if parameter is not None else "float32",
        "threads": torch.get_num_threads(),
        **({"trainer": dict(trainer_options)} if trainer_options else {}),
    }


def openvino_runtime(ir: IRModel) -> dict[str, Any]:
    """An IR's explain run: OpenVINO, the precision asked for and compiled, the hint, requests and streams."""
    return {"backend": "openvino", "version": openvino.__version__, **ir.runtime_info}

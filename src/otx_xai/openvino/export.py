"""Export to OpenVINO IR: the same forward the checkpoint explains with, traced, plus metadata."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import openvino as ov
import torch
from torch import Tensor, nn

from otx_xai.data.datamodule import DataConfig
from otx_xai.openvino.metadata import write_metadata

EXPORTED_NAME = "exported_model.xml"


class _ExportForward(nn.Module):
    """Traceable view of a model: images (B, 3, H, W) → dict of IR outputs."""

    def __init__(self, model: nn.Module, explain: bool) -> None:
        super().__init__()
        self.model = model
        self.explain = explain

    def forward(self, images: Tensor) -> dict[str, Tensor]:
        return self.model.export_outputs(images, self.explain)


def export_ir(model: Any, data: DataConfig, output_dir: Path, explain: bool) -> Path:
    """Write ``exported_model.xml/.bin`` (f32 weights) with rt_info metadata; return the xml path."""
    model = copy.deepcopy(model).eval().cpu()
    model._jit_is_scripting = True  # lets torch.jit.trace read a LightningModule with no Trainer attached
    height, width = data.input_size
    example = torch.zeros(1, 3, height, width)
    with torch.no_grad():
        outputs = _ExportForward(model, explain)(example)
        ov_model = ov.convert_model(_ExportForward(model, explain), example_input=example,
                                    input=[ov.PartialShape([-1, 3, height, width])])
    names = list(outputs)
    for port, name in zip(ov_model.outputs, names, strict=True):
        port.get_tensor().set_names({name})
    ov_model.inputs[0].get_tensor().set_names({"images"})
    write_metadata(ov_model, {
        "task": model.task,
        "label_names": list(model.label_names),
        "multilabel": bool(getattr(model, "multilabel", False)),
        "explain_method": model.explain_method if explain else "none",
        "input_size": [height, width],
        "mean": list(data.mean),
        "std": list(data.std),
        "letterbox": bool(data.letterbox),
        "output_names": names,
        "explain": explain,
    })
    output_dir.mkdir(parents=True, exist_ok=True)
    xml = output_dir / EXPORTED_NAME
    ov.save_model(ov_model, str(xml), compress_to_fp16=False)
    return xml

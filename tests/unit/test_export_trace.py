"""Exporting every model family traces without a single TracerWarning: sizes fixed by the IR's input size
are read as constants on purpose (otx_xai.tracing), everything else is traced. (Detectors and Mask R-CNN are
exported by their own tests, where pyproject's ``error::torch.jit.TracerWarning`` fails any TracerWarning.)"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from otx_xai.data.datamodule import DataConfig
from otx_xai.models.classification import ImageClassifier
from otx_xai.models.vit import VisionTransformerClassifier
from otx_xai.openvino.export import export_ir
from otx_xai.openvino.inference import IRModel

LABELS = ["a", "b", "c"]
FAMILIES: dict[str, tuple[Callable[[], torch.nn.Module], int]] = {
    "resnet18 (Recipro-CAM, 1x1-conv head)": (lambda: ImageClassifier(LABELS, "resnet18"), 64),
    "squeezenet (Recipro-CAM, masked copies)": (lambda: ImageClassifier(LABELS, "squeezenet1_0"), 64),
    "vit (fast ViT Recipro-CAM)": (lambda: VisionTransformerClassifier(
        LABELS, image_size=32, patch_size=8, num_layers=2, num_heads=2, hidden_dim=32, mlp_dim=64), 32),
}


@pytest.mark.parametrize("family", FAMILIES)
def test_export_raises_no_tracer_warning_and_the_ir_runs_any_batch(family: str, tmp_path: Path) -> None:
    make, size = FAMILIES[family]
    torch.manual_seed(0)
    model = make().eval()
    if hasattr(model.explainer, "max_chunk"):
        model.explainer.max_chunk = 4  # chunked in torch; the IR runs each batch whole
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        xml = export_ir(model, DataConfig(input_size=(size, size)), tmp_path, explain=True)
    tracer = [f"{w.filename}:{w.lineno}: {w.message}" for w in caught
              if issubclass(w.category, torch.jit.TracerWarning)]
    assert tracer == []
    images = torch.randn(3, 3, size, size)  # a batch the trace never saw: nothing batch-sized was frozen
    with torch.no_grad():
        expected = model.forward_explain(images)["saliency_map"].numpy()
    got = IRModel(xml, max_static_batches=0).infer(images.numpy())["saliency_map"]
    assert got.shape == expected.shape
    assert abs(got.astype(int) - expected.astype(int)).max() <= 1

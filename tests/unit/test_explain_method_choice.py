"""Algorithm by model type: Recipro-CAM wherever a CNN can be cut (incl. non-GAP necks), the Activation Map
on request or as the announced fallback, and clear errors for a method a model cannot run."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import openvino as ov
import pytest
import torch

from otx_xai.data.datamodule import DataConfig
from otx_xai.explain.select import choose_method
from otx_xai.models.classification import ImageClassifier
from otx_xai.openvino.export import export_ir

LABELS = ["a", "b", "c"]


def _normalized(values: np.ndarray) -> np.ndarray:
    low, high = values.min(), values.max()
    return np.floor((values - low) / max(high - low, 1e-30) * 255 + 0.5)


def _slow_recipro_cam(model: ImageClassifier, feature_map: torch.Tensor) -> np.ndarray:
    """One masked copy at a time through the model's real pooling + classifier."""
    _, _, height, width = feature_map.shape
    maps = np.zeros((feature_map.shape[0], len(LABELS), height, width))
    for image in range(feature_map.shape[0]):
        for y in range(height):
            for x in range(width):
                copy = torch.zeros_like(feature_map[image : image + 1])
                copy[..., y, x] = feature_map[image, :, y, x]
                maps[image, :, y, x] = torch.softmax(model.neck_head(copy), -1)[0].numpy()
    return np.stack([[_normalized(m) for m in per_image] for per_image in maps])


@pytest.mark.parametrize("backbone", ["vgg11", "squeezenet1_1"])
def test_recipro_cam_through_a_non_gap_neck_equals_the_slow_form(backbone: str) -> None:
    torch.manual_seed(0)
    model = ImageClassifier(LABELS, backbone).eval()
    assert model.explain_method == "ReciproCAM" and model._pooled_head is None
    images = torch.randn(2, 3, 96, 96)
    with torch.no_grad():
        out = model.forward_explain(images)
        expected = _slow_recipro_cam(model, out["feature_map"])
        assert torch.equal(out["logits"], model(images))
    assert np.abs(out["saliency_map"].numpy().astype(int) - expected).max() <= 1


def test_a_model_with_no_cut_falls_back_to_the_activation_map_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        assert choose_method("some_net", "auto", cut=False) == "ActivationMap"
    assert "falling back to the Activation Map" in caplog.text and "some_net" in caplog.text


def test_activation_map_on_request_equals_the_channel_mean_in_torch_and_ir(tmp_path: Path) -> None:
    model = ImageClassifier(LABELS, "shufflenet_v2_x0_5", explain_method="ActivationMap").eval()
    assert model.explain_method == "ActivationMap"
    images = torch.randn(2, 3, 96, 96)
    with torch.no_grad():
        out = model.forward_explain(images)
        assert torch.equal(out["logits"], model(images))
    feature_map = out["feature_map"].numpy()
    for image in range(2):
        expected = _normalized(feature_map[image].mean(axis=0))
        for label in range(len(LABELS)):
            assert np.abs(out["saliency_map"][image, label].numpy().astype(int) - expected).max() <= 1
    xml = export_ir(model, DataConfig(input_size=(96, 96)), tmp_path, explain=True)
    compiled = ov.Core().compile_model(str(xml), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    ir_maps = compiled(images.numpy())[compiled.output("saliency_map")]
    assert np.abs(ir_maps.astype(int) - out["saliency_map"].numpy().astype(int)).mean() <= 1


@pytest.mark.parametrize(("backbone", "method"), [("shufflenet_v2_x0_5", "ViTReciproCAM"),
                                                   ("resnet18", "ViTReciproCAM")])
def test_a_method_the_model_cannot_run_is_a_one_line_error(backbone: str, method: str) -> None:
    with pytest.raises(ValueError, match=f"explain_method '{method}' is not supported for {backbone}") as error:
        ImageClassifier(LABELS, backbone, explain_method=method)
    assert "\n" not in str(error.value)


def test_activation_map_on_request() -> None:
    model = ImageClassifier(LABELS, "resnet18", explain_method="ActivationMap").eval()
    with torch.no_grad():
        out = model.forward_explain(torch.randn(1, 3, 64, 64))
    assert out["saliency_map"].shape == (1, 3, 2, 2)
    assert torch.equal(out["saliency_map"][0, 0], out["saliency_map"][0, 2])


def test_vit_activation_map_on_request_and_bad_method() -> None:
    from otx_xai.models.vit import VisionTransformerClassifier

    small = {"image_size": 32, "patch_size": 8, "num_layers": 2, "num_heads": 2, "hidden_dim": 16, "mlp_dim": 32}
    model = VisionTransformerClassifier(LABELS, explain_method="ActivationMap", **small).eval()
    with torch.no_grad():
        out = model.forward_explain(torch.randn(2, 3, 32, 32))
    expected = _normalized(out["feature_map"][1].numpy().mean(axis=0))
    assert np.abs(out["saliency_map"][1, 2].numpy().astype(int) - expected).max() <= 1
    with pytest.raises(ValueError, match="not supported for VisionTransformer"):
        VisionTransformerClassifier(LABELS, explain_method="ReciproCAM", **small)

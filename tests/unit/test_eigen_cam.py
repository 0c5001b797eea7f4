"""Eigen-CAM == the first principal component from numpy's SVD (with the sign rule), on random and on real
feature maps; class-agnostic in every class channel and the IMAGE group; the IR's maps == torch's."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import openvino as ov
import pytest
import torch

from batchnorm import calibrate_batchnorm, random_batch
from otx_xai.data.datamodule import DataConfig
from otx_xai.explain.config import ExplainConfig, TargetExplainGroup
from otx_xai.explain.entity import ImageInfo, ModelInfo, classification_batch
from otx_xai.explain.methods.forward.eigen_cam import EigenCAM
from otx_xai.explain.saliency import MAP_PER_IMAGE, select_maps
from otx_xai.models.classification import ImageClassifier
from otx_xai.models.vit import VisionTransformerClassifier
from otx_xai.openvino.export import export_ir

LABELS = ["a", "b", "c"]


def svd_eigen_cam(feature_map: np.ndarray) -> np.ndarray:
    """Per image: A (h·w, C) → A·v₁ with v₁ numpy's first right singular vector, signed so that the map
    sums to a positive value; min-max normalized to 0..255 (floats)."""
    _, channels, height, width = feature_map.shape
    maps = []
    for image in feature_map.astype(np.float64):
        rows = image.reshape(channels, -1).T
        _, _, vt = np.linalg.svd(rows, full_matrices=False)
        component = rows @ vt[0]
        component = component if component.sum() > 0 else -component
        maps.append(component.reshape(height, width))
    maps = np.stack(maps)[:, None]
    low, high = maps.min(axis=(2, 3), keepdims=True), maps.max(axis=(2, 3), keepdims=True)
    return (maps - low) / np.maximum(high - low, 1e-30) * 255.0


def grey_difference(saliency: torch.Tensor, reference: np.ndarray) -> float:
    return float(np.abs(saliency.numpy().astype(np.float64) - reference).max())


@pytest.mark.parametrize("values", ["relu", "signed"])
@pytest.mark.parametrize(("channels", "size"), [(64, 4), (8, 7), (512, 7), (16, 4)],
                         ids=["positions<channels", "positions>channels", "resnet-like", "equal"])
def test_eigen_cam_equals_numpy_svd_on_random_feature_maps(channels: int, size: int, values: str) -> None:
    generator = torch.Generator().manual_seed(channels + size)
    feature_map = torch.randn(3, channels, size, size, generator=generator)
    if values == "relu":
        feature_map = feature_map.relu()
    else:  # a signed map with one dominant direction on top of the noise (a real map's structure)
        direction = torch.randn(channels, generator=generator)
        weights = torch.randn(3, 1, size, size, generator=generator) * 3
        feature_map = feature_map + direction[None, :, None, None] * weights
    raw = EigenCAM().saliency(feature_map)
    assert raw.shape == (3, 1, size, size)
    assert (raw.flatten(1).sum(1) > 0).all(), "the sign rule: the map sums to a positive value"
    if values == "relu":
        assert (raw >= -1e-4 * raw.abs().max()).all(), "a non-negative feature map gives a non-negative map"
    assert grey_difference(EigenCAM()(feature_map), svd_eigen_cam(feature_map.numpy())) <= 1.0


def test_the_sign_does_not_depend_on_the_singular_vector_routine() -> None:
    """A map that is the negation of another feature map's: numpy's own sign choice is arbitrary, the
    map is not (both the map of f and of −f sum positive, and they are the same map)."""
    feature_map = torch.randn(2, 32, 5, 5, generator=torch.Generator().manual_seed(3)).relu()
    assert torch.equal(EigenCAM()(feature_map), EigenCAM()(-feature_map))


def calibrated(model: ImageClassifier, size: int) -> ImageClassifier:
    """BatchNorm statistics of random images, so the feature maps have a realistic scale; eval mode."""
    return calibrate_batchnorm(model, random_batch(4, size, seed=5))


@pytest.mark.parametrize("backbone", ["resnet18", "mobilenet_v3_small", "swin_t"])
def test_eigen_cam_of_a_real_network_equals_numpy_svd_in_every_class_channel(backbone: str) -> None:
    torch.manual_seed(0)
    model = calibrated(ImageClassifier(LABELS, backbone, explain_method="EigenCAM"), 96)
    assert model.explain_method == "EigenCAM"
    images = torch.randn(2, 3, 96, 96, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        out = model.forward_explain(images)
        assert torch.equal(out["logits"], model(images))
    saliency = out["saliency_map"]
    assert saliency.dtype == torch.uint8 and saliency.shape == (2, 3, 3, 3)
    assert all(torch.equal(saliency[:, 0], saliency[:, k]) for k in range(3)), "class-agnostic"
    reference = svd_eigen_cam(out["feature_map"].numpy())
    assert reference.std() > 1.0
    assert grey_difference(saliency[:, :1], reference) <= 1.0


def test_vit_eigen_cam_on_the_patch_grid() -> None:
    small = {"image_size": 32, "patch_size": 8, "num_layers": 2, "num_heads": 2, "hidden_dim": 16, "mlp_dim": 32}
    model = VisionTransformerClassifier(LABELS, explain_method="EigenCAM", **small).eval()
    with torch.no_grad():
        out = model.forward_explain(torch.randn(2, 3, 32, 32))
    assert out["saliency_map"].shape == (2, 3, 4, 4)
    assert grey_difference(out["saliency_map"][:, 2:], svd_eigen_cam(out["feature_map"].numpy())) <= 1.0


def test_the_image_group_is_the_eigen_cam_map() -> None:
    model = calibrated(ImageClassifier(LABELS, "resnet18", explain_method="EigenCAM"), 96)
    with torch.no_grad():
        out = model.forward_explain(torch.randn(1, 3, 96, 96))
    info = ModelInfo(task="classification", label_names=LABELS, explain_method="EigenCAM")
    size = (96, 96)
    image = ImageInfo(image_id="x", source_path="x.png", original_size=size, valid_size=size, input_size=size)
    batch = classification_batch(out, [image], info)
    maps = select_maps(batch, 0, ExplainConfig(target_explain_group=TargetExplainGroup.IMAGE))
    np.testing.assert_array_equal(maps[MAP_PER_IMAGE], out["saliency_map"][0, 0].numpy())


def test_eigen_cam_traced_into_the_ir_equals_torch(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = calibrated(ImageClassifier(LABELS, "resnet18", explain_method="EigenCAM"), 128)
    images = torch.randn(3, 3, 128, 128, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        expected = model.forward_explain(images)["saliency_map"].numpy().astype(int)
    xml = export_ir(model, DataConfig(input_size=(128, 128)), tmp_path, explain=True)
    compiled = ov.Core().compile_model(str(xml), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    got = compiled(images.numpy())[compiled.output("saliency_map")].astype(int)
    assert got.shape == (3, 3, 4, 4) and len(np.unique(got)) > 2
    assert np.abs(got - expected).max() <= 1

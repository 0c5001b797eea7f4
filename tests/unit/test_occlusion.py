"""Occlusion against captum 0.9.0's ``Occlusion`` on the same model, windows, strides and baseline, and the
classes it paints."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from captum.attr import Occlusion as CaptumOcclusion

from foreign_irs import calibrated_torchvision, random_images
from otx_xai.errors import UserError
from otx_xai.explain.black_box.classification import class_scores
from otx_xai.explain.black_box.presets import BlackBoxConfig
from otx_xai.explain.black_box.protocol import black_box_method
from otx_xai.explain.black_box.runners import torch_runner
from otx_xai.explain.config import ExplainConfig, TargetExplainGroup
from otx_xai.explain.entity import ModelInfo
from otx_xai.explain.methods.base import normalize_map
from otx_xai.explain.methods.perturbation.occlusion import OcclusionGrid, occlusion_drops, window_starts

SIZE = 32
CLASSES = 4
INFO = ModelInfo("classification", [f"c{i}" for i in range(CLASSES)])


@pytest.fixture(scope="module")
def net() -> torch.nn.Module:
    """resnet18 with calibrated batch norm, its classifier scaled so the softmax is not saturated."""
    model = calibrated_torchvision("resnet18", CLASSES, size=SIZE)
    with torch.no_grad():
        [m for m in model.modules() if isinstance(m, torch.nn.Linear)][-1].weight.mul_(0.05)
    return model


def _captum(net: torch.nn.Module, images: np.ndarray, window: int, stride: int, target: int) -> np.ndarray:
    """captum's Occlusion of the softmax scores (what RISE and our Occlusion score), baseline 0 (the
    preprocessing mean), windows over all channels; one (h, w) map per image."""
    occlusion = CaptumOcclusion(lambda x: torch.softmax(net(x), dim=-1))
    attributions = occlusion.attribute(torch.from_numpy(images), sliding_window_shapes=(3, window, window),
                                       strides=(3, stride, stride), baselines=0.0, target=target,
                                       perturbations_per_eval=16)
    assert torch.equal(attributions[:, 0], attributions[:, 2])  # windows span the channels
    return attributions[:, 0].numpy()


@pytest.mark.parametrize(("window", "stride"), [(8, 4), (10, 7)])  # (10, 7): the last window is cut off
def test_occlusion_equals_captum(net: torch.nn.Module, window: int, stride: int) -> None:
    images = random_images(count=2, seed=1, size=SIZE)
    grid = OcclusionGrid.square((SIZE, SIZE), window, stride)
    run = torch_runner(net, 16)
    reference = class_scores(run(images)["logits"], multilabel=False)
    calls: list[int] = []

    def counting(perturbed: np.ndarray) -> dict[str, np.ndarray]:
        calls.append(len(perturbed))
        return run(perturbed)

    drops = occlusion_drops(images, reference, grid, counting, lambda out: class_scores(out["logits"], False), 20)
    assert sum(calls) == 2 * len(grid) and max(calls) == 20  # both images' windows, 20 per call
    assert len(calls) == -(-2 * len(grid) // 20)  # calls span images: only the very last is short
    for target in range(CLASSES):
        expected = _captum(net, images, window, stride, target)
        assert np.abs(expected).max() > 1e-3  # real drops, not a flat model
        for index in range(2):
            np.testing.assert_allclose(grid.paint(drops[index][[target]])[0], expected[index], rtol=1e-4, atol=1e-6)
    # the method's uint8 maps are captum's maps normalized
    method = black_box_method("classification", "Occlusion", BlackBoxConfig(window=window, stride=stride,
                                                                             batch_size=7))
    outputs = method.explain(images, run, INFO, ExplainConfig(target_explain_group=TargetExplainGroup.ALL))
    expected_uint8 = normalize_map(torch.stack([torch.from_numpy(_captum(net, images, window, stride, t))
                                                for t in range(CLASSES)], dim=1)).numpy()
    assert outputs["saliency_map"].shape == (2, CLASSES, SIZE, SIZE)
    assert np.abs(outputs["saliency_map"].astype(int) - expected_uint8).max() <= 1


def test_window_starts_are_captums() -> None:
    assert window_starts(224, 32, 16).tolist() == list(range(0, 193, 16))  # 13: 13 × 13 + 1 inferences
    assert window_starts(32, 10, 7).tolist() == [0, 7, 14, 21, 28]  # the last covers 28-31 only
    clipped = OcclusionGrid.square((20, 40), 32, 16)
    assert clipped.window == (20, 32) and len(clipped) == 1 * 2  # a window larger than the input is clipped


def test_only_the_asked_classes_are_painted(net: torch.nn.Module) -> None:
    images = random_images(count=2, seed=2, size=SIZE)
    method = black_box_method("classification", "Occlusion", BlackBoxConfig(window=16, stride=8))
    run = torch_runner(net, 16)
    predictions = method.explain(images, run, INFO, ExplainConfig(target_explain_group=TargetExplainGroup.PREDICTIONS))
    top = predictions["logits"].argmax(axis=1)
    for index in range(2):
        assert [c for c in range(CLASSES) if predictions["saliency_map"][index, c].any()] == [top[index]]
    asked = method.explain(images, run, INFO, ExplainConfig(), targets=[[1, 3], [0]])
    assert [c for c in range(CLASSES) if asked["saliency_map"][0, c].any()] == [1, 3]
    assert [c for c in range(CLASSES) if asked["saliency_map"][1, c].any()] == [0]
    everything = method.explain(images, run, INFO, ExplainConfig(target_explain_group=TargetExplainGroup.ALL))
    assert np.array_equal(everything["saliency_map"][0, [1, 3]], asked["saliency_map"][0, [1, 3]])
    assert method.settings()["window"] == 16 and method.settings()["stride"] == 8


def test_occlusion_settings_are_checked() -> None:
    assert (BlackBoxConfig().occlusion_window, BlackBoxConfig().occlusion_stride) == (32, 16)
    assert BlackBoxConfig(preset="speed").occlusion_stride == 32 and BlackBoxConfig(window=8).occlusion_stride == 4
    with pytest.raises(UserError, match=r"black_box.stride=20 is larger than black_box.window=8") as error:
        BlackBoxConfig(window=8, stride=20)
    assert "\n" not in str(error.value)

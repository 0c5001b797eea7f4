"""The black-box core against its slow, obvious forms: RISE masks and maps, the DIRECT search, AISE."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from otx_xai.explain.black_box.aise import aise_saliency, gaussian_kernels
from otx_xai.explain.black_box.direct import DirectSearch
from otx_xai.explain.black_box.masks import rise_masks
from otx_xai.explain.black_box.presets import BlackBoxConfig, Preset
from otx_xai.explain.black_box.protocol import black_box_method, black_box_names
from otx_xai.explain.black_box.rise import rise_map_groups, rise_saliency, targets_per_group
from otx_xai.explain.black_box.runners import torch_runner
from otx_xai.explain.config import ExplainConfig, TargetExplainGroup
from otx_xai.explain.entity import ModelInfo
from otx_xai.models.classification import ImageClassifier

LABELS = ["a", "b", "c"]


def test_rise_masks_are_seeded_shifted_bilinear_grids() -> None:
    masks = rise_masks(200, (30, 20), cells=4, prob=0.3, seed=7)
    again = rise_masks(200, (30, 20), cells=4, prob=0.3, seed=7)
    whole = masks.chunk(0, 200)
    assert whole.shape == (200, 30, 20) and whole.dtype == np.float32
    assert np.array_equal(whole, again.chunk(0, 200))
    assert np.array_equal(whole, np.concatenate(list(masks.chunks(64))))  # chunking does not change them
    assert not np.array_equal(whole, rise_masks(200, (30, 20), 4, 0.3, seed=8).chunk(0, 200))
    assert whole.min() >= 0.0 and whole.max() <= 1.0
    assert abs(masks.grids.mean() - 0.3) < 0.05
    assert masks.cell_size == (8, 5)
    assert (masks.shifts >= 0).all() and (masks.shifts < [8, 5]).all() and len(np.unique(masks.shifts[:, 0])) > 1
    # one mask by hand: the 5×5-cell upsampled grid, bilinear between cell centres, cropped at its shift
    grid, (dy, dx) = masks.grids[3], masks.shifts[3]
    up = np.kron(np.pad(grid, ((0, 1), (0, 1)), mode="edge"), np.ones((8, 5)))  # nearest, to check the means
    assert abs(whole[3].mean() - up[dy : dy + 30, dx : dx + 20].mean()) < 0.15
    centre_y, centre_x = 8 // 2 - dy, 5 // 2 - dx  # the centre of cell (0, 0) holds its value exactly
    if centre_y >= 0 and centre_x >= 0:
        assert whole[3, centre_y, centre_x] == pytest.approx(grid[0, 0], abs=0.07)


def _reference_rise_float(model: ImageClassifier, image: torch.Tensor, masks: np.ndarray) -> np.ndarray:
    """The slow, obvious RISE in float64: one masked image at a time, weighted sum, divided by the coverage."""
    weighted = np.zeros((len(LABELS), *masks.shape[1:]))
    coverage = np.zeros(masks.shape[1:])
    for mask in masks:
        with torch.no_grad():
            scores = torch.softmax(model(image[None] * torch.from_numpy(mask)), -1)[0].double().numpy()
        weighted += scores[:, None, None] * mask
        coverage += mask
    return weighted / coverage


def _reference_rise(model: ImageClassifier, image: torch.Tensor, masks: np.ndarray) -> np.ndarray:
    """``_reference_rise_float`` as uint8 maps (min-max per class)."""
    maps = _reference_rise_float(model, image, masks)
    low = maps.min(axis=(1, 2), keepdims=True)
    high = maps.max(axis=(1, 2), keepdims=True)
    return np.floor((maps - low) / (high - low) * 255 + 0.5)


def _tiny_rise() -> tuple[ImageClassifier, torch.Tensor, Any, ModelInfo]:
    """A random resnet18 over 3 labels, two 32 px images and RISE with 24 masks of 4×4 cells."""
    torch.manual_seed(0)
    model = ImageClassifier(LABELS, "resnet18").eval()
    images = torch.randn(2, 3, 32, 32)
    method = black_box_method("classification", "RISE", BlackBoxConfig(num_masks=24, num_cells=4, seed=3,
                                                                         batch_size=5))
    return model, images, method, ModelInfo("classification", LABELS)


def test_rise_on_a_tiny_model_equals_the_slow_numpy_reference() -> None:
    model, images, method, info = _tiny_rise()
    outputs = method.explain(images.numpy(), torch_runner(model, 5), info, ExplainConfig())
    masks = method.masks((32, 32)).chunk(0, 24)
    assert outputs["saliency_map"].shape == (2, 3, 32, 32) and outputs["saliency_map"].dtype == np.uint8
    with torch.no_grad():
        assert np.allclose(outputs["logits"], model(images).numpy(), atol=1e-5)
    for index in range(2):
        expected = _reference_rise(model, images[index], masks)
        assert np.abs(outputs["saliency_map"][index].astype(int) - expected).max() <= 1


def test_rise_sums_only_the_explained_classes_and_equals_the_reference() -> None:
    """PREDICTIONS: the top class's map (as the slow reference gives it) and zeros elsewhere; given targets:
    exactly those classes' maps."""
    model, images, method, info = _tiny_rise()
    masks = method.masks((32, 32)).chunk(0, 24)
    predictions = ExplainConfig(target_explain_group=TargetExplainGroup.PREDICTIONS)
    outputs = method.explain(images.numpy(), torch_runner(model, 5), info, predictions)
    given = method.explain(images.numpy(), torch_runner(model, 5), info, ExplainConfig(), targets=[[2, 0], [1]])
    for index, explained in enumerate([[2, 0], [1]]):
        expected = _reference_rise(model, images[index], masks)
        top = int(outputs["logits"][index].argmax())
        assert np.abs(outputs["saliency_map"][index, top].astype(int) - expected[top]).max() <= 1
        assert not outputs["saliency_map"][index, [c for c in range(3) if c != top]].any()
        assert np.abs(given["saliency_map"][index, explained].astype(int) - expected[explained]).max() <= 1
        assert not given["saliency_map"][index, [c for c in range(3) if c not in explained]].any()


def test_rise_core_float32_groups_and_overlap() -> None:
    """The float maps equal the float64 one-mask-at-a-time reference whatever the group size (a group of one
    class: every later class summed in its own pass over regenerated masks); the masked batches are made only
    as the stream takes them, so the sums of early batches happen while later batches are in flight."""
    torch.manual_seed(0)
    model = ImageClassifier(LABELS, "resnet18").eval()
    image = torch.randn(3, 32, 32)
    masks = rise_masks(23, (32, 32), cells=4, prob=0.5, seed=5)
    events: list[str] = []

    def score_stream(batches):  # an IR-like queue: two batches in flight before the first result is read
        pending = []
        for batch in batches:
            events.append("take")
            pending.append(batch)
            if len(pending) == 2:
                yield _softmax(model, pending.pop(0))
                events.append("summed")
        for batch in pending:
            yield _softmax(model, batch)
            events.append("summed")

    expected = _reference_rise_float(model, image, masks.chunk(0, 23))
    whole = rise_saliency(image.numpy(), score_stream, masks, batch_size=4)
    assert whole.dtype == np.float32 and whole.shape == (3, 32, 32)
    np.testing.assert_allclose(whole, expected, rtol=2e-5)
    assert events[:4] == ["take", "take", "summed", "take"]  # not every batch made before the first sum
    groups = list(rise_map_groups(image.numpy(), score_stream, masks, batch_size=4, group_size=1))
    assert [(start, len(maps)) for start, maps in groups] == [(0, 1), (1, 1), (2, 1)]
    np.testing.assert_allclose(np.concatenate([maps for _, maps in groups]), expected, rtol=2e-5)
    assert targets_per_group(64, (224, 224)) == 334 and targets_per_group(0.001, (224, 224)) == 1


def _softmax(model: ImageClassifier, batch: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return torch.softmax(model(torch.from_numpy(batch)), -1).numpy()


def test_direct_finds_the_minimum_within_its_budget() -> None:
    search = DirectSearch(np.array([0.0, 0.0]), np.array([1.0, 1.0]), budget=50)
    while not search.done:
        points = search.ask()
        assert len(points)
        search.tell(((points - [0.8, 0.3]) ** 2).sum(axis=1))
    assert search.evaluations == 50 and len(search.ask()) == 0
    assert np.abs(search.points[np.argmin(search.values)] - [0.8, 0.3]).max() < 0.05
    # bounded searches stay inside their box
    inner = DirectSearch(np.array([0.2, 0.5]), np.array([0.4, 0.9]), budget=20)
    while not inner.done:
        inner.tell(inner.ask().sum(axis=1))
    assert (inner.points >= [0.2, 0.5]).all() and (inner.points <= [0.4, 0.9]).all()


def test_gaussian_kernels_peak_at_their_centres() -> None:
    kernels = gaussian_kernels(np.array([[0.0, 1.0], [0.5, 0.5]]), np.array([0.1, 0.3]), (21, 11))
    assert kernels.shape == (2, 21, 11) and kernels.max(axis=(1, 2)).tolist() == pytest.approx([1.0, 1.0])
    assert kernels[0, 0, 10] == pytest.approx(1.0) and kernels[1, 10, 5] == pytest.approx(1.0)
    assert kernels[1, 10, 5 + 1] == pytest.approx(np.exp(-(0.1**2) / (2 * 0.3**2)), rel=1e-5)


def test_aise_core_finds_each_targets_region_with_its_budget() -> None:
    image = np.ones((3, 40, 40), dtype=np.float32)
    calls = []

    def score_fn(perturbed: np.ndarray) -> np.ndarray:  # target 0 lives at rows 28-36, cols 4-12; 1 at 2-8
        calls.append(len(perturbed))
        return np.stack([perturbed[:, :, 28:36, 4:12].mean(axis=(1, 2, 3)),
                         perturbed[:, :, 2:8, 2:8].mean(axis=(1, 2, 3))], axis=1)

    maps = aise_saliency(image, score_fn, 2, iterations=30, kernel_widths=[0.1, 0.2], max_images=64)
    assert maps.shape == (2, 40, 40)
    assert sum(calls) == 2 * 30 * 2 * 2 and max(calls) <= 64  # targets × iterations × widths × 2 images
    y, x = np.unravel_index(maps[0].argmax(), maps[0].shape)
    assert 26 <= y <= 38 and 2 <= x <= 14
    y, x = np.unravel_index(maps[1].argmax(), maps[1].shape)
    assert y <= 10 and x <= 10


def _two_regions(calls: list[np.ndarray]):
    """Score function of two targets (0 at rows 28-36, cols 4-12; 1 at rows 2-8, cols 2-8) recording its inputs."""
    def score_fn(perturbed: np.ndarray) -> np.ndarray:
        calls.append(perturbed.copy())
        return np.stack([perturbed[:, :, 28:36, 4:12].mean(axis=(1, 2, 3)),
                         perturbed[:, :, 2:8, 2:8].mean(axis=(1, 2, 3))], axis=1)
    return score_fn


def test_aise_kept_objective_scores_one_kept_image_per_evaluation() -> None:
    image = np.ones((3, 40, 40), dtype=np.float32)
    calls: list[np.ndarray] = []
    maps = aise_saliency(image, _two_regions(calls), 2, iterations=30, kernel_widths=[0.1, 0.2], max_images=64,
                         objective="kept")
    assert sum(len(c) for c in calls) == 2 * 30 * 2 and max(len(c) for c in calls) <= 64  # one image each
    # every image is a kept kernel (the image is ones, so the image is the kernel: small, peak 1), none deleted
    assert all(c.mean(axis=(1, 2, 3)).max() < 0.5 and np.allclose(c.max(axis=(1, 2, 3)), 1.0, atol=0.02)
               for c in calls)
    y, x = np.unravel_index(maps[0].argmax(), maps[0].shape)
    assert 26 <= y <= 38 and 2 <= x <= 14
    y, x = np.unravel_index(maps[1].argmax(), maps[1].shape)
    assert y <= 10 and x <= 10
    # the same search as the two-image objective whose deleted term scores 0: the objective is f(kept) alone
    reference: list[np.ndarray] = []
    kept_only = _two_regions(reference)

    def zero_when_deleted(perturbed: np.ndarray) -> np.ndarray:
        scores = kept_only(perturbed)
        return np.where(perturbed.mean(axis=(1, 2, 3))[:, None] < 0.5, scores, 0.0)

    expected = aise_saliency(image, zero_when_deleted, 2, iterations=30, kernel_widths=[0.1, 0.2], max_images=64)
    assert sum(len(c) for c in reference) == 2 * sum(len(c) for c in calls)
    np.testing.assert_allclose(maps, expected, rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="objective 'deleted' is not one of kept_minus_deleted, kept"):
        aise_saliency(image, _two_regions([]), 1, iterations=3, kernel_widths=[0.1], objective="deleted")


def test_presets_and_bad_settings() -> None:
    assert BlackBoxConfig(preset="SPEED").masks == 1000 and BlackBoxConfig().aise_iterations == 50
    assert BlackBoxConfig(preset=Preset.QUALITY).aise_kernel_widths[0] == 0.075
    assert {"RISE", "AISE"} <= set(black_box_names("classification"))
    for bad, words in [({"num_masks": -5}, "num_masks=-5"), ({"prob": 1.5}, "prob=1.5"),
                       ({"preset": "fast"}, "preset"), ({"kernel_widths": [0.0]}, "kernel_widths")]:
        with pytest.raises(ValueError, match=words) as error:
            BlackBoxConfig(**bad)
        assert "\n" not in str(error.value)
    with pytest.raises(ValueError, match="'SHAP' is not available for classification") as error:
        black_box_method("classification", "SHAP")
    assert "RISE" in str(error.value)

"""InstSegMaskMap against a slow, obvious reference: loops per image, per class, per instance."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from otx_xai.explain.methods.base import normalize_map
from otx_xai.explain.methods.forward.instance_seg_map import InstSegMaskMap


def reference_maps(masks: np.ndarray, scores: np.ndarray, labels: np.ndarray, num_classes: int,
                   grid: tuple[int, int]) -> np.ndarray:
    """Per image and class: the score-weighted mean of that class's masks (area-pooled to grid), else 0."""
    batch, count, height, width = masks.shape
    fy, fx = height // grid[0], width // grid[1]
    out = np.zeros((batch, num_classes, *grid), dtype=np.float64)
    for b in range(batch):
        for c in range(num_classes):
            total, weight = np.zeros(grid), 0.0
            for n in range(count):
                if labels[b, n] == c and scores[b, n] > 0:
                    pooled = masks[b, n].reshape(grid[0], fy, grid[1], fx).mean(axis=(1, 3))
                    total += scores[b, n] * pooled
                    weight += scores[b, n]
            if weight > 0:
                out[b, c] = total / weight
    return out


def reference_uint8(maps: np.ndarray) -> np.ndarray:
    out = np.zeros(maps.shape, dtype=np.uint8)
    for index in np.ndindex(maps.shape[:2]):
        one = maps[index]
        low, high = one.min(), one.max()
        out[index] = np.floor((one - low) / (high - low + 1e-12) * 255 + 0.5).clip(0, 255)
    return out


def random_instances(seed: int, batch: int = 3, count: int = 6, size: int = 32, classes: int = 4):
    rng = np.random.default_rng(seed)
    masks = rng.random((batch, count, size, size)).astype(np.float32)
    scores = rng.uniform(0.1, 1.0, (batch, count)).astype(np.float32)
    labels = rng.integers(0, classes - 1, (batch, count))  # the last class never occurs
    scores[:, -2:] = 0.0  # padding
    labels[:, -1] = -1
    return masks, scores, labels


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_reference(seed: int) -> None:
    masks, scores, labels = random_instances(seed)
    explainer = InstSegMaskMap(num_classes=4)
    raw = explainer.saliency(torch.from_numpy(masks), torch.from_numpy(scores), torch.from_numpy(labels), (8, 8))
    expected = reference_maps(masks, scores, labels, 4, (8, 8))
    np.testing.assert_allclose(raw.numpy(), expected, atol=1e-5)
    out = explainer(torch.from_numpy(masks), torch.from_numpy(scores), torch.from_numpy(labels), (8, 8))
    assert out.dtype == torch.uint8 and out.shape == (3, 4, 8, 8)
    assert np.abs(out.numpy().astype(int) - reference_uint8(expected).astype(int)).max() <= 1


def test_absent_classes_and_empty_images_are_all_zero() -> None:
    masks, scores, labels = random_instances(3)
    scores[1] = 0.0  # image 1: nothing detected
    out = InstSegMaskMap(num_classes=4)(torch.from_numpy(masks), torch.from_numpy(scores),
                                        torch.from_numpy(labels), (8, 8)).numpy()
    assert (out[:, 3] == 0).all()  # class 3 never predicted
    assert (out[1] == 0).all()
    present = {(b, int(c)) for b in (0, 2) for c, s in zip(labels[b], scores[b], strict=True) if s > 0}
    assert all(out[b, c].max() == 255 for b, c in present)


def test_constant_map_normalizes_to_zeros() -> None:
    assert (normalize_map(torch.full((1, 2, 4, 4), 0.7)) == 0).all()
    assert (normalize_map(torch.zeros(1, 2, 4, 4)) == 0).all()


def test_single_instance_map_is_its_pooled_mask() -> None:
    mask = torch.zeros(1, 1, 16, 16)
    mask[0, 0, 4:12, 2:6] = 1.0
    raw = InstSegMaskMap(num_classes=2).saliency(mask, torch.tensor([[0.8]]), torch.tensor([[1]]), (4, 4))
    torch.testing.assert_close(raw[0, 1], F.adaptive_avg_pool2d(mask, (4, 4))[0, 0])
    assert (raw[0, 0] == 0).all()

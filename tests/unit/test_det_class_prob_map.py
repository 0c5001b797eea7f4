"""DetClassProbabilityMap equals the obvious per-image, per-level, per-class computation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from otx_xai.explain.methods.base import normalize_map
from otx_xai.explain.methods.forward.det_class_prob_map import DetClassProbabilityMap


def bilinear(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear resize with half-pixel centres (align_corners=False), one output pixel at a time."""
    in_h, in_w = image.shape
    out = np.empty((height, width))
    for y in range(height):
        sy = max((y + 0.5) * in_h / height - 0.5, 0.0)
        y0 = int(sy)
        y1, wy = min(y0 + 1, in_h - 1), sy - y0
        for x in range(width):
            sx = max((x + 0.5) * in_w / width - 0.5, 0.0)
            x0 = int(sx)
            x1, wx = min(x0 + 1, in_w - 1), sx - x0
            top = (1 - wx) * image[y0, x0] + wx * image[y0, x1]
            bottom = (1 - wx) * image[y1, x0] + wx * image[y1, x1]
            out[y, x] = (1 - wy) * top + wy * bottom
    return out


def reference(
    levels: list[np.ndarray], classes: int, anchors: list[int], softmax: bool, background_last: bool,
    keep_background: bool,
) -> np.ndarray:
    """The method, written the slow way: loops over images, classes, levels and anchors."""
    batch = levels[0].shape[0]
    height, width = levels[len(levels) // 2].shape[-2:]
    out = np.zeros((batch, classes, height, width))
    for b in range(batch):
        for c in range(classes):
            total = np.zeros((height, width))
            for level, logits in enumerate(levels):
                best = logits[b, c]  # anchor 0 of class c
                for a in range(1, anchors[level]):
                    best = np.maximum(best, logits[b, a * classes + c])
                total += bilinear(best, height, width)
            out[b, c] = total / len(levels)
        if softmax and classes > 1:
            for y in range(height):
                for x in range(width):
                    e = np.exp(out[b, :, y, x] - out[b, :, y, x].max())
                    out[b, :, y, x] = e / e.sum()
    if background_last and not keep_background:
        out = out[:, :-1]
    return out


def random_levels(
    classes: int, anchors: list[int], sizes: list[tuple[int, int]], batch: int = 2, seed: int = 0
) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.normal(0, 2, size=(batch, a * classes, h, w)).astype(np.float32) for a, (h, w) in zip(
        anchors, sizes, strict=True)]


CASES = {
    "three_levels_softmax": (4, [2, 3, 1], [(8, 10), (4, 5), (2, 3)], True, False, False),
    "four_levels_middle_is_index_2": (3, [1, 1, 1, 1], [(16, 16), (8, 8), (4, 4), (2, 2)], True, False, False),
    "single_class_no_softmax": (1, [2, 2, 2], [(8, 8), (4, 4), (2, 2)], True, False, False),
    "no_softmax": (3, [1, 1, 1], [(6, 6), (3, 3), (2, 2)], False, False, False),
    "background_last_dropped": (4, [6, 6, 6, 6, 6], [(10, 10), (5, 5), (3, 3), (2, 2), (1, 1)], True, True, False),
    "background_last_kept": (4, [3, 3, 3], [(8, 8), (4, 4), (2, 2)], True, True, True),
    "one_level": (3, [2], [(5, 7)], True, False, False),
}


@pytest.mark.parametrize("case", list(CASES))
def test_matches_reference(case: str) -> None:
    classes, anchors, sizes, softmax, background_last, keep = CASES[case]
    levels = random_levels(classes, anchors, sizes)
    method = DetClassProbabilityMap(classes, anchors, use_softmax=softmax, background_last=background_last,
                                    keep_background=keep)
    expected = reference(levels, classes, anchors, softmax, background_last, keep)
    got = method.saliency(*[torch.from_numpy(x) for x in levels])
    assert got.shape == expected.shape
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-4, atol=1e-5)

    maps = method(*[torch.from_numpy(x) for x in levels])
    assert maps.dtype == torch.uint8
    expected_maps = normalize_map(torch.from_numpy(expected)).numpy().astype(int)
    assert np.abs(maps.numpy().astype(int) - expected_maps).max() <= 1  # float rounding at a .5 boundary


def test_one_anchor_count_for_every_level() -> None:
    levels = random_levels(3, [2, 2, 2], [(8, 8), (4, 4), (2, 2)])
    tensors = [torch.from_numpy(x) for x in levels]
    every = DetClassProbabilityMap(3, 2).saliency(*tensors)
    listed = DetClassProbabilityMap(3, [2, 2, 2]).saliency(*tensors)
    assert torch.equal(every, listed)


@pytest.mark.filterwarnings("ignore::FutureWarning")  # torch.jit.trace is what the IR export uses
def test_traced_with_another_batch_size() -> None:
    levels = [torch.from_numpy(x) for x in random_levels(3, [2, 1], [(8, 8), (4, 4)], batch=1)]
    method = DetClassProbabilityMap(3, [2, 1])
    traced = torch.jit.trace(lambda a, b: method(a, b), tuple(levels))
    bigger = [torch.from_numpy(x) for x in random_levels(3, [2, 1], [(8, 8), (4, 4)], batch=3, seed=1)]
    assert torch.equal(traced(*bigger), method(*bigger))


def test_needs_a_level() -> None:
    with pytest.raises(ValueError, match="at least one pyramid level"):
        DetClassProbabilityMap(3).saliency()

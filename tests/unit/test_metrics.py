"""Saliency quality metrics against hand-computed cases."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from otx_xai.metrics import (
    METRICS,
    adcc,
    gate_failures,
    insertion_deletion_auc,
    normalize_map,
    parse_fail_under,
    parse_metric_names,
    pointing_game,
    pointing_game_score,
    resize_map,
    summarize,
)
from otx_xai.metrics.adcc import adcc_score

# ---------------------------------------------------------------- pointing game


def peak_map(y: int, x: int, shape: tuple[int, int] = (10, 10)) -> np.ndarray:
    saliency = np.zeros(shape, dtype=np.uint8)
    saliency[y, x] = 255
    return saliency


def test_pointing_game_hit_and_miss() -> None:
    saliency = peak_map(3, 4)  # centre (4.5, 3.5)
    assert pointing_game(saliency, boxes=[[4, 3, 5, 4]])
    assert not pointing_game(saliency, boxes=[[0, 0, 4, 3]])
    assert pointing_game(saliency, boxes=[[0, 0, 4, 3], [4, 3, 5, 4]])  # any box
    assert pointing_game(saliency, boxes=np.array([[0, 0, 4, 3], [4, 3, 5, 4]], np.float32))
    assert pointing_game(saliency, boxes=np.empty((0, 4)), masks=np.ones((1, 10, 10), bool))


@pytest.mark.parametrize(
    ("box", "hit"),
    [
        ([4.5, 3.5, 4.5, 3.5], True),  # edges are inclusive, box shrunk to the pixel centre
        ([4.5, 0, 10, 10], True),
        ([0, 0, 4.49, 10], False),
        ([4.51, 0, 10, 10], False),
        ([0, 3.51, 10, 10], False),
        ([0, 0, 10, 3.5], True),
    ],
)
def test_pointing_game_box_edge_convention(box: list[float], hit: bool) -> None:
    assert pointing_game(peak_map(3, 4), boxes=[box]) is hit


def test_pointing_game_tolerance_grows_boxes() -> None:
    saliency = peak_map(3, 4)
    box = [6, 3, 8, 4]  # 4.5 is 1.5 left of x1
    assert not pointing_game(saliency, boxes=[box], tolerance=1)
    assert pointing_game(saliency, boxes=[box], tolerance=2)
    with pytest.raises(ValueError, match="tolerance"):
        pointing_game(saliency, boxes=[box], tolerance=-1)


def test_pointing_game_ties_any_peak_counts_and_constant_map_misses() -> None:
    saliency = np.zeros((10, 10), dtype=np.float32)
    saliency[0, 0] = saliency[8, 8] = 0.9  # the first peak in raster order is outside the box
    assert pointing_game(saliency, boxes=[[7, 7, 10, 10]])
    assert not pointing_game(np.full((10, 10), 7.0), boxes=[[0, 0, 10, 10]])


def test_pointing_game_masks() -> None:
    saliency = peak_map(3, 4)
    on, off = np.zeros((10, 10), bool), np.zeros((10, 10), bool)
    on[3, 4] = True
    off[3, 6] = True
    assert pointing_game(saliency, masks=[on])
    assert not pointing_game(saliency, masks=[off])
    assert pointing_game(saliency, masks=[off, on])
    assert not pointing_game(saliency, masks=[off], tolerance=1)
    assert pointing_game(saliency, masks=[off], tolerance=2)
    assert pointing_game(saliency, boxes=[[0, 0, 1, 1]], masks=[on])  # boxes or masks
    with pytest.raises(ValueError, match="mask shape"):
        pointing_game(saliency, masks=[np.ones((5, 5), bool)])


@pytest.mark.parametrize("kwargs", [{}, {"boxes": None, "masks": None}, {"boxes": [], "masks": []}])
def test_pointing_game_without_ground_truth_raises(kwargs: dict) -> None:
    with pytest.raises(ValueError, match="pointing_game needs ground truth: pass boxes or masks"):
        pointing_game(peak_map(1, 1), **kwargs)


def test_pointing_game_score() -> None:
    assert pointing_game_score([True, False, True, True]) == 0.75
    with pytest.raises(ValueError, match="at least one"):
        pointing_game_score([])


# ---------------------------------------------------------------- insertion / deletion

OBJECT_2X2 = np.array([[True, True], [False, False]])  # the top row is the object


def object_score_fn(obj: np.ndarray, original: np.ndarray):
    """Class 0 = fraction of object pixels equal to the original image, class 1 = its complement."""

    def score_fn(batch: np.ndarray) -> np.ndarray:
        same = (batch == original[None]).all(axis=-1)[:, obj]  # (N, object pixels)
        present = same.mean(axis=1)
        return np.stack([present, 1.0 - present], axis=1)

    return score_fn


def tiny_image() -> np.ndarray:
    return np.arange(1, 13, dtype=np.uint8).reshape(2, 2, 3) * 10  # no zero pixel


@pytest.mark.parametrize(
    ("saliency", "steps", "insertion", "deletion"),
    [
        # perfect map, steps=4 -> 1 pixel per step; insertion curve 0, .5, 1, 1, 1; deletion 1, .5, 0, 0, 0
        (np.array([[1.0, 1.0], [0.0, 0.0]]), 4, 0.25 * (0.5 + 1 + 1 + 0.5), 0.25 * (0.5 + 0.5)),
        # reversed map: insertion 0, 0, 0, .5, 1; deletion 1, 1, 1, .5, 0
        (np.array([[0.0, 0.0], [1.0, 1.0]]), 4, 0.25 * (0.5 + 0.5), 0.25 * (0.5 + 1 + 1 + 0.5)),
        # steps=3 touches ceil(4i/3) = 0, 2, 3, 4 pixels: insertion 0, 1, 1, 1; deletion 1, 0, 0, 0
        (np.array([[1.0, 1.0], [0.0, 0.0]]), 3, (1 + 1 + 0.5) / 3, 0.5 / 3),
        # uint8 map ranked as numbers (no unsigned wrap-around): order (0,0), (0,1), (1,1), (1,0)
        (np.array([[255, 200], [0, 10]], dtype=np.uint8), 4, 0.75, 0.25),
        # all ties keep raster order: the object row comes first
        (np.full((2, 2), 5, dtype=np.uint8), 4, 0.75, 0.25),
    ],
)
def test_insertion_deletion_hand_computed(
    saliency: np.ndarray, steps: int, insertion: float, deletion: float
) -> None:
    image = tiny_image()
    score_fn = object_score_fn(OBJECT_2X2, image)
    result = insertion_deletion_auc(image, saliency, 0, score_fn, steps=steps, baseline="zero")
    assert result["insertion"] == pytest.approx(insertion)
    assert result["deletion"] == pytest.approx(deletion)
    assert result["delta"] == pytest.approx(insertion - deletion)


def test_insertion_deletion_perfect_vs_reversed_map_on_noise() -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(1, 256, size=(8, 8, 3), dtype=np.uint8)
    obj = np.zeros((8, 8), bool)
    obj[2:5, 3:6] = True  # 9 pixels
    score_fn = object_score_fn(obj, image)
    good = insertion_deletion_auc(image, obj.astype(np.float32), 0, score_fn, steps=8, baseline="zero")
    bad = insertion_deletion_auc(image, (~obj).astype(np.float32), 0, score_fn, steps=8, baseline="zero")
    # 8 pixels per step: the perfect map shows 8/9 of the object after one step and all of it after two
    assert good["insertion"] == pytest.approx((8 / 9 + 6 + 0.5) / 8)
    assert good["deletion"] == pytest.approx((0.5 + 1 / 9) / 8)
    assert good["insertion"] > 0.9 and good["deletion"] < 0.1
    assert bad["insertion"] < 0.1 and bad["deletion"] > 0.9
    assert good["delta"] > 0.8 > -0.8 > bad["delta"]


def test_insertion_deletion_ties_keep_raster_order() -> None:
    rng = np.random.default_rng(2)
    image = rng.integers(1, 256, size=(8, 8, 3), dtype=np.uint8)
    obj = np.zeros((8, 8), bool)
    obj[0] = True  # the first 8 pixels in raster order
    score_fn = object_score_fn(obj, image)
    result = insertion_deletion_auc(image, np.zeros((8, 8)), 0, score_fn, steps=8, baseline="zero")
    # 8 pixels per step: the whole object after the first step
    assert result["insertion"] == pytest.approx((7 + 0.5) / 8)
    assert result["deletion"] == pytest.approx(0.5 / 8)


def test_insertion_deletion_batches_and_baselines() -> None:
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, size=(16, 12, 3), dtype=np.uint8)
    seen: list[np.ndarray] = []

    def recording_score_fn(batch: np.ndarray) -> np.ndarray:
        assert batch.dtype == np.uint8 and batch.shape[1:] == image.shape
        seen.append(batch.copy())
        return np.full((len(batch), 3), 1 / 3)

    saliency = rng.random((16, 12))
    insertion_deletion_auc(image, saliency, 2, recording_score_fn, steps=4, batch_size=3)
    assert [len(b) for b in seen] == [3, 3, 3, 1]  # 2 * (4 + 1) images
    images = np.concatenate(seen)
    np.testing.assert_array_equal(images[0], cv2.GaussianBlur(image, (11, 11), 5.0))  # insertion start
    np.testing.assert_array_equal(images[4], image)  # insertion end
    np.testing.assert_array_equal(images[5], image)  # deletion start
    np.testing.assert_array_equal(images[9], np.zeros_like(image))  # deletion end

    seen.clear()
    custom = np.full_like(image, 7)
    insertion_deletion_auc(image, saliency, 2, recording_score_fn, steps=2, baseline=custom)
    np.testing.assert_array_equal(seen[0][0], custom)


def test_insertion_deletion_constant_scores_and_resized_map() -> None:
    image = np.full((4, 4, 3), 50, dtype=np.uint8)

    def constant(batch: np.ndarray) -> np.ndarray:
        return np.tile([0.2, 0.8], (len(batch), 1))

    result = insertion_deletion_auc(image, np.ones((2, 2), np.uint8), 1, constant, steps=5)
    assert result == pytest.approx({"insertion": 0.8, "deletion": 0.8, "delta": 0.0})


def test_insertion_deletion_errors() -> None:
    image = tiny_image()
    score_fn = object_score_fn(OBJECT_2X2, image)
    saliency = np.ones((2, 2))
    with pytest.raises(ValueError, match="baseline"):
        insertion_deletion_auc(image, saliency, 0, score_fn, baseline="noise")
    with pytest.raises(ValueError, match="out of range"):
        insertion_deletion_auc(image, saliency, 5, score_fn)
    with pytest.raises(ValueError, match=r"\(N, K\)"):
        insertion_deletion_auc(image, saliency, 0, lambda b: np.zeros(len(b)))
    with pytest.raises(ValueError, match="uint8"):
        insertion_deletion_auc(image.astype(np.float32), saliency, 0, score_fn)
    with pytest.raises(ValueError, match="steps"):
        insertion_deletion_auc(image, saliency, 0, score_fn, steps=0)


# ---------------------------------------------------------------- ADCC


def mean_score_fn(batch: np.ndarray) -> np.ndarray:
    """Class 0 = mean pixel value / 200."""
    score = batch.reshape(len(batch), -1).mean(axis=1) / 200.0
    return np.stack([score, 1.0 - score], axis=1)


def test_adcc_hand_computed() -> None:
    image = np.full((2, 2, 3), 100, dtype=np.uint8)
    saliency = np.array([[255, 0], [51, 0]], dtype=np.uint8)  # s = [[1, 0], [0.2, 0]]
    received: list[np.ndarray] = []

    def explain_fn(masked: np.ndarray, target: int) -> np.ndarray:
        assert target == 0
        received.append(masked)
        return np.array([[9.0, 0.0], [0.0, 0.0]])

    result = adcc(image, saliency, 0, mean_score_fn, explain_fn)

    np.testing.assert_array_equal(received[0][..., 1], [[100, 0], [20, 0]])  # E = image * s
    # y = 100 / 200 = 0.5, o = 30 / 200 = 0.15 -> drop = 0.35 / 0.5
    assert result["average_drop"] == pytest.approx(0.7)
    assert result["complexity"] == pytest.approx(1.2 / 4)
    # s - mean = [.7, -.3, -.1, -.3], e - mean ∝ [.75, -.25, -.25, -.25]
    cc = 0.7 / math.sqrt(0.68 * 0.75)
    assert result["coherency"] == pytest.approx((cc + 1) / 2)
    expected = 3 / (1 / ((cc + 1) / 2) + 1 / 0.7 + 1 / 0.3)
    assert result["adcc"] == pytest.approx(expected)
    assert result["adcc"] == pytest.approx(0.51976, abs=1e-5)


def test_adcc_zero_guard_and_constant_maps() -> None:
    image = np.full((2, 2, 3), 100, dtype=np.uint8)
    result = adcc(image, np.zeros((2, 2), np.uint8), 0, mean_score_fn, lambda e, t: np.zeros((2, 2)))
    # E is black: the score drops to 0 (drop 1 -> ADCC 0); both maps constant -> cc = 1
    assert result == {"adcc": 0.0, "average_drop": 1.0, "coherency": 1.0, "complexity": 0.0}


def test_adcc_no_drop_when_masked_score_rises() -> None:
    image = np.full((2, 2, 3), 100, dtype=np.uint8)
    saliency = np.array([[1.0, 1.0], [1.0, 0.5]])  # float in [0, 1]: used as is

    def rising(batch: np.ndarray) -> np.ndarray:
        return np.array([[0.4], [0.6]])  # image, then E

    result = adcc(image, saliency, 0, rising, lambda e, t: saliency)
    assert result["average_drop"] == 0.0
    assert result["coherency"] == pytest.approx(1.0)
    assert result["complexity"] == pytest.approx(3.5 / 4)
    assert result["adcc"] == pytest.approx(3 / (1 + 1 / 0.125 + 1))


def test_adcc_score_and_normalize_map() -> None:
    assert adcc_score(1.0, 0.0, 0.0) == 1.0
    assert adcc_score(0.5, 0.5, 0.5) == pytest.approx(0.5)
    assert adcc_score(0.0, 0.1, 0.1) == 0.0
    assert adcc_score(0.9, 1.0, 0.1) == 0.0
    np.testing.assert_allclose(normalize_map(np.array([[0, 51], [255, 255]], np.uint8)), [[0, 0.2], [1, 1]])
    np.testing.assert_allclose(normalize_map(np.array([[0.2, 0.4]])), [[0.2, 0.4]])
    np.testing.assert_allclose(normalize_map(np.array([[2.0, 4.0, 3.0]])), [[0, 1, 0.5]])
    np.testing.assert_array_equal(normalize_map(np.full((2, 2), 3.0)), np.zeros((2, 2)))


def test_resize_map() -> None:
    small = np.full((2, 3), 200, dtype=np.uint8)
    big = resize_map(small, (4, 6))
    assert big.shape == (4, 6) and big.dtype == np.uint8 and (big == 200).all()
    assert resize_map(np.ones((2, 3)), (5, 5)).dtype == np.float32
    assert resize_map(small, (2, 3)) is small


# ---------------------------------------------------------------- registry, parsing, summaries


def test_registry() -> None:
    assert list(METRICS) == ["pointing_game", "insertion_deletion", "adcc"]
    assert {name: m.gate_key for name, m in METRICS.items()} == {
        "pointing_game": "hit_rate",
        "insertion_deletion": "delta",
        "adcc": "adcc",
    }
    assert METRICS["pointing_game"](peak_map(3, 4), boxes=[[4, 3, 5, 4]])


def test_parse_metric_names() -> None:
    assert parse_metric_names("pointing_game,adcc") == ["pointing_game", "adcc"]
    assert parse_metric_names(" adcc , insertion_deletion,adcc,") == ["adcc", "insertion_deletion"]
    with pytest.raises(ValueError) as err:
        parse_metric_names("pointing_game,x")
    assert str(err.value) == "unknown metric 'x': choose from pointing_game, insertion_deletion, adcc"
    with pytest.raises(ValueError, match="no metric names"):
        parse_metric_names(" , ")


def test_parse_fail_under() -> None:
    assert parse_fail_under("pointing_game=0.8,insertion_deletion=0.2") == {
        "pointing_game": 0.8,
        "insertion_deletion": 0.2,
    }
    spaced = parse_fail_under(" adcc = 0.5 , insertion_deletion=-0.1")
    assert spaced == {"adcc": 0.5, "insertion_deletion": -0.1}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("pointing_game", "malformed fail_under entry 'pointing_game': expected metric=value"),
        ("=0.5", "malformed fail_under entry '=0.5'"),
        ("adcc=", "malformed fail_under entry 'adcc='"),
        ("adcc=abc", "fail_under value for 'adcc' is not a number: 'abc'"),
        ("x=0.5", "unknown metric 'x': choose from pointing_game, insertion_deletion, adcc"),
        ("pointing_game=80", "fail_under value for 'pointing_game' (hit_rate) must be in [0, 1], got 80"),
        ("insertion_deletion=-2", "must be in [-1, 1]"),
        ("adcc=0.1,adcc=0.2", "fail_under gives metric 'adcc' twice"),
        ("", "fail_under is empty"),
    ],
)
def test_parse_fail_under_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError) as err:
        parse_fail_under(text)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_gate_failures() -> None:
    thresholds = {"pointing_game": 0.8, "adcc": 0.5, "insertion_deletion": 0.1}
    failures = gate_failures({"pointing_game": 0.7, "adcc": 0.9, "insertion_deletion": math.nan}, thresholds)
    assert failures == [
        "pointing_game: hit_rate 0.7000 < fail_under 0.8",
        "insertion_deletion: no delta value to compare with fail_under 0.1",
    ]
    assert gate_failures({"pointing_game": 0.8}, {"pointing_game": 0.8}) == []


def test_summarize() -> None:
    assert summarize([1.0, 2.0, 6.0]) == {"mean": 3.0, "min": 1.0, "max": 6.0, "count": 3}
    empty = summarize([])
    assert empty["count"] == 0 and math.isnan(empty["mean"]) and math.isnan(empty["max"])

"""Target groups, letterbox crop, resize, JET colours and overlays of raw saliency maps."""

from __future__ import annotations

import numpy as np
import pytest

from otx_xai.data.transforms import Preprocess
from otx_xai.explain.config import ExplainConfig, TargetExplainGroup
from otx_xai.explain.entity import ImageInfo, ModelInfo, PredictionBatch, classification_batch
from otx_xai.explain.saliency import (
    MAP_PER_IMAGE,
    crop_padding,
    overlay,
    postprocess,
    predicted_labels,
    select_maps,
)

LABELS = ["circle", "square", "triangle", "star"]
GRID = (3, 4)


def info(image_id: str = "img", original: tuple[int, int] = (50, 70), valid: tuple[int, int] = (64, 64),
         input_size: tuple[int, int] = (64, 64)) -> ImageInfo:
    return ImageInfo(image_id, "", original, valid, input_size)


def batch_from_logits(logits: list[list[float]], multilabel: bool, seed: int = 0) -> PredictionBatch:
    """A PredictionBatch read from logits the way every model's outputs are read, with random maps."""
    rng = np.random.default_rng(seed)
    count = len(logits)
    outputs = {
        "logits": np.asarray(logits, dtype=np.float32),
        "saliency_map": rng.integers(0, 256, size=(count, len(LABELS), *GRID), dtype=np.uint8),
        "feature_vector": rng.normal(size=(count, 8)).astype(np.float32),
        "feature_map": rng.normal(size=(count, 8, *GRID)).astype(np.float32),
    }
    infos = [info(f"img{i}") for i in range(count)]
    return classification_batch(outputs, infos, ModelInfo("classification", LABELS, multilabel, "ReciproCAM"))


LOGITS = [[0.1, 0.3, 0.2, -1.0], [2.0, -2.0, 0.5, -0.2], [-3.0, -2.5, -4.0, -3.5]]


def sigmoid(values: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-values))


def config(group: TargetExplainGroup, threshold: float = 0.3) -> ExplainConfig:
    return ExplainConfig(target_explain_group=group, predicted_maps_conf_thr=threshold)


@pytest.mark.parametrize("multilabel", [False, True], ids=["multiclass", "multilabel"])
def test_all_group_is_every_class_map(multilabel: bool) -> None:
    batch = batch_from_logits(LOGITS, multilabel)
    for index in range(len(batch)):
        maps = select_maps(batch, index, config(TargetExplainGroup.ALL))
        assert list(maps) == list(range(len(LABELS)))
        for label, saliency in maps.items():
            assert saliency.dtype == np.uint8 and np.array_equal(saliency, batch.saliency_map[index, label])


@pytest.mark.parametrize("threshold", [0.3, 0.9])
def test_predictions_group_multiclass_is_top1_whatever_the_threshold(threshold: float) -> None:
    batch = batch_from_logits(LOGITS, multilabel=False)
    for index, logits in enumerate(LOGITS):
        maps = select_maps(batch, index, config(TargetExplainGroup.PREDICTIONS, threshold))
        top1 = int(np.argmax(logits))
        assert list(maps) == [top1]
        assert np.array_equal(maps[top1], batch.saliency_map[index, top1])


@pytest.mark.parametrize("threshold", [0.05, 0.3, 0.6, 0.95])
def test_predictions_group_multilabel_is_every_label_above_threshold(threshold: float) -> None:
    batch = batch_from_logits(LOGITS, multilabel=True)
    for index, logits in enumerate(LOGITS):
        expected = [int(k) for k in np.flatnonzero(sigmoid(np.asarray(logits)) > threshold)]
        maps = select_maps(batch, index, config(TargetExplainGroup.PREDICTIONS, threshold))
        assert list(maps) == expected
        assert predicted_labels(batch, index, threshold) == expected
        for label in expected:
            assert np.array_equal(maps[label], batch.saliency_map[index, label])


def min_max_uint8(values: np.ndarray) -> np.ndarray:
    values = values.astype(np.float64)
    return np.round((values - values.min()) / (values.max() - values.min()) * 255.0).astype(np.uint8)


@pytest.mark.parametrize("with_feature_map", [True, False])
@pytest.mark.parametrize("multilabel", [False, True], ids=["multiclass", "multilabel"])
def test_image_group_is_one_class_agnostic_map(multilabel: bool, with_feature_map: bool) -> None:
    """The two class-agnostic maps DESIGN.md names: the activation map (channel mean of the feature map,
    normalized) when the feature map is known, else the maximum over the class maps."""
    batch = batch_from_logits(LOGITS, multilabel)
    if not with_feature_map:
        batch.feature_map = None
    for index in range(len(batch)):
        maps = select_maps(batch, index, config(TargetExplainGroup.IMAGE))
        assert list(maps) == [MAP_PER_IMAGE]
        saliency = maps[MAP_PER_IMAGE]
        assert saliency.dtype == np.uint8 and saliency.shape == GRID
        if with_feature_map:
            expected = min_max_uint8(batch.feature_map[index].mean(axis=0))
            assert np.abs(saliency.astype(int) - expected).max() <= 1
        else:
            assert np.array_equal(saliency, batch.saliency_map[index].max(axis=0))


def hot_corner_map() -> np.ndarray:
    """A raw map whose only hot cell is the top-right one."""
    saliency = np.zeros(GRID, dtype=np.uint8)
    saliency[0, -1] = 255
    return saliency


def is_red(pixel: np.ndarray) -> bool:
    red, green, blue = (int(v) for v in pixel)
    return red >= 100 and red > green + 60 and red > blue + 60


def is_blue(pixel: np.ndarray) -> bool:
    red, green, blue = (int(v) for v in pixel)
    return blue >= 100 and blue > green + 60 and blue > red + 60


@pytest.mark.parametrize("original", [(50, 70), (90, 40), (7, 7)])
def test_postprocess_is_rgb_at_original_size_hottest_red(original: tuple[int, int]) -> None:
    coloured = postprocess(hot_corner_map(), info(original=original), ExplainConfig(postprocess=True))
    assert coloured.shape == (*original, 3) and coloured.dtype == np.uint8
    assert is_red(coloured[0, -1]), coloured[0, -1]  # the hottest pixel (interpolation keeps corners)
    assert is_blue(coloured[-1, 0]), coloured[-1, 0]  # the coldest


def test_overlay_blends_colours_with_the_image() -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, size=(50, 70, 3), dtype=np.uint8)
    coloured = postprocess(hot_corner_map(), info(original=(50, 70)), ExplainConfig(postprocess=True))
    blended = overlay(coloured, image)
    expected = 0.5 * image.astype(np.float64) + 0.5 * coloured.astype(np.float64)
    assert blended.shape == image.shape and blended.dtype == np.uint8
    assert np.abs(blended - expected).max() <= 1.0
    grey = np.full((50, 70, 3), 128, dtype=np.uint8)
    on_grey = overlay(coloured, grey)
    assert on_grey[0, -1, 0] > on_grey[0, -1, 2] + 30  # still red where the map is hot, in RGB order


def letterboxed_info(original: tuple[int, int], input_size: tuple[int, int] = (64, 64)) -> ImageInfo:
    """The ImageInfo the data pipeline produces for a letterboxed image of this size."""
    image = np.zeros((*original, 3), dtype=np.uint8)
    _, valid = Preprocess(input_size, letterbox=True)(image)
    return ImageInfo("img", "", original, valid, input_size)


def test_letterbox_valid_region_is_the_image_part() -> None:
    assert letterboxed_info((40, 80)).valid_size == (32, 64)
    assert letterboxed_info((80, 40)).valid_size == (64, 32)
    assert letterboxed_info((50, 50)).valid_size == (64, 64)


@pytest.mark.parametrize(("original", "kept"), [((40, 80), (2, 4)), ((80, 40), (4, 2)), ((50, 50), (4, 4))])
def test_crop_padding_keeps_the_image_part_of_the_map(original: tuple[int, int], kept: tuple[int, int]) -> None:
    saliency = np.arange(16, dtype=np.uint8).reshape(4, 4)
    cropped = crop_padding(saliency, letterboxed_info(original))
    assert np.array_equal(cropped, saliency[: kept[0], : kept[1]])


def test_crop_padded_map_ignores_the_padding() -> None:
    target = letterboxed_info((40, 80))  # the image fills the top half of the input
    image_part = np.array([[0, 60, 120, 128]], dtype=np.uint8)
    maps = [np.concatenate([image_part, np.full((1, 4), value, np.uint8)]) for value in (0, 255)]
    crop = ExplainConfig(postprocess=True, crop_padded_map=True)
    cropped = [postprocess(m, target, crop) for m in maps]
    assert cropped[0].shape == (40, 80, 3)
    assert np.array_equal(cropped[0], cropped[1]), "the padding half must not show"
    assert not any(is_red(p) for p in cropped[1].reshape(-1, 3)), "the hot padding leaked into the image"
    uncropped = postprocess(maps[1], target, ExplainConfig(postprocess=True))
    assert is_red(uncropped[-1, 0]), "without the crop the padding row stretches over the image"


def test_crop_is_a_no_op_without_letterbox() -> None:
    saliency = np.random.default_rng(0).integers(0, 256, size=GRID, dtype=np.uint8)
    plain = info(original=(50, 70))
    cropped = postprocess(saliency, plain, ExplainConfig(postprocess=True, crop_padded_map=True))
    assert np.array_equal(cropped, postprocess(saliency, plain, ExplainConfig(postprocess=True)))

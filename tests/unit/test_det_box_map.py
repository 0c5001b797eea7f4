"""The per-box DetClassProbabilityMap equals its rule written the slow way; NMS says which candidate each box is."""

from __future__ import annotations

import numpy as np
import torch

from conftest import iou
from otx_xai.boxes import Detections
from otx_xai.data.shapes import SHAPE_CLASSES
from otx_xai.explain.methods.forward.det_box_map import DetBoxProbabilityMap
from otx_xai.explain.saliency import normalize_to_uint8
from otx_xai.models.detection import SingleStageDetector
from otx_xai.tracing import frozen_size


def bilinear(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear resize, half-pixel centres (align_corners=False), edges clamped."""
    def axis(out_size: int, in_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        source = np.maximum((np.arange(out_size) + 0.5) * in_size / out_size - 0.5, 0.0)
        low = source.astype(int)
        return low, np.minimum(low + 1, in_size - 1), source - low
    y0, y1, wy = axis(height, image.shape[0])
    x0, x1, wx = axis(width, image.shape[1])
    top = image[y0][:, x0] * (1 - wx) + image[y0][:, x1] * wx
    bottom = image[y1][:, x0] * (1 - wx) + image[y1][:, x1] * wx
    return top * (1 - wy[:, None]) + bottom * wy[:, None]


def location_of(anchor: int, grids: list[tuple[int, int, int]]) -> tuple[int, int, int]:
    """(level, row, column) of an anchor in torchvision's flat order (levels, then H, W, A)."""
    for level, (height, width, count) in enumerate(grids):
        if anchor < height * width * count:
            cell = anchor // count
            return level, cell // width, cell % width
        anchor -= height * width * count
    raise IndexError(anchor)


def reference(probability: np.ndarray, grids: list[tuple[int, int, int]], d: dict[str, np.ndarray],
              thresh: float) -> np.ndarray:
    """One box at a time, one candidate at a time."""
    height, width = probability.shape[1:]
    out = np.zeros((len(d["labels"]), height, width), dtype=np.uint8)
    for n, (box, label, kept) in enumerate(zip(d["bboxes"][:, :4], d["labels"], d["kept"], strict=True)):
        if label < 0:
            continue
        levels = [np.zeros(grid[:2]) for grid in grids]
        for j, (other, other_label, anchor, valid) in enumerate(zip(
                d["candidate_boxes"], d["candidate_labels"], d["candidate_anchors"], d["candidate_valid"],
                strict=True)):
            overlap = iou(box, other)
            weight = overlap if valid and other_label == label and overlap >= thresh else 0.0
            weight = 1.0 if j == kept else weight
            level, row, column = location_of(int(anchor), grids)
            levels[level][row, column] = max(levels[level][row, column], weight)
        support = sum(bilinear(level, height, width) for level in levels) / len(grids)
        out[n] = normalize_to_uint8(probability[label] * support)
    return out


def test_rule_on_overlapping_candidates_two_anchors_per_location() -> None:
    """Jittered copies of three boxes give IoUs across the whole range; two anchors per location, some
    sharing a location with the kept candidate (the maximum, not the sum, of their weights counts)."""
    rng = np.random.default_rng(0)
    grids = [(8, 8, 2), (4, 4, 2), (2, 2, 2)]
    total, top_k = sum(h * w * a for h, w, a in grids), 60
    base = np.array([[10, 10, 40, 50], [30, 5, 60, 30], [5, 40, 25, 60]], dtype=np.float32)
    boxes = base[rng.integers(0, 3, top_k)] + rng.normal(0, 6, (top_k, 4)).astype(np.float32)
    boxes[:, 2:] = np.maximum(boxes[:, 2:], boxes[:, :2] + 1)
    kept = np.array([5, 17, 40, 0])
    labels = np.array([0, 2, 1, -1])
    d = {"candidate_boxes": boxes, "candidate_labels": rng.integers(0, 3, top_k),
         "candidate_anchors": rng.choice(total, top_k, replace=False), "candidate_valid": rng.random(top_k) < 0.8,
         "kept": kept, "labels": labels,
         "bboxes": np.concatenate([boxes[kept] * (labels >= 0)[:, None], np.ones((4, 1), np.float32)], axis=1)}
    d["candidate_labels"][kept[:3]] = labels[:3]
    for twin, of in zip([6, 18, 41], kept[:3], strict=True):  # the other anchor of the same location, same label
        d["candidate_anchors"][twin] = d["candidate_anchors"][of] ^ 1
        d["candidate_labels"][twin], d["candidate_valid"][twin] = d["candidate_labels"][of], True
        boxes[twin] = boxes[of] + 1.0
    probability = rng.random((3, 4, 4)).astype(np.float32)
    levels = [torch.zeros(1, a * 3, h, w) for h, w, a in grids]
    detections = Detections(**{name: torch.from_numpy(np.asarray(d[name]))[None] for name in Detections._fields})
    maps = DetBoxProbabilityMap(num_anchors=2, iou_thresh=0.5)(
        torch.from_numpy(probability)[None], levels, detections)[0].numpy()
    expected = reference(probability, grids, d, 0.5)
    assert maps.dtype == np.uint8 and maps.shape == (4, 4, 4)
    assert np.abs(maps.astype(int) - expected.astype(int)).max() <= 1
    assert not maps[3].any() and (maps[:3].reshape(3, -1).max(axis=1) == 255).all()


def test_model_box_maps_equal_the_reference_and_kept_candidates_are_the_boxes() -> None:
    torch.manual_seed(0)
    model = SingleStageDetector(list(SHAPE_CLASSES), score_thresh=0.0, detections_per_img=12).eval()
    images = torch.randn(2, 3, 96, 96)
    with torch.no_grad():
        out = model.forward_explain(images)
        result = model.detector(images)
        decoded, scores = model.detector.boxes_and_scores(result, frozen_size(images, 2))
        detections = model._detections(images, result)
        probability = model.explainer.saliency(*result.cls_levels).numpy()
    maps = out["box_saliency_map"].numpy()
    assert maps.shape == (2, 12, 6, 6) and maps.dtype == np.uint8
    grids = [(*frozen_size(level, 2), 1) for level in result.cls_levels]  # FCOS: one point per location
    for image in range(2):
        d = {name: getattr(detections, name)[image].numpy() for name in Detections._fields}
        assert (d["labels"] >= 0).all()  # score 0 passes: every row is a detection
        anchors = d["candidate_anchors"][d["kept"]]
        np.testing.assert_allclose(decoded[image, anchors].numpy(), d["bboxes"][:, :4], atol=1e-5)
        np.testing.assert_allclose(scores[image, anchors, d["labels"]].numpy(), d["bboxes"][:, 4], atol=1e-6)
        expected = reference(probability[image], grids, d, model.nms_thresh)
        assert np.abs(maps[image].astype(int) - expected.astype(int)).max() <= 1


def test_padding_rows_get_zero_maps() -> None:
    torch.manual_seed(0)
    model = SingleStageDetector(list(SHAPE_CLASSES), score_thresh=0.999, detections_per_img=5).eval()
    with torch.no_grad():
        out = model.forward_explain(torch.randn(1, 3, 64, 64))
    assert (out["labels"] == -1).all() and not out["box_saliency_map"].any()

"""The per-box DetClassProbabilityMap equals its rule written the slow way, on a real (random) fcos_light."""

from __future__ import annotations

import numpy as np
import torch

from otx_xai.data.shapes import SHAPE_CLASSES
from otx_xai.explain.methods.det_box_map import DetBoxProbabilityMap
from otx_xai.explain.saliency import normalize_to_uint8
from otx_xai.models.det_postprocess import frozen_size
from otx_xai.models.detection import SingleStageDetector


def iou(first: np.ndarray, second: np.ndarray) -> float:
    """IoU of two boxes x1, y1, x2, y2."""
    width = max(0.0, min(first[2], second[2]) - max(first[0], second[0]))
    height = max(0.0, min(first[3], second[3]) - max(first[1], second[1]))
    inter = width * height
    area = (first[2] - first[0]) * (first[3] - first[1]) + (second[2] - second[0]) * (second[3] - second[1])
    return inter / max(area - inter, 1e-6)


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


def reference(probability: np.ndarray, grids: list[tuple[int, int, int]], decoded: np.ndarray, boxes: np.ndarray,
              labels: np.ndarray, anchors: np.ndarray, thresh: float) -> np.ndarray:
    """One box at a time: IoU-weighted support over every anchor, maxed per location, resized, averaged."""
    height, width = probability.shape[1:]
    out = np.zeros((len(boxes), height, width), dtype=np.uint8)
    for n, (box, label, anchor) in enumerate(zip(boxes, labels, anchors, strict=True)):
        if label < 0:
            continue
        weights = np.array([iou(box, other) for other in decoded])
        weights = np.where(weights >= thresh, weights, 0.0)
        weights[anchor] = max(weights[anchor], 1.0)
        support, start = np.zeros((height, width)), 0
        for grid_h, grid_w, count in grids:
            level = weights[start:start + grid_h * grid_w * count].reshape(grid_h, grid_w, count).max(axis=-1)
            support += bilinear(level, height, width)
            start += grid_h * grid_w * count
        out[n] = normalize_to_uint8(probability[label] * support / len(grids))
    return out


def test_rule_on_overlapping_candidates_two_anchors_per_location() -> None:
    """Jittered copies of three boxes give IoUs across the whole range; two anchors per location."""
    rng = np.random.default_rng(0)
    grids = [(8, 8, 2), (4, 4, 2), (2, 2, 2)]
    total = sum(h * w * a for h, w, a in grids)
    base = np.array([[10, 10, 40, 50], [30, 5, 60, 30], [5, 40, 25, 60]], dtype=np.float32)
    decoded = base[rng.integers(0, 3, total)] + rng.normal(0, 6, (total, 4)).astype(np.float32)
    decoded[:, 2:] = np.maximum(decoded[:, 2:], decoded[:, :2] + 1)
    anchors = np.array([5, 77, 140, 0])
    labels = np.array([0, 2, 1, -1])
    boxes = decoded[anchors] * (labels >= 0)[:, None]
    probability = rng.random((3, 4, 4)).astype(np.float32)
    levels = [torch.zeros(1, a * 3, h, w) for h, w, a in grids]
    method = DetBoxProbabilityMap(num_anchors=2, iou_thresh=0.5)
    bboxes = torch.from_numpy(np.concatenate([boxes, np.ones((4, 1), np.float32)], axis=1))[None]
    maps = method(torch.from_numpy(probability)[None], levels, torch.from_numpy(decoded)[None], bboxes,
                  torch.from_numpy(labels)[None], torch.from_numpy(anchors)[None])[0].numpy()
    expected = reference(probability, grids, decoded, boxes, labels, anchors, 0.5)
    assert maps.dtype == np.uint8 and maps.shape == (4, 4, 4)
    assert np.abs(maps.astype(int) - expected.astype(int)).max() <= 1
    assert not maps[3].any() and (maps[:3].reshape(3, -1).max(axis=1) == 255).all()


def test_box_maps_equal_the_reference_and_kept_anchors_are_the_boxes() -> None:
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
    anchors = detections["anchors"].numpy()
    bboxes, labels = out["bboxes"].numpy(), out["labels"].numpy()
    grids = [(*frozen_size(level, 2), 1) for level in result.cls_levels]  # FCOS: one point per location
    for image in range(2):
        present = labels[image] >= 0
        assert present.all()  # score 0 passes: every row is a detection
        # the anchor of each kept row decodes to that box and scores it with that label
        np.testing.assert_allclose(decoded[image, anchors[image]].numpy(), bboxes[image, :, :4], atol=1e-5)
        np.testing.assert_allclose(scores[image, anchors[image], labels[image]].numpy(), bboxes[image, :, 4],
                                   atol=1e-6)
        expected = reference(probability[image], grids, decoded[image].numpy(), bboxes[image, :, :4],
                             labels[image], anchors[image], model.nms_thresh)
        assert np.abs(maps[image].astype(int) - expected.astype(int)).max() <= 1
        assert (maps[image].reshape(12, -1).max(axis=1) == 255).all()


def test_padding_rows_get_zero_maps() -> None:
    torch.manual_seed(0)
    model = SingleStageDetector(list(SHAPE_CLASSES), score_thresh=0.999, detections_per_img=5).eval()
    with torch.no_grad():
        out = model.forward_explain(torch.randn(1, 3, 64, 64))
    assert (out["labels"] == -1).all() and not out["box_saliency_map"].any()

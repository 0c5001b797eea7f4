"""D-RISE equals its formula computed directly, one masked image at a time, on a real (random) fcos_light."""

from __future__ import annotations

import numpy as np
import torch

from otx_xai.data.shapes import SHAPE_CLASSES
from otx_xai.explain.black_box.detection import drise_maps, explain_detections
from otx_xai.explain.black_box.detection_score import black_fill, torch_run_batches
from otx_xai.models.detection import SingleStageDetector

MEAN, STD = [123.675, 116.28, 103.53], [58.395, 57.12, 57.375]


def iou(first: np.ndarray, second: np.ndarray) -> float:
    width = max(0.0, min(first[2], second[2]) - max(first[0], second[0]))
    height = max(0.0, min(first[3], second[3]) - max(first[1], second[1]))
    inter = width * height
    area = (first[2] - first[0]) * (first[3] - first[1]) + (second[2] - second[0]) * (second[3] - second[1])
    return inter / max(area - inter, 1e-6)


def reference(model: SingleStageDetector, raw: np.ndarray, boxes: np.ndarray, labels: np.ndarray,
              masks: np.ndarray) -> np.ndarray:
    """Mask the raw 0..255 image (black where the mask is 0), normalize, detect; weight = best IoU × score of a
    same-label detection; map = Σ weight · mask / number of masks."""
    total = np.zeros((len(boxes), *masks.shape[1:]))
    for mask in masks:
        masked = (raw * mask[..., None] - np.array(MEAN)) / np.array(STD)
        with torch.no_grad():
            out = model(torch.from_numpy(masked.transpose(2, 0, 1)[None].astype(np.float32)))
        found = [(row[:4], int(label), float(row[4])) for row, label in
                 zip(out["bboxes"][0].numpy(), out["labels"][0].numpy(), strict=True) if label >= 0 and row[4] > 0]
        for t, (box, label) in enumerate(zip(boxes, labels, strict=True)):
            weight = max([iou(box, other) * score for other, other_label, score in found if other_label == label],
                         default=0.0)
            total[t] += weight * mask
    return total / len(masks)


def test_drise_equals_the_direct_computation_for_fixed_masks() -> None:
    torch.manual_seed(0)
    model = SingleStageDetector(list(SHAPE_CLASSES), score_thresh=0.0, detections_per_img=10).eval()
    rng = np.random.default_rng(0)
    raw = rng.uniform(0, 255, (64, 64, 3))
    image = ((raw - np.array(MEAN)) / np.array(STD)).transpose(2, 0, 1).astype(np.float32)
    masks = rng.uniform(0, 1, (7, 64, 64)).astype(np.float32)
    with torch.no_grad():
        out = model(torch.from_numpy(image[None]))
    boxes, labels = out["bboxes"][0, :3, :4].numpy(), out["labels"][0, :3].numpy()
    got = drise_maps(image, boxes, labels, masks, torch_run_batches(model), black_fill(MEAN, STD), batch_size=3)
    expected = reference(model, raw, boxes, labels, masks)
    assert got.shape == (3, 64, 64) and expected.any()
    np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-5)


def test_explain_detections_maps_only_boxes_above_the_threshold() -> None:
    bboxes = np.zeros((1, 4, 5), dtype=np.float32)
    bboxes[0, :3] = [[0, 0, 8, 8, 0.9], [4, 4, 12, 12, 0.5], [0, 0, 4, 4, 0.1]]
    labels = np.array([[1, 1, 0, -1]])
    calls = []

    def box_maps(image: np.ndarray, boxes: np.ndarray, box_labels: np.ndarray) -> np.ndarray:
        calls.append(box_labels.tolist())
        maps = np.zeros((len(boxes), 16, 16))
        for t, box in enumerate(boxes.astype(int)):
            maps[t, box[1]:box[3], box[0]:box[2]] = 1.0 + t
        return maps

    out = explain_detections(np.zeros((1, 3, 16, 16), np.float32), {"bboxes": bboxes, "labels": labels}, 2,
                             box_maps, threshold=0.3)
    assert calls == [[1, 1]]
    per_box, per_class = out["box_saliency_map"][0], out["saliency_map"][0]
    assert per_box.dtype == np.uint8 and per_box.shape == (4, 16, 16)
    assert per_box[0, :8, :8].min() == 255 and per_box[0, 8:, :].max() == 0
    assert not per_box[2:].any() and not per_class[0].any()
    expected = np.zeros((16, 16))
    expected[:8, :8] += 0.9
    expected[4:12, 4:12] += 0.5 * 2.0
    assert np.array_equal(per_class[1], np.floor(expected / expected.max() * 255 + 0.5).astype(np.uint8))

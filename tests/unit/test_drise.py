"""D-RISE equals its formula computed directly, one masked image at a time, on a real (random) fcos_light;
the black-box detection outputs put each box's map on its own row."""

from __future__ import annotations

import numpy as np
import torch

from conftest import iou
from otx_xai.data.shapes import SHAPE_CLASSES
from otx_xai.explain.black_box.detection import with_box_maps
from otx_xai.explain.black_box.presets import BlackBoxConfig
from otx_xai.explain.black_box.protocol import black_box_method, black_box_names
from otx_xai.explain.black_box.runners import torch_runner
from otx_xai.explain.methods.perturbation.aise import DetectionAISE
from otx_xai.explain.methods.perturbation.drise import DetectionDRISE
from otx_xai.models.detection import SingleStageDetector


def reference(model: SingleStageDetector, image: np.ndarray, boxes: np.ndarray, labels: np.ndarray,
              masks: np.ndarray) -> np.ndarray:
    """Per mask: detect on image × mask alone; weight of box t = best IoU × score of a detection with t's label;
    map = Σ weight · mask / Σ mask."""
    total, coverage = np.zeros((len(boxes), *masks.shape[1:])), np.zeros(masks.shape[1:])
    for mask in masks:
        with torch.no_grad():
            out = model(torch.from_numpy((image * mask)[None].astype(np.float32)))
        found = [(row[:4], int(label), float(row[4])) for row, label in
                 zip(out["bboxes"][0].numpy(), out["labels"][0].numpy(), strict=True) if label >= 0 and row[4] > 0]
        for t, (box, label) in enumerate(zip(boxes, labels, strict=True)):
            weight = max([iou(box, other) * score for other, other_label, score in found if other_label == label],
                         default=0.0)
            total[t] += weight * mask
        coverage += mask
    return total / coverage


def test_drise_equals_the_direct_computation_for_fixed_masks() -> None:
    torch.manual_seed(0)
    model = SingleStageDetector(list(SHAPE_CLASSES), score_thresh=0.0, detections_per_img=10).eval()
    image = np.random.default_rng(0).normal(0, 1, (3, 64, 64)).astype(np.float32)
    method = DetectionDRISE(BlackBoxConfig(num_masks=7, num_cells=4, seed=3, batch_size=2))
    with torch.no_grad():
        out = model(torch.from_numpy(image[None]))
    boxes, labels = out["bboxes"][0, :3, :4].numpy(), out["labels"][0, :3].numpy()
    got = method.box_maps(image, boxes, labels, torch_runner(model, batch_size=2))
    masks = method.masks((64, 64)).chunk(0, 7)
    expected = reference(model, image, boxes, labels, masks)
    assert got.shape == (3, 64, 64) and expected.std(axis=(1, 2)).min() > 0  # the masks moved the scores
    np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-6)


def test_detection_methods_are_registered() -> None:
    assert {"DRISE", "AISE"} <= set(black_box_names("detection"))
    assert black_box_method("detection", "DRISE").name == "DRISE"
    assert black_box_method("detection", "AISE").settings()["inferences_per_box"] == 50 * 3  # balance, kept only


def test_detection_aise_runs_one_kept_image_per_evaluation() -> None:
    """openvino_xai's AISEDetection scores only the kept image: per box, iterations × widths inferences, each
    the image times one Gaussian kernel (two per evaluation, kept and deleted, would double the count)."""
    torch.manual_seed(0)
    model = SingleStageDetector(list(SHAPE_CLASSES), score_thresh=0.0, detections_per_img=10).eval()
    image = np.random.default_rng(0).normal(0, 1, (3, 64, 64)).astype(np.float32)
    with torch.no_grad():
        out = model(torch.from_numpy(image[None]))
    boxes, labels = out["bboxes"][0, :3, :4].numpy(), out["labels"][0, :3].numpy()
    run, seen = torch_runner(model, batch_size=8), []

    def counting(images: np.ndarray) -> dict[str, np.ndarray]:
        seen.append(images)
        return run(images)

    method = DetectionAISE(BlackBoxConfig(iterations=4, kernel_widths=[0.5, 1.0], batch_size=8))
    maps = method.box_maps(image, boxes, labels, counting)
    perturbed = np.concatenate(seen)
    assert maps.shape == (3, 64, 64)
    assert len(perturbed) == 3 * 4 * 2 == 3 * method.settings()["inferences_per_box"]
    kernels = perturbed / image[None]  # image × g: g, the same in every channel, in [0, 1]
    assert kernels.min() >= 0.0 and kernels.max() <= 1.0 + 1e-5 and np.allclose(kernels, kernels[:, :1], atol=1e-5)
    singular = np.linalg.svd(kernels[:, 0].astype(np.float64), compute_uv=False)
    assert (singular[:, 1] < 1e-4 * singular[:, 0]).all()  # a separable Gaussian has rank 1; a deleted 1 − g has 2


def test_box_maps_land_on_their_rows_and_class_maps_sum_them() -> None:
    bboxes = np.zeros((1, 4, 5), dtype=np.float32)
    bboxes[0, :3] = [[0, 0, 8, 8, 0.9], [4, 4, 12, 12, 0.5], [0, 0, 4, 4, 0.1]]
    labels = np.array([[1, 1, 0, -1]])
    maps = np.zeros((2, 16, 16))
    maps[0, :8, :8], maps[1, 4:12, 4:12] = 1.0, 2.0
    out = with_box_maps({"bboxes": bboxes, "labels": labels}, [(np.array([0, 1]), maps)], 2, (16, 16))
    per_box, per_class = out["box_saliency_map"][0], out["saliency_map"][0]
    assert per_box.dtype == np.uint8 and per_box.shape == (4, 16, 16) and per_class.shape == (2, 16, 16)
    assert per_box[0, :8, :8].min() == 255 and per_box[0, 8:].max() == 0
    assert not per_box[2:].any() and not per_class[0].any()
    expected = 0.9 * maps[0] + 0.5 * maps[1]
    assert np.array_equal(per_class[1], np.floor(expected / expected.max() * 255 + 0.5).astype(np.uint8))

"""The dump of an explain run: map PNGs and overlays, raw .npy maps and the JSON index, read back from disk."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from otx_xai.data.dataset import FailedImage
from otx_xai.explain.config import ExplainConfig, TargetExplainGroup
from otx_xai.explain.dump import INDEX_JSON, INDEX_VERSION, SALIENCY_DIR
from otx_xai.explain.entity import ImageInfo, ModelInfo, PredictionBatch, classification_batch, softmax
from otx_xai.explain.sink import ExplainSink

LABELS = ["circle", "big square", "triangle"]
FILE_LABELS = ["circle", "big_square", "triangle"]  # sanitized
GRID = (2, 3)
SIZES = [(40, 60), (30, 20)]
LOGITS = np.array([[0.2, 2.0, -1.0], [3.0, 0.0, 0.5]], dtype=np.float32)


def write_images(folder: Path) -> list[ImageInfo]:
    """Two real RGB images on disk, with the ImageInfo the data pipeline would give them."""
    rng = np.random.default_rng(0)
    infos = []
    for number, size in enumerate(SIZES):
        path = folder / f"image {number}.png"
        cv2.imwrite(str(path), rng.integers(0, 256, size=(*size, 3), dtype=np.uint8))
        infos.append(ImageInfo(f"image_{number}", str(path), size, (64, 64), (64, 64)))
    return infos


def hot_corner_maps() -> np.ndarray:
    """uint8 (2, K, h, w) maps, every one hot only in its top-right cell."""
    maps = np.zeros((len(SIZES), len(LABELS), *GRID), dtype=np.uint8)
    maps[:, :, 0, -1] = 255
    maps[:, :, 1, 0] = 17
    maps[1, :, 1, 1] = 40  # each image's maps differ
    return maps


def make_batch(infos: list[ImageInfo]) -> PredictionBatch:
    outputs = {"logits": LOGITS, "saliency_map": hot_corner_maps()}
    return classification_batch(outputs, infos, ModelInfo("classification", LABELS, False, "ReciproCAM"))


def explain_into(run_dir: Path, config: ExplainConfig, failed: list[FailedImage] | None = None) -> dict:
    """Run a sink over one batch of the two images; return the index document read back."""
    infos = write_images(run_dir.parent)
    sink = ExplainSink(config, run_dir, {"label_names": LABELS})
    sink.consume(make_batch(infos), failed)
    sink.finish()
    return json.loads((run_dir / INDEX_JSON).read_text())


def read_png(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert image is not None, path
    return image


def assert_no_temp_files(run_dir: Path) -> None:
    assert not list(run_dir.rglob(".*.tmp")), list(run_dir.rglob(".*.tmp"))


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    return tmp_path / "20260101_000000"


def test_raw_maps_index_and_file_names(run_dir: Path) -> None:
    index = explain_into(run_dir, ExplainConfig(target_explain_group=TargetExplainGroup.ALL))
    maps = hot_corner_maps()
    scores = softmax(LOGITS.astype(np.float64))
    assert index["version"] == INDEX_VERSION and index["label_names"] == LABELS
    by_id = {entry["image_id"]: entry for entry in index["images"]}
    assert set(by_id) == {"image_0", "image_1"}
    expected_files = set()
    for number, image_id in enumerate(["image_0", "image_1"]):
        entry = by_id[image_id]
        assert entry["error"] is None
        assert entry["source_path"].endswith(f"image {number}.png")
        top1 = int(np.argmax(LOGITS[number]))
        assert [(p["index"], p["label"]) for p in entry["predicted"]] == [(top1, LABELS[top1])]
        assert entry["predicted"][0]["score"] == pytest.approx(scores[number, top1], abs=1e-5)
        names = {f"{SALIENCY_DIR}/{image_id}_class_{label}_saliency_map.png" for label in FILE_LABELS}
        names.add(f"{SALIENCY_DIR}/{image_id}_saliency_map.npy")
        assert set(entry["files"]) == names
        expected_files |= names
        for k, label in enumerate(FILE_LABELS):
            png = read_png(run_dir / SALIENCY_DIR / f"{image_id}_class_{label}_saliency_map.png")
            assert png.dtype == np.uint8 and np.array_equal(png, maps[number, k]), "grey PNG = raw map"
        raw = np.load(run_dir / SALIENCY_DIR / f"{image_id}_saliency_map.npy")
        assert raw.dtype == np.uint8 and np.array_equal(raw, maps[number])
    on_disk = {p.relative_to(run_dir).as_posix() for p in (run_dir / SALIENCY_DIR).iterdir()}
    assert on_disk == expected_files
    assert_no_temp_files(run_dir)


def test_postprocessed_maps_and_overlays(run_dir: Path) -> None:
    config = ExplainConfig(target_explain_group=TargetExplainGroup.PREDICTIONS, postprocess=True)
    index = explain_into(run_dir, config)
    for number, entry in enumerate(sorted(index["images"], key=lambda e: e["image_id"])):
        image_id = entry["image_id"]
        label = FILE_LABELS[int(np.argmax(LOGITS[number]))]
        stem = run_dir / SALIENCY_DIR / f"{image_id}_class_{label}"
        assert {Path(name).name for name in entry["files"]} == {
            f"{image_id}_class_{label}_saliency_map.png", f"{image_id}_class_{label}_overlay.png",
            f"{image_id}_saliency_map.npy"}
        coloured_bgr = read_png(Path(f"{stem}_saliency_map.png"))
        assert coloured_bgr.shape == (*SIZES[number], 3), "resized to the original image"
        blue, green, red = (int(v) for v in coloured_bgr[0, -1])  # the hottest pixel, read as BGR
        assert red >= 100 and red > blue + 60 and red > green + 60, (blue, green, red)
        blue, green, red = (int(v) for v in coloured_bgr[-1, -1])  # a cold pixel
        assert blue >= 100 and blue > red + 60, (blue, green, red)
        original_bgr = cv2.imread(entry["source_path"], cv2.IMREAD_COLOR)
        overlay_bgr = read_png(Path(f"{stem}_overlay.png"))
        expected = 0.5 * original_bgr.astype(np.float64) + 0.5 * coloured_bgr.astype(np.float64)
        assert overlay_bgr.shape == original_bgr.shape
        assert np.abs(overlay_bgr - expected).max() <= 1.0, "overlay = half image + half colour map"
    assert_no_temp_files(run_dir)


def test_image_group_writes_one_map_per_image(run_dir: Path) -> None:
    index = explain_into(run_dir, ExplainConfig(target_explain_group=TargetExplainGroup.IMAGE))
    for entry in index["images"]:
        image_id = entry["image_id"]
        assert sorted(Path(name).name for name in entry["files"]) == [
            f"{image_id}_map_per_image_saliency_map.png", f"{image_id}_saliency_map.npy"]
        assert all((run_dir / name).is_file() for name in entry["files"])


def test_unreadable_images_are_indexed_with_their_error(run_dir: Path) -> None:
    failed = [FailedImage("broken", "/data/broken.png", "cannot read /data/broken.png: the file is empty")]
    index = explain_into(run_dir, ExplainConfig(), failed)
    by_id = {entry["image_id"]: entry for entry in index["images"]}
    assert by_id["broken"]["error"] == failed[0].error
    assert by_id["broken"]["files"] == [] and by_id["broken"]["source_path"] == "/data/broken.png"
    assert all(by_id[i]["error"] is None for i in ("image_0", "image_1"))
    assert index["summary"]["explained"] == 2 and index["summary"]["failed"] == 1


def test_image_gone_before_its_overlay_is_recorded_not_fatal(run_dir: Path) -> None:
    infos = write_images(run_dir.parent)
    Path(infos[0].source_path).unlink()
    sink = ExplainSink(ExplainConfig(postprocess=True), run_dir, {})
    sink.consume(make_batch(infos))
    sink.finish()
    by_id = {e["image_id"]: e for e in json.loads((run_dir / INDEX_JSON).read_text())["images"]}
    assert by_id["image_0"]["error"] and by_id["image_1"]["error"] is None
    assert all((run_dir / name).is_file() for name in by_id["image_1"]["files"])


def test_results_without_dump_write_nothing(tmp_path: Path) -> None:
    infos = write_images(tmp_path)
    sink = ExplainSink(ExplainConfig(postprocess=True))
    sink.consume(make_batch(infos))
    results = sink.finish()
    assert [r.info.image_id for r in results] == ["image_0", "image_1"]
    assert all(r.files == [] for r in results)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["image 0.png", "image 1.png"]
    assert results[0].saliency_map[1].shape == (*SIZES[0], 3)


def test_box_maps_named_per_box_with_sanitized_labels(run_dir: Path) -> None:
    """Each detection above the threshold gets ``<image>_box_<k>_<label>_saliency_map.png`` with its own map."""
    from otx_xai.explain.detection_entity import detection_batch

    infos = write_images(run_dir.parent)
    labels = ["red circle/2", "sq"]
    bboxes = np.zeros((2, 3, 5), dtype=np.float32)
    bboxes[0, :2] = [[1, 2, 30, 40, 0.9], [10, 10, 50, 50, 0.6]]
    bboxes[1, 0] = [0, 0, 20, 20, 0.2]  # below the threshold: no map
    box_maps = np.arange(2 * 3 * 6, dtype=np.uint8).reshape(2, 3, *GRID) * 7
    outputs = {"bboxes": bboxes, "labels": np.array([[1, 0, -1], [0, -1, -1]]),
               "saliency_map": np.zeros((2, 2, *GRID), dtype=np.uint8), "box_saliency_map": box_maps}
    batch = detection_batch(outputs, infos, ModelInfo("detection", labels, False, "DetClassProbabilityMap"))
    sink = ExplainSink(ExplainConfig(target_explain_group=TargetExplainGroup.PREDICTIONS), run_dir,
                       {"label_names": labels})
    sink.consume(batch)
    sink.finish()
    index = json.loads((run_dir / INDEX_JSON).read_text())
    first, second = index["images"]
    names = [f"{SALIENCY_DIR}/image_0_box_0_sq_saliency_map.png",
             f"{SALIENCY_DIR}/image_0_box_1_red_circle_2_saliency_map.png"]
    assert [d["files"] for d in first["detections"]] == [names[:1], names[1:]]
    assert [d["box_index"] for d in first["detections"]] == [0, 1] and set(names) <= set(first["files"])
    for k, name in enumerate(names):
        assert np.array_equal(read_png(run_dir / name), box_maps[0, k])
    assert second["detections"] == [] and not any("_box_" in name for name in second["files"])
    assert_no_temp_files(run_dir)

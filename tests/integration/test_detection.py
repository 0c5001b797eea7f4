"""Single-stage detection end to end: COCO data, training, explain == predict, the IR and its maps."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import openvino as ov
import pytest
import torch
from torchvision.ops import batched_nms

from otx_xai import Engine, ExplainConfig, TargetExplainGroup
from otx_xai.data.coco import rasterize_polygons, read_coco_records
from otx_xai.data.datamodule import DataConfig
from otx_xai.data.dataset import FailedImage
from otx_xai.data.detection_dataset import DetectionDataset, collate_detection
from otx_xai.data.records import DatasetError
from otx_xai.data.shapes import SHAPE_CLASSES, make_classification_shapes, make_coco_shapes
from otx_xai.explain.detection_entity import to_original_pixels
from otx_xai.explain.entity import ImageInfo
from otx_xai.models.det_postprocess import select_detections
from otx_xai.models.detection import SingleStageDetector

RECIPES = Path(__file__).resolve().parents[2] / "recipes" / "detection"
INPUT = (128, 128)
IR_OUTPUTS = ["bboxes", "labels", "feature_vector", "saliency_map", "feature_map", "box_saliency_map"]
LOW = ExplainConfig(target_explain_group=TargetExplainGroup.PREDICTIONS, predicted_maps_conf_thr=0.01)


@pytest.fixture(scope="module")
def coco_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("coco") / "shapes"
    return make_coco_shapes(root, {"train": 12, "val": 4, "test": 4}, image_size=112, seed=0)


@pytest.fixture(scope="module")
def engine(coco_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Engine:
    """fcos_light trained two epochs at 128 px (score threshold lowered: a few epochs score low)."""
    engine = Engine(model=RECIPES / "fcos_light.yaml", data_root=coco_root,
                    work_dir=tmp_path_factory.mktemp("ws"))
    engine.recipe.data.input_size = INPUT
    engine.recipe.data.batch_size = 4
    engine.recipe.model.init_args["score_thresh"] = 0.01
    metrics = engine.train(max_epochs=2)
    assert "val/accuracy" in metrics and Path(engine.checkpoint).is_file()
    return engine


# --- data ------------------------------------------------------------------------------------------
def test_coco_records_boxes_labels_polygons(coco_root: Path) -> None:
    records = read_coco_records(coco_root)
    assert records.label_names == list(SHAPE_CLASSES)
    assert {s: len(r) for s, r in records.subsets.items()} == {"train": 12, "val": 4, "test": 4}
    document = json.loads((coco_root / "annotations" / "instances_test.json").read_text())
    first = records.subsets["test"][0]
    assert first.image_id == "test_0000" and first.path.endswith("images/test/test_0000.png")
    annotations = [a for a in document["annotations"] if a["image_id"] == 1]
    expected = sorted((a["category_id"] - 1, a["bbox"][0], a["bbox"][1]) for a in annotations)
    got = sorted((label, box[0], box[1]) for label, box in zip(first.labels, first.boxes, strict=True))
    np.testing.assert_allclose([g[1:] for g in got], [e[1:] for e in expected], atol=0.01)  # float32
    assert [g[0] for g in got] == [e[0] for e in expected]
    height, width = document["images"][0]["height"], document["images"][0]["width"]
    masks = rasterize_polygons(first, height, width)
    assert masks.shape == (len(first.boxes), height, width) and masks.dtype == bool
    for mask, box in zip(masks, first.boxes, strict=True):
        ys, xs = np.nonzero(mask)
        assert abs(xs.min() - box[0]) <= 1.5 and abs(ys.max() - box[3]) <= 1.5


@pytest.mark.parametrize("letterbox", [False, True])
def test_targets_in_input_pixels_infos_in_original(coco_root: Path, letterbox: bool) -> None:
    record = read_coco_records(coco_root).subsets["test"][0]
    sample = DetectionDataset([record], DataConfig(input_size=INPUT, letterbox=letterbox).preprocess())[0]
    info = sample["info"]
    assert info.gt_boxes == record.boxes and info.gt_labels == record.labels
    back = to_original_pixels(sample["target"]["boxes"].numpy(), info)
    np.testing.assert_allclose(back, np.asarray(record.boxes), atol=0.05)
    assert sample["target"]["labels"].tolist() == record.labels


def test_unreadable_image_is_a_failure_not_a_crash(coco_root: Path, tmp_path: Path) -> None:
    good = read_coco_records(coco_root).subsets["test"][0]
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    bad = type(good)(str(broken), "broken", [0], [[1.0, 1.0, 5.0, 5.0]])
    batch = collate_detection(list(DetectionDataset([good, bad], DataConfig(input_size=INPUT).preprocess())))
    assert len(batch["infos"]) == 1 and len(batch["targets"]) == 1
    assert isinstance(batch["failed"][0], FailedImage) and batch["failed"][0].image_id == "broken"


def test_classification_folder_is_a_one_line_error(tmp_path: Path) -> None:
    folder = make_classification_shapes(tmp_path / "cls", images_per_class=2, image_size=32)
    engine = Engine(model=RECIPES / "fcos_light.yaml", data_root=folder, work_dir=tmp_path / "ws")
    with pytest.raises(DatasetError) as error:
        engine.train(max_epochs=1)
    message = str(error.value)
    assert "\n" not in message and "instances_<subset>.json" in message and "classification" in message


def test_coco_without_boxes_is_a_one_line_error(coco_root: Path, tmp_path: Path) -> None:
    root = tmp_path / "nobox"
    (root / "annotations").mkdir(parents=True)
    (root / "images").symlink_to(coco_root / "images")
    document = json.loads((coco_root / "annotations" / "instances_train.json").read_text())
    for annotation in document["annotations"]:
        annotation["bbox"] = []
    (root / "annotations" / "instances_train.json").write_text(json.dumps(document))
    with pytest.raises(DatasetError) as error:
        read_coco_records(root)
    assert "\n" not in str(error.value) and "no bounding boxes" in str(error.value)


# --- post-processing -----------------------------------------------------------------------------
def test_select_detections_is_greedy_nms() -> None:
    """Enough Cluster-NMS iterations give exactly torchvision's greedy batched NMS, per image."""
    generator = torch.Generator().manual_seed(0)
    corners = torch.rand(2, 60, 2, generator=generator) * 80
    boxes = torch.cat([corners, corners + 10 + torch.rand(2, 60, 2, generator=generator) * 30], dim=-1)
    scores = torch.rand(2, 60, 3, generator=generator)
    bboxes, labels = select_detections(boxes, scores, 0.3, 0.5, 50, pre_nms_top_k=180, nms_iterations=180)
    assert bboxes.shape == (2, 50, 5) and labels.shape == (2, 50) and labels.dtype == torch.int64
    for image in range(2):
        flat = scores[image].flatten()
        keep = flat > 0.3
        candidate_boxes = boxes[image].repeat_interleave(3, dim=0)[keep]
        candidate_labels = torch.arange(3).repeat(60)[keep]
        kept = batched_nms(candidate_boxes, flat[keep], candidate_labels, 0.5)[:50]
        count = len(kept)
        assert torch.allclose(bboxes[image, :count, 4], flat[keep][kept])
        assert torch.equal(labels[image, :count], candidate_labels[kept])
        assert torch.allclose(bboxes[image, :count, :4], candidate_boxes[kept])
        assert (labels[image, count:] == -1).all() and (bboxes[image, count:] == 0).all()


def test_boxes_back_to_original_pixels_undo_letterbox() -> None:
    info = ImageInfo("x", "", original_size=(100, 200), valid_size=(64, 128), input_size=(128, 128))
    np.testing.assert_allclose(to_original_pixels(np.array([[0, 0, 128, 64], [64, 32, 200, 200]]), info),
                               [[0, 0, 200, 100], [100, 50, 200, 100]])


# --- the torchvision families, untrained ----------------------------------------------------------
@pytest.mark.parametrize("architecture", ["ssdlite320_mobilenet_v3_large", "retinanet_resnet50_fpn",
                                          "fcos_resnet50_fpn"])
def test_family_forward_explain(architecture: str) -> None:
    torch.manual_seed(0)
    model = SingleStageDetector(list(SHAPE_CLASSES), architecture=architecture, score_thresh=0.0,
                                detections_per_img=20).eval()
    images = torch.randn(2, 3, *INPUT)
    with torch.no_grad():
        out = model.forward_explain(images)
        plain = model(images)
    assert out["bboxes"].shape == (2, 20, 5) and out["bboxes"].dtype == torch.float32
    assert out["labels"].shape == (2, 20) and out["labels"].dtype == torch.int64
    assert ((out["labels"] >= 0) & (out["labels"] < 3)).all()  # score 0 passes: every row is a detection
    assert (out["bboxes"][..., :4] >= 0).all() and (out["bboxes"][..., :4] <= INPUT[0]).all()
    saliency, feature_map = out["saliency_map"], out["feature_map"]
    assert saliency.dtype == torch.uint8 and saliency.shape[:2] == (2, 3)  # SSD's background dropped
    assert saliency.shape[2:] == feature_map.shape[2:] and feature_map.dtype == torch.float32
    box_maps = out["box_saliency_map"]  # one per detection row, on the class maps' grid
    assert box_maps.dtype == torch.uint8 and box_maps.shape == (2, 20, *saliency.shape[2:])
    channels = sum(f.shape[1] for f in model.detector(images).features)
    assert out["feature_vector"].shape == (2, channels)
    assert torch.equal(out["bboxes"], plain["bboxes"]) and torch.equal(out["labels"], plain["labels"])


# --- trained: explain, predict, export, the IR -----------------------------------------------------
def test_explain_all_and_predictions(engine: Engine) -> None:
    every = engine.explain()
    assert len(every) == 4
    for result in every:
        assert sorted(result.saliency_map) == [0, 1, 2]
        assert all(m.dtype == np.uint8 and m.shape == (INPUT[0] // 16, INPUT[1] // 16)
                   for m in result.saliency_map.values())
        assert result.feature_vector.shape == (64 * 3,) and result.feature_vector.dtype == np.float32
        assert result.scores.shape == (3,)
    predicted = engine.explain(explain_config=LOW)
    assert any(r.saliency_map for r in predicted)
    for result, full in zip(predicted, every, strict=True):
        assert sorted(result.saliency_map) == result.predicted
        assert result.predicted == [k for k in range(3) if result.scores[k] > 0.01]
        for key, saliency in result.saliency_map.items():
            assert np.array_equal(saliency, full.saliency_map[key])


def test_image_group_dumped_and_postprocessed(engine: Engine) -> None:
    config = ExplainConfig(target_explain_group=TargetExplainGroup.IMAGE, postprocess=True)
    results = engine.explain(explain_config=config, dump=True)
    for result in results:
        (saliency,) = result.saliency_map.values()
        assert saliency.shape == (*result.info.original_size, 3) and saliency.dtype == np.uint8
        assert all((engine.last_explain_dir / name).is_file() for name in result.files)


def test_explain_equals_predict(engine: Engine) -> None:
    predictions = engine.predict()
    explained = engine.explain(explain_config=LOW)
    boxes = [b for batch in predictions for b in batch.boxes]
    scores = np.concatenate([batch.scores for batch in predictions])
    assert len(boxes) == len(explained) == 4
    assert any(len(b) for b in boxes)
    np.testing.assert_array_equal(scores, np.stack([r.scores for r in explained]))
    for batch in predictions:
        for info, image_boxes in zip(batch.infos, batch.boxes, strict=True):
            assert (image_boxes[:, 2] <= info.original_size[1]).all()
            assert (image_boxes[:, 3] <= info.original_size[0]).all()
    model = engine.model.eval()
    images = next(iter(engine.datamodule.predict_dataloader()))["images"]
    with torch.no_grad():
        plain, full = model(images), model.forward_explain(images)
    assert torch.equal(plain["bboxes"], full["bboxes"]) and torch.equal(plain["labels"], full["labels"])


def test_ir_outputs_and_maps_match_the_checkpoint(engine: Engine) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        xml = engine.export(explain=True)
    checkpoint = engine.checkpoint
    assert [o.get_any_name() for o in ov.Core().read_model(xml).outputs] == IR_OUTPUTS
    from_checkpoint = engine.explain()
    from_ir = engine.explain(checkpoint=xml)
    engine.explain(checkpoint=checkpoint)  # back to the checkpoint for any later test
    assert len(from_ir) == len(from_checkpoint) == 4
    for ir, ckpt in zip(from_ir, from_checkpoint, strict=True):
        assert ir.info.image_id == ckpt.info.image_id and sorted(ir.saliency_map) == [0, 1, 2]
        for key, saliency in ckpt.saliency_map.items():
            assert saliency.shape == ir.saliency_map[key].shape
            assert np.abs(saliency.astype(int) - ir.saliency_map[key].astype(int)).mean() <= 2
        np.testing.assert_allclose(ir.scores, ckpt.scores, atol=1e-3)
        np.testing.assert_allclose(ir.feature_vector, ckpt.feature_vector, rtol=1e-3, atol=1e-3)


def test_index_lists_the_detections_above_the_threshold(engine: Engine) -> None:
    results = engine.explain(explain_config=LOW, dump=True)
    index = json.loads((engine.last_explain_dir / "explain_index.json").read_text())
    by_id = {entry["image_id"]: entry for entry in index["images"]}
    for result in results:
        detections = by_id[result.info.image_id]["detections"]
        assert all(d["score"] > LOW.predicted_maps_conf_thr for d in detections)
        assert sorted({d["index"] for d in detections}) == result.predicted
        assert all(len(d["box"]) == 4 for d in detections)

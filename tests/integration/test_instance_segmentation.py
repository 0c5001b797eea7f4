"""Instance segmentation end to end: COCO polygons → masks, Mask R-CNN training, explain, the IR."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import openvino as ov
import pytest
import torch

from otx_xai import Engine
from otx_xai.data.datamodule import DataConfig
from otx_xai.data.instance_seg_data import InstanceSegDataModule, flip_sample
from otx_xai.data.records import DatasetError
from otx_xai.data.shapes import SHAPE_CLASSES, make_coco_shapes
from otx_xai.models.instance_segmentation import MaskRCNN
from otx_xai.openvino.export import export_ir
from otx_xai.openvino.inference import IRModel

RECIPES = Path(__file__).resolve().parents[2] / "recipes" / "instance_segmentation"
INPUT = (96, 96)
LABELS = [*SHAPE_CLASSES, "hexagon"]  # a category with no object at all
IR_OUTPUTS = ["bboxes", "labels", "masks", "feature_vector", "saliency_map", "feature_map"]


@pytest.fixture(scope="module")
def coco_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = make_coco_shapes(tmp_path_factory.mktemp("coco") / "shapes", {"train": 16, "val": 4, "test": 4},
                            image_size=96, seed=0)
    for path in (root / "annotations").glob("*.json"):
        document = json.loads(path.read_text())
        document["categories"].append({"id": 4, "name": "hexagon", "supercategory": ""})
        path.write_text(json.dumps(document))
    return root


@pytest.fixture(scope="module")
def engine(coco_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Engine:
    """maskrcnn_light trained two epochs at 96 px."""
    engine = Engine(model=RECIPES / "maskrcnn_light.yaml", data_root=coco_root,
                    work_dir=tmp_path_factory.mktemp("ws"))
    engine.recipe.data.input_size = INPUT
    engine.recipe.data.batch_size = 4
    metrics = engine.train(max_epochs=2)
    assert "val/accuracy" in metrics and Path(engine.checkpoint).is_file()
    return engine


def _mask_box(mask: np.ndarray) -> list[int]:
    ys, xs = np.nonzero(mask)
    return [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]


# --- data ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("letterbox", [False, True])
def test_target_masks_match_boxes_in_input_pixels(coco_root: Path, letterbox: bool) -> None:
    module = InstanceSegDataModule(str(coco_root), DataConfig(input_size=INPUT, letterbox=letterbox))
    assert module.label_names == LABELS
    sample = module.test_dataloader().dataset[0]
    target = sample["target"]
    assert target["masks"].dtype == torch.uint8 and target["masks"].shape == (len(target["boxes"]), *INPUT)
    for mask, box in zip(target["masks"].numpy(), target["boxes"].numpy(), strict=True):
        np.testing.assert_allclose(_mask_box(mask), box, atol=1.5)
    flipped = flip_sample(sample)["target"]
    for mask, box in zip(flipped["masks"].numpy(), flipped["boxes"].numpy(), strict=True):
        np.testing.assert_allclose(_mask_box(mask), box, atol=1.5)


def test_boxes_without_polygons_is_a_one_line_error(coco_root: Path, tmp_path: Path) -> None:
    root = tmp_path / "boxes_only"
    (root / "annotations").mkdir(parents=True)
    (root / "images").symlink_to(coco_root / "images")
    for path in (coco_root / "annotations").glob("*.json"):
        document = json.loads(path.read_text())
        for annotation in document["annotations"]:
            del annotation["segmentation"]
        (root / "annotations" / path.name).write_text(json.dumps(document))
    engine = Engine(model=RECIPES / "maskrcnn_light.yaml", data_root=root, work_dir=tmp_path / "ws")
    with pytest.raises(DatasetError) as error:
        engine.train(max_epochs=1)
    message = str(error.value)
    assert "\n" not in message and "polygon" in message


# --- untrained -----------------------------------------------------------------------------------
@pytest.mark.parametrize("architecture", ["maskrcnn_light", "maskrcnn_resnet50_fpn"])
def test_forward_explain_shapes(architecture: str) -> None:
    torch.manual_seed(0)
    model = MaskRCNN(LABELS, architecture=architecture, score_thresh=0.0, detections_per_img=8).eval()
    images = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        out, plain = model.forward_explain(images), model(images)
    assert list(out) == IR_OUTPUTS and list(plain) == IR_OUTPUTS[:3]
    assert out["bboxes"].shape == (2, 8, 5) and out["labels"].shape == (2, 8)
    assert out["labels"].dtype == torch.int64 and out["masks"].shape == (2, 8, 64, 64)
    assert out["saliency_map"].dtype == torch.uint8 and out["saliency_map"].shape == (2, 4, 4, 4)
    assert out["feature_map"].shape[2:] == (4, 4)
    assert out["feature_vector"].shape == (2, 5 * model.net.backbone.out_channels)
    for name in plain:
        assert torch.equal(plain[name], out[name])


def test_ir_of_an_image_with_no_detection_is_padding_and_zero_maps(tmp_path: Path) -> None:
    """Nothing above the score threshold: NMS over no candidate, in torch and in the IR."""
    torch.manual_seed(0)
    model = MaskRCNN(LABELS, score_thresh=0.999, detections_per_img=8).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        xml = export_ir(model, DataConfig(input_size=(64, 64)), tmp_path, explain=True)
    images = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected = model.forward_explain(images)
    outputs = IRModel(xml).infer(images.numpy())
    assert (expected["labels"] == -1).all() and (outputs["labels"] == -1).all()
    for name in ("bboxes", "masks", "saliency_map"):
        assert not expected[name].any() and not outputs[name].any()


# --- trained: explain, predict, export, the IR -----------------------------------------------------
def test_explain_maps_and_absent_classes(engine: Engine) -> None:
    results = engine.explain()
    assert len(results) == 4
    for result in results:
        assert sorted(result.saliency_map) == [0, 1, 2, 3]
        assert all(m.dtype == np.uint8 and m.shape == (INPUT[0] // 16, INPUT[1] // 16)
                   for m in result.saliency_map.values())
        assert result.feature_vector.shape == (5 * 64,) and result.scores.shape == (4,)
        for label in range(4):  # a class with no detection has an all-zero map
            if result.scores[label] == 0:
                assert (result.saliency_map[label] == 0).all()
    model = engine.model.eval()
    images = next(iter(engine.datamodule.predict_dataloader()))["images"]
    with torch.no_grad():
        out = model.forward_explain(images)
    present = torch.zeros(len(images), 4, dtype=torch.bool)
    for image in range(len(images)):
        present[image, out["labels"][image][out["bboxes"][image, :, 4] > 0]] = True
    assert present.any() and not present.all()  # trained enough to detect, never the empty category
    assert (out["saliency_map"][~present] == 0).all()
    assert (out["saliency_map"][present].flatten(1).amax(dim=1) > 0).all()


def test_explain_equals_predict(engine: Engine) -> None:
    predictions = engine.predict()
    explained = engine.explain()
    assert sum(len(batch) for batch in predictions) == len(explained) == 4
    scores = np.concatenate([batch.scores for batch in predictions])
    np.testing.assert_array_equal(scores, np.stack([r.scores for r in explained]))
    assert any(len(boxes) for batch in predictions for boxes in batch.boxes)
    for batch in predictions:
        for info, boxes, masks in zip(batch.infos, batch.boxes, batch.masks, strict=True):
            assert masks.shape == (len(boxes), *info.original_size) and masks.dtype == bool
            assert (boxes[:, 2] <= info.original_size[1]).all() and (boxes[:, 3] <= info.original_size[0]).all()
    model = engine.model.eval()
    images = next(iter(engine.datamodule.predict_dataloader()))["images"]
    with torch.no_grad():
        plain, full = model(images), model.forward_explain(images)
    for name in plain:
        assert torch.equal(plain[name], full[name])


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
        assert ir.info.image_id == ckpt.info.image_id and sorted(ir.saliency_map) == [0, 1, 2, 3]
        difference = np.abs(ir.raw_saliency_map.astype(int) - ckpt.raw_saliency_map.astype(int))
        assert difference.mean() <= 2
        np.testing.assert_allclose(ir.scores, ckpt.scores, atol=1e-3)
        np.testing.assert_allclose(ir.feature_vector, ckpt.feature_vector, rtol=1e-3, atol=1e-3)
    ir_model = IRModel(xml)  # a dynamic batch: one image at a time gives the batch's outputs
    images = next(iter(engine.datamodule.predict_dataloader()))["images"].numpy()
    whole = ir_model.infer(images)
    for index in range(len(images)):
        single = ir_model.infer(images[index : index + 1])
        for name in IR_OUTPUTS:
            np.testing.assert_allclose(single[name][0], whole[name][index], atol=1e-4)

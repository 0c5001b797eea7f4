"""The synthetic shapes generator, dataset layouts and splits, ids, preprocessing and unreadable images."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from otx_xai.data.classification_records import read_classification_records
from otx_xai.data.datamodule import ClassificationDataModule, DataConfig
from otx_xai.data.dataset import FailedImage, ImageDataset, collate
from otx_xai.data.records import SUBSETS, DatasetError, sanitize_id
from otx_xai.data.shapes import SHAPE_CLASSES, make_classification_shapes
from otx_xai.data.transforms import Preprocess


def write_png(path: Path, size: tuple[int, int] = (20, 30), value: int = 90) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((*size, 3), value, dtype=np.uint8))
    return path


def all_records(records) -> list:
    return [r for subset in records.subsets.values() for r in subset]


# ------------------------------------------------------------------------------ shapes generator


@pytest.fixture(scope="module")
def small_shapes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_classification_shapes(tmp_path_factory.mktemp("shapes"), images_per_class=5, image_size=48, seed=3)


def test_shapes_folders_labels_and_boxes(small_shapes: Path) -> None:
    boxes = json.loads((small_shapes / "boxes.json").read_text())
    files = sorted(p.relative_to(small_shapes).as_posix() for p in small_shapes.rglob("*.png"))
    assert sorted(boxes) == files and len(files) == 5 * len(SHAPE_CLASSES)
    assert sorted(p.name for p in small_shapes.iterdir() if p.is_dir()) == sorted(SHAPE_CLASSES)
    for relative, entry in boxes.items():
        assert relative.split("/")[0] == entry["label"]
        image = cv2.imread(str(small_shapes / relative))
        height, width = image.shape[:2]
        x1, y1, x2, y2 = entry["box"]
        assert 0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height, (relative, entry["box"], image.shape)
        assert (x2 - x1) * (y2 - y1) >= 0.02 * height * width, "the object is visible"


HUES = {"circle": 0, "square": 60, "triangle": 120}  # OpenCV hue of each class: red, green, blue


def test_shapes_object_sits_at_its_box_in_its_class_colour(small_shapes: Path) -> None:
    """The centre of each box shows the object (not the grey-ish noise), in the hue of its class."""
    boxes = json.loads((small_shapes / "boxes.json").read_text())
    for relative, entry in boxes.items():
        hsv = cv2.cvtColor(cv2.imread(str(small_shapes / relative)), cv2.COLOR_BGR2HSV).astype(int)
        x1, y1, x2, y2 = entry["box"]
        hue, saturation, _ = hsv[round((y1 + y2) / 2), round((x1 + x2) / 2)]
        distance = min(abs(hue - HUES[entry["label"]]), 180 - abs(hue - HUES[entry["label"]]))
        assert saturation >= 150 and distance <= 12, (relative, hue, saturation)


def test_shapes_are_deterministic(tmp_path: Path) -> None:
    first = make_classification_shapes(tmp_path / "a", 2, 32, seed=7)
    second = make_classification_shapes(tmp_path / "b", 2, 32, seed=7)
    assert (first / "boxes.json").read_text() == (second / "boxes.json").read_text()
    for path in first.rglob("*.png"):
        assert path.read_bytes() == (second / path.relative_to(first)).read_bytes()


# ------------------------------------------------------------------------------ layouts and splits


def test_imagenet_folders_are_split_by_a_fixed_seed(small_shapes: Path) -> None:
    records = read_classification_records(small_shapes, seed=0)
    assert records.labelled and records.label_names == sorted(SHAPE_CLASSES)
    ids = {subset: [r.image_id for r in recs] for subset, recs in records.subsets.items()}
    assert set(ids) == set(SUBSETS) and all(ids.values())
    flat = [i for subset in ids.values() for i in subset]
    assert len(flat) == len(set(flat)) == 15, "subsets are disjoint and cover every image"
    for record in all_records(records):
        assert record.labels == [records.label_names.index(Path(record.path).parent.name)]
        assert len(record.boxes) == 1
    again = read_classification_records(small_shapes, seed=0)
    assert {s: [r.image_id for r in v] for s, v in again.subsets.items()} == ids
    other = read_classification_records(small_shapes, seed=1)
    assert {s: [r.image_id for r in v] for s, v in other.subsets.items()} != ids


def test_subset_folders_are_used_as_given(tmp_path: Path) -> None:
    layout = {"train": {"cat": 3, "dog": 2}, "val": {"cat": 1, "dog": 1}, "test": {"dog": 2}}
    for subset, classes in layout.items():
        for label, count in classes.items():
            for number in range(count):
                write_png(tmp_path / subset / label / f"{label}{number}.png")
    records = read_classification_records(tmp_path)
    assert records.label_names == ["cat", "dog"]
    for subset, classes in layout.items():
        got = records.subsets[subset]
        assert len(got) == sum(classes.values())
        assert all(Path(r.path).parts[-3] == subset for r in got)
        assert all(r.labels == [records.label_names.index(Path(r.path).parent.name)] for r in got)
    assert records.subsets["test"][0].image_id.startswith("test_dog_")


def test_plain_folder_is_unlabelled_and_all_test(tmp_path: Path) -> None:
    for name in ("one.png", "two.jpg"):
        write_png(tmp_path / name)
    records = read_classification_records(tmp_path)
    assert not records.labelled and records.label_names == []
    assert list(records.subsets) == ["test"]
    assert sorted(r.image_id for r in records.subsets["test"]) == ["one", "two"]
    assert all(r.labels == [] for r in records.subsets["test"])


def test_colliding_names_get_unique_sanitized_ids(tmp_path: Path) -> None:
    names = ["a b.png", "a_b.png", "a-b.jpg", "a_b_2.png", "é.png", "(1).png"]
    for name in names:
        write_png(tmp_path / name)
    ids = [r.image_id for r in read_classification_records(tmp_path).subsets["test"]]
    assert len(ids) == len(names) == len(set(ids)), ids
    assert all(i and all(c.isascii() and (c.isalnum() or c == "_") for c in i) for i in ids), ids
    assert {"a_b", "a_b_2"} <= set(ids)


def test_colliding_names_in_class_folders(tmp_path: Path) -> None:
    for label in ("cat", "dog"):
        for name in ("a b.png", "a_b.png", "x.png", "y.png"):
            write_png(tmp_path / label / name)
    ids = [r.image_id for r in all_records(read_classification_records(tmp_path))]
    assert len(ids) == len(set(ids)) == 8


@pytest.mark.parametrize(("text", "expected"),
                         [("a b", "a_b"), ("cat/x.y", "cat_x_y"), ("_ok_", "ok"), ("??", "image")])
def test_sanitize_id(text: str, expected: str) -> None:
    assert sanitize_id(text) == expected


@pytest.mark.parametrize("make", ["empty", "missing", "file"])
def test_unusable_data_root_is_a_one_line_error(tmp_path: Path, make: str) -> None:
    root = tmp_path / "data"
    if make == "empty":
        root.mkdir()
    elif make == "file":
        root.write_text("x")
    with pytest.raises(DatasetError) as error:
        read_classification_records(root)
    assert str(root) in str(error.value) and "\n" not in str(error.value)


# ------------------------------------------------------------------------------ preprocessing and loading


def test_preprocess_resize_normalizes_with_mean_and_std() -> None:
    image = np.random.default_rng(0).integers(0, 256, size=(30, 50, 3), dtype=np.uint8)
    preprocess = Preprocess((16, 24), mean=[10.0, 20.0, 30.0], std=[2.0, 4.0, 8.0])
    tensor, valid = preprocess(image)
    resized = cv2.resize(image, (24, 16), interpolation=cv2.INTER_LINEAR).astype(np.float32)
    expected = ((resized - [10.0, 20.0, 30.0]) / [2.0, 4.0, 8.0]).transpose(2, 0, 1)
    assert tensor.shape == (3, 16, 24) and tensor.dtype == torch.float32 and valid == (16, 24)
    np.testing.assert_allclose(tensor.numpy(), expected, rtol=1e-6, atol=1e-5)


def test_letterbox_keeps_aspect_and_pads_bottom_right() -> None:
    image = np.full((30, 60, 3), 200, dtype=np.uint8)
    resized, valid = Preprocess((64, 64), letterbox=True).resize(image)
    assert valid == (32, 64) and resized.shape == (64, 64, 3)
    assert (resized[:32] == 200).all() and (resized[32:] == 0).all()


def test_unreadable_images_become_failures_not_crashes(tmp_path: Path) -> None:
    good = write_png(tmp_path / "good.png")
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    text = tmp_path / "text.jpg"
    text.write_text("not an image")
    records = read_classification_records(tmp_path).subsets["test"]
    dataset = ImageDataset(records, Preprocess((32, 32)), num_classes=0)
    samples = [dataset[i] for i in range(len(dataset))]
    failures = {s.image_id: s for s in samples if isinstance(s, FailedImage)}
    assert set(failures) == {"empty", "text"}
    assert str(empty) in failures["empty"].error and str(text) in failures["text"].error
    batch = collate(samples)
    assert batch["images"].shape == (1, 3, 32, 32) and [i.image_id for i in batch["infos"]] == ["good"]
    assert batch["infos"][0].source_path == str(good) and batch["infos"][0].original_size == (20, 30)
    assert len(batch["failed"]) == 2
    assert collate([failures["empty"]])["infos"] == []


def test_datamodule_loaders_carry_image_infos(small_shapes: Path) -> None:
    config = DataConfig(input_size=(64, 64), letterbox=True, batch_size=4)
    module = ClassificationDataModule(str(small_shapes), config)
    batch = next(iter(module.predict_dataloader()))
    assert batch["images"].shape[1:] == (3, 64, 64)
    for info in batch["infos"]:
        height, width = info.original_size
        scale = min(64 / height, 64 / width)
        assert info.valid_size == (round(height * scale), round(width * scale))
        assert info.input_size == (64, 64) and len(info.gt_boxes) == 1


def test_labels_required_for_training(tmp_path: Path) -> None:
    write_png(tmp_path / "one.png")
    module = ClassificationDataModule(str(tmp_path), DataConfig())
    with pytest.raises(DatasetError, match="unlabelled"):
        module.train_dataloader()
    assert len(module.predict_dataloader().dataset) == 1


def test_copy_of_class_folders_keeps_labels(small_shapes: Path, tmp_path: Path) -> None:
    """Fewer classes in a copy: label indices follow the copy's own label list."""
    for label in ("circle", "triangle"):
        shutil.copytree(small_shapes / label, tmp_path / label)
    records = read_classification_records(tmp_path)
    assert records.label_names == ["circle", "triangle"]
    assert {tuple(r.labels) for r in all_records(records)} == {(0,), (1,)}

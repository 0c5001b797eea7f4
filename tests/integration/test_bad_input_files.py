"""Real folders, broken files and odd models from the real CLI (issue 22's table, one test per row):
every run ends with its index, CSV and gallery or with a one-line error naming the file, never a traceback."""

from __future__ import annotations

import csv
import json
import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import openvino as ov
import PIL.Image
import pytest
import torch

from conftest import TrainedRun, assert_clean_failure, copy_images, read_index
from otx_xai.cli import main
from otx_xai.data.classification_records import read_classification_records

IR_FLAGS = ["--ir.mean", "123.675,116.28,103.53", "--ir.std", "58.395,57.12,57.375", "--ir.input_size", "64,64"]


def _explain(args: list, capfd: pytest.CaptureFixture) -> tuple[int, str]:
    code = main(["explain", *(str(a) for a in args)])
    return code, capfd.readouterr().err


def _checkpoint_args(run: TrainedRun, data_root: Path, work_dir: Path) -> list:
    return ["--config", run.recipe, "--checkpoint", run.checkpoint, "--data_root", data_root, "--work_dir", work_dir]


@pytest.fixture(scope="module")
def odd_folder(tmp_path_factory: pytest.TempPathFactory, shapes_root: Path) -> Path:
    """A plain folder as a user has it: two files with one stem, a GIF, a non-UTF-8 name, a symlink loop, a
    text file and a file of random bytes, beside two ordinary images."""
    root = tmp_path_factory.mktemp("odd")
    first, second = sorted(shapes_root.rglob("*.png"))[:2]
    shutil.copy(first, root / "rocket.png")
    cv2.imwrite(str(root / "rocket.jpg"), cv2.imread(str(second)))
    PIL.Image.open(first).save(root / "anim.gif")
    shutil.copy(first, os.fsdecode(bytes(root) + b"/caf\xe9.png"))  # Latin-1 bytes: not UTF-8
    os.symlink("loop.jpg", root / "loop.jpg")
    (root / "notes.txt").write_text("not an image\n")
    (root / "noise.png").write_bytes(np.random.default_rng(0).integers(0, 256, 500, dtype=np.uint8).tobytes())
    return root


def test_a_real_folder_ends_with_index_csv_and_gallery(trained_run: TrainedRun, odd_folder: Path, tmp_path: Path,
                                                       capfd: pytest.CaptureFixture) -> None:
    """Colliding ids get _2, a GIF is explained, a non-UTF-8 name, a symlink loop and non-images are skipped
    with their reason: every file is listed once, and the CSV and gallery are written."""
    code, stderr = _explain([*_checkpoint_args(trained_run, odd_folder, tmp_path / "ws"), "--dump", "True"], capfd)
    assert code == 0 and "Traceback" not in stderr, stderr
    run_dir = (tmp_path / "ws" / ".latest" / "explain").resolve()
    index = read_index(run_dir)
    by_name = {Path(entry["source_path"]).name: entry for entry in index["images"]}
    assert sorted(by_name) == sorted(["rocket.png", "rocket.jpg", "anim.gif", "caf\\xe9.png", "loop.jpg",
                                      "notes.txt", "noise.png"])
    assert len(index["images"]) == len(os.listdir(odd_folder))  # every file once
    assert (by_name["rocket.jpg"]["image_id"], by_name["rocket.png"]["image_id"]) == ("rocket", "rocket_2")
    for name in ("rocket.png", "rocket.jpg", "anim.gif"):
        assert by_name[name]["error"] is None and by_name[name]["files"], by_name[name]
    assert "not valid UTF-8" in by_name["caf\\xe9.png"]["error"]
    assert "symbolic links" in by_name["loop.jpg"]["error"]
    assert all("not a decodable image" in by_name[name]["error"] for name in ("notes.txt", "noise.png"))
    with open(run_dir / "explain_index.csv", encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert sorted(row["image_id"] for row in rows) == sorted(entry["image_id"] for entry in index["images"])
    gallery = (run_dir / "gallery.html").read_text(encoding="utf-8")
    assert all(f'data-image-id="{entry["image_id"]}"' in gallery for entry in index["images"])


@pytest.mark.parametrize("case", ["no_bin", "truncated_bin", "bin_too_long", "not_an_ir", "broken_onnx"])
def test_a_broken_or_mismatched_model_file_is_one_line_naming_it(explain_ir: Path, trained_run: TrainedRun,
                                                                 tmp_path: Path, capfd: pytest.CaptureFixture,
                                                                 case: str) -> None:
    weights = explain_ir.with_suffix(".bin").read_bytes()
    xml = tmp_path / f"{case}.xml"
    shutil.copy(explain_ir, xml)
    named, words = xml.with_suffix(".bin"), ()
    if case == "no_bin":
        named, words = xml, ("no no_bin.bin beside it",)
    elif case == "truncated_bin":
        xml.with_suffix(".bin").write_bytes(weights[: len(weights) // 2])
        words = ("truncated", str(len(weights)))
    elif case == "bin_too_long":
        xml.with_suffix(".bin").write_bytes(weights * 2)
        words = ("belongs to another export", str(len(weights)))
    elif case == "not_an_ir":
        xml.write_text('<?xml version="1.0"?>\n<config><entry key="a"/></config>\n')
        named, words = xml, ("not an OpenVINO IR", "<config>")
    else:
        named = tmp_path / "model.onnx"
        named.write_bytes(b"\x08\x07garbage that is not a protobuf")
        xml, words = named, ("not a complete, valid ONNX file",)
    code, stderr = _explain(["--checkpoint", xml, "--data_root", trained_run.data_root, "--work_dir",
                             tmp_path / "ws"], capfd)
    assert_clean_failure(code, stderr, str(named), *words)
    assert code == 1 and "GraphDef" not in stderr and stderr.count("\n") == 1, stderr  # no OpenVINO/absl noise


def _tiny_classifier(classes: int, zero_head: bool = False) -> torch.nn.Module:
    """A small real CNN ending in global average pooling and a linear head (ONNX: GlobalAveragePool)."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, stride=2, padding=1), torch.nn.ReLU(),
        torch.nn.Conv2d(8, 16, 3, stride=2, padding=1), torch.nn.ReLU(),
        torch.nn.Conv2d(16, 32, 3, stride=2, padding=1), torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(32, classes)).eval()
    if zero_head:  # logits independent of the image: a degenerate model whose maps are constant
        torch.nn.init.zeros_(model[-1].weight)
    return model


def test_an_onnx_file_explains_as_an_ir_otx_xai_did_not_write(trained_run: TrainedRun, tmp_path: Path,
                                                               capfd: pytest.CaptureFixture) -> None:
    """--checkpoint model.onnx gives the same Recipro-CAM maps as the IR of the same weights."""
    model = _tiny_classifier(3)
    onnx_path, xml = tmp_path / "model.onnx", tmp_path / "converted.xml"
    torch.onnx.export(model, (torch.zeros(1, 3, 64, 64),), str(onnx_path), dynamo=False,
                      input_names=["image"], output_names=["logits"])
    ov.save_model(ov.convert_model(model, example_input=torch.zeros(1, 3, 64, 64)), str(xml))
    folder = tmp_path / "images"
    copy_images(trained_run.data_root, folder, 3)
    maps = {}
    for name, checkpoint in (("onnx", onnx_path), ("ir", xml)):
        code, stderr = _explain(["--checkpoint", checkpoint, "--data_root", folder, "--work_dir", tmp_path / name,
                                 "--dump", "True", "--ir.labels", "a,b,c", *IR_FLAGS], capfd)
        assert code == 0, stderr
        run_dir = (tmp_path / name / ".latest" / "explain").resolve()
        index = read_index(run_dir)
        assert index["explain_method"] == "ReciproCAM" and len(index["images"]) == 3
        maps[name] = {p.name: np.load(p).astype(int) for p in (run_dir / "saliency_maps").glob("*.npy")}
    assert sorted(maps["onnx"]) == sorted(maps["ir"]) and len(maps["ir"]) == 3
    assert max(np.abs(maps["onnx"][k] - maps["ir"][k]).max() for k in maps["ir"]) <= 1


def test_resume_without_dump_is_an_error_that_never_moves_latest(trained_run: TrainedRun, tmp_path: Path,
                                                                  capfd: pytest.CaptureFixture) -> None:
    work_dir = tmp_path / "ws"
    args = _checkpoint_args(trained_run, trained_run.data_root, work_dir)
    assert _explain([*args, "--dump", "True"], capfd)[0] == 0
    latest = work_dir / ".latest" / "explain"
    before, runs = os.readlink(latest), sorted(os.listdir(work_dir))
    code, stderr = _explain([*args, "--resume", "True"], capfd)
    assert_clean_failure(code, stderr, "--resume True", "--dump True")
    assert os.readlink(latest) == before and sorted(os.listdir(work_dir)) == runs


BOX_FORMS = {
    "box": lambda boxes: boxes[0],
    "list_of_boxes": lambda boxes: boxes,
    "shapes_form": lambda boxes: {"label": "x", "box": boxes[0]},
}


@pytest.mark.parametrize("form", sorted(BOX_FORMS))
def test_boxes_json_forms_give_the_same_boxes(shapes_root: Path, tmp_path: Path, form: str) -> None:
    original = read_classification_records(shapes_root)
    root = Path(shutil.copytree(shapes_root, tmp_path / "data"))
    document = {path: BOX_FORMS[form]([box]) for path, box in _boxes_by_path(original, shapes_root).items()}
    first = next(iter(document))
    if form == "list_of_boxes":  # several boxes for one image: each is a ground-truth box of its class
        document[first] = document[first] + [[1, 2, 3, 4]]
    (root / "boxes.json").write_text(json.dumps(document))
    records = read_classification_records(root)
    boxes = _boxes_by_path(records, root, every=True)
    expected = {path: [box] for path, box in _boxes_by_path(original, shapes_root).items()}
    if form == "list_of_boxes":
        expected[first] = expected[first] + [[1.0, 2.0, 3.0, 4.0]]
    assert boxes == expected
    several = next(r for subset in records.subsets.values() for r in subset if Path(r.path).relative_to(root)
                   .as_posix() == first)
    assert len(several.labels) == len(several.boxes)  # one class label per box: the pointing game reads pairs


def _boxes_by_path(records: object, root: Path, every: bool = False) -> dict:
    found = {}
    for subset in records.subsets.values():
        for record in subset:
            if record.boxes:
                found[Path(record.path).relative_to(root).as_posix()] = record.boxes if every else record.boxes[0]
    return found


@pytest.mark.parametrize("document", ['{"a.png": "12,8,40,36"}', '[[1, 2, 3, 4]]', '{"a.png": [1, 2, 3]}', "{oops"])
def test_boxes_json_in_another_form_is_one_line_naming_it(trained_run: TrainedRun, tmp_path: Path,
                                                          capfd: pytest.CaptureFixture, document: str) -> None:
    folder = tmp_path / "images"
    copy_images(trained_run.data_root, folder, 2)
    (folder / "boxes.json").write_text(document)
    code, stderr = _explain(_checkpoint_args(trained_run, folder, tmp_path / "ws"), capfd)
    assert_clean_failure(code, stderr, str(folder / "boxes.json"), "[x1, y1, x2, y2]", "a list of such boxes")
    assert code == 1


def test_a_folder_with_no_readable_image_exits_1_after_writing_its_index(trained_run: TrainedRun, tmp_path: Path,
                                                                          capfd: pytest.CaptureFixture) -> None:
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "empty.png").write_bytes(b"")
    (folder / "text.jpg").write_text("not a picture")
    code, stderr = _explain([*_checkpoint_args(trained_run, folder, tmp_path / "ws"), "--dump", "True"], capfd)
    assert_clean_failure(code, stderr, "no image could be read", "2 files", "explain_index.json")
    assert code == 1
    run_dir = (tmp_path / "ws" / ".latest" / "explain").resolve()
    assert len(json.loads((run_dir / "explain_index.json").read_text())["images"]) == 2
    assert (run_dir / "explain_index.csv").is_file() and (run_dir / "gallery.html").is_file()


def test_constant_maps_and_all_over_many_classes_warn_once(trained_run: TrainedRun, tmp_path: Path,
                                                           capfd: pytest.CaptureFixture,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    """A degenerate IR (its head ignores the image) with 21 classes, explained with the default ALL on four
    images: one warning for the constant maps, one naming PREDICTIONS, each once per run."""
    xml = tmp_path / "degenerate.xml"
    ov.save_model(ov.convert_model(_tiny_classifier(21, zero_head=True), example_input=torch.zeros(1, 3, 64, 64)),
                  str(xml))
    folder = tmp_path / "images"
    copy_images(trained_run.data_root, folder, 4)
    labels = ",".join(f"class{k}" for k in range(21))
    code, stderr = _explain(["--checkpoint", xml, "--data_root", folder, "--work_dir", tmp_path / "ws",
                             "--ir.labels", labels, *IR_FLAGS], capfd)
    assert code == 0, stderr
    lines = [record.getMessage() for record in caplog.records]  # in this process the log goes to pytest
    constant = [line for line in lines if "constant over the image" in line]
    many = [line for line in lines if "--explain_config.target_explain_group PREDICTIONS" in line]
    assert len(constant) == 1 and len(many) == 1, lines
    assert "21 classes" in many[0]


def test_class_folders_keep_every_image_and_only_images(shapes_root: Path, tmp_path: Path) -> None:
    """Same-stem images in one class folder both count (datumaro kept one), a GIF counts, notes do not."""
    root = Path(shutil.copytree(shapes_root, tmp_path / "data"))
    first = sorted((root / "circle").glob("*.png"))[0]
    cv2.imwrite(str(first.with_suffix(".jpg")), cv2.imread(str(first)))
    PIL.Image.open(first).save(root / "square" / "extra.gif")
    (root / "triangle" / "notes.txt").write_text("labelled by hand\n")
    records = [r for subset in read_classification_records(root).subsets.values() for r in subset]
    names = sorted(Path(r.path).relative_to(root).as_posix() for r in records)
    expected = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.suffix in (".png", ".jpg", ".gif"))
    assert names == expected and len({r.image_id for r in records}) == len(records)

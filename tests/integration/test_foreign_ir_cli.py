"""`otx explain --checkpoint some.xml` on an IR otx_xai did not write: labels and preprocessing from flags,
Recipro-CAM inserted, the normal pipeline (maps, index, gallery) — the maps of otx_xai's own export."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from conftest import assert_clean_failure, raw_maps
from foreign_irs import calibrated_torchvision, own_export_of, save_plain_ir
from otx_xai.cli import main
from otx_xai.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from otx_xai.explain.dump import SALIENCY_DIR

LABELS = ["circle", "square", "triangle"]  # the shapes dataset's classes


def _csv(values: list[float]) -> str:
    return ",".join(str(v) for v in values)


def _explain(xml: Path, data_root: Path, work_dir: Path, *flags: str) -> int:
    return main(["explain", "--checkpoint", str(xml), "--data_root", str(data_root), "--work_dir", str(work_dir),
                 "--dump", "True", *flags])


def _latest(work_dir: Path) -> Path:
    return (work_dir / ".latest" / "explain").resolve()


@pytest.fixture(scope="module")
def resnet_irs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A plain ``ov.convert_model`` IR of a random resnet18 and otx_xai's own export of the same weights."""
    root = tmp_path_factory.mktemp("foreign_cli")
    net = calibrated_torchvision("resnet18", len(LABELS))
    return save_plain_ir(net, root / "plain" / "resnet18.xml"), own_export_of("resnet18", net, LABELS, root)


def test_plain_ir_explains_from_the_cli_like_the_own_export(resnet_irs: tuple[Path, Path], shapes_root: Path,
                                                            tmp_path: Path) -> None:
    plain, own = resnet_irs
    labels_file = tmp_path / "labels.txt"
    labels_file.write_text("\n".join(LABELS) + "\n")
    assert _explain(plain, shapes_root, tmp_path / "foreign", "--ir.labels_file", str(labels_file),
                    "--ir.mean", _csv(IMAGENET_MEAN), "--ir.std", _csv(IMAGENET_STD), "--ir.input_size", "96,96") == 0
    assert _explain(own, shapes_root, tmp_path / "own") == 0
    foreign_run, own_run = _latest(tmp_path / "foreign"), _latest(tmp_path / "own")
    index = json.loads((foreign_run / "explain_index.json").read_text())
    assert index["label_names"] == LABELS and index["explain_method"] == "ReciproCAM"
    assert index["summary"]["explained"] > 0 and (foreign_run / "gallery.html").is_file()
    assert list((foreign_run / SALIENCY_DIR).glob("*_class_square_saliency_map.png"))
    foreign_maps, own_maps = raw_maps(foreign_run), raw_maps(own_run)
    assert foreign_maps.keys() == own_maps.keys() and foreign_maps
    difference = max(np.abs(foreign_maps[k].astype(int) - own_maps[k].astype(int)).max() for k in own_maps)
    assert difference <= 1, difference
    recorded = json.loads((foreign_run / "run.json").read_text())["recipe"]["data"]
    assert recorded["input_size"] == [96, 96] and recorded["mean"] == IMAGENET_MEAN  # what ran, from the flags
    own_index = json.loads((own_run / "explain_index.json").read_text())
    predicted = {entry["image_id"]: entry["predicted"] for entry in index["images"]}
    assert predicted == {entry["image_id"]: entry["predicted"] for entry in own_index["images"]}


def test_missing_labels_name_the_flag(resnet_irs: tuple[Path, Path], shapes_root: Path, tmp_path: Path,
                                      capfd: pytest.CaptureFixture[str]) -> None:
    code = _explain(resnet_irs[0], shapes_root, tmp_path / "ws", "--ir.mean", "0,0,0", "--ir.std", "1,1,1")
    assert_clean_failure(code, capfd.readouterr().err, "names no class labels", "--ir.labels")
    assert not (tmp_path / "ws").exists()  # nothing half-written


def test_an_ir_with_no_global_pooling_is_refused(shapes_root: Path, tmp_path: Path,
                                                 capfd: pytest.CaptureFixture[str]) -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, stride=8), nn.ReLU(), nn.Flatten(), nn.LazyLinear(len(LABELS)))
    net(torch.zeros(1, 3, 96, 96))  # sizes the lazy layer
    xml = save_plain_ir(net, tmp_path / "flat" / "model.xml")
    # asked for by name (under ``auto`` such an IR is explained black-box: tests/unit/test_black_box_ir.py)
    code = _explain(xml, shapes_root, tmp_path / "ws", "--ir.labels", ",".join(LABELS), "--ir.mean", "0,0,0",
                    "--ir.std", "1,1,1", "--ir.input_size", "96,96", "--explain_method", "ReciproCAM")
    assert_clean_failure(code, capfd.readouterr().err, "cannot be explained with Recipro-CAM",
                         "no global average pooling", "AISE")

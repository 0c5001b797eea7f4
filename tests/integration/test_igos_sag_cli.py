"""I-GOS, I-GOS++ and SAG from the CLI: the gradient methods through the real Trainer on a checkpoint (Lightning
predicts under inference mode; they take gradients anyway) with the audit metrics on their maps, a one-line
error on an IR; SAG on a checkpoint (its own Recipro-CAM orders the patches) and on a plain IR otx_xai did not
write (RISE orders them), its roots and graph in the index and the gallery."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import TrainedRun, assert_clean_failure, copy_images, read_index
from foreign_irs import calibrated_torchvision, save_plain_ir
from otx_xai.cli import main
from otx_xai.data.transforms import IMAGENET_MEAN, IMAGENET_STD

SMALL_SAG = ["--black_box.beam_width", "1", "--black_box.successors", "4", "--black_box.max_roots", "1"]


def _latest(work_dir: Path) -> Path:
    return (work_dir / ".latest" / "explain").resolve()


@pytest.mark.parametrize(("method", "iterations", "metrics"), [
    ("IGOS", 2, ["insertion_deletion", "adcc"]),  # ADCC re-explains through the audit's own runner
    ("IGOSPlusPlus", 1, ["insertion_deletion"]),
])
def test_gradient_mask_methods_run_from_the_cli_on_a_checkpoint(method: str, iterations: int, metrics: list[str],
                                                                trained_run: TrainedRun, tmp_path: Path) -> None:
    work = tmp_path / "ws"
    code = main(["explain", "--work_dir", str(trained_run.work_dir), "--checkpoint", str(trained_run.checkpoint),
                 "--data_root", str(trained_run.data_root), "--dump", "True", "--explain_method", method,
                 "--black_box.iterations", str(iterations), "--black_box.ig_steps", "3",
                 "--metrics", ",".join(metrics), "--metric_steps", "3"])
    assert code == 0
    index = read_index(_latest(trained_run.work_dir))
    assert index["explain_method"] == method and index["runtime"]["backend"] == "torch"
    assert {"iterations": iterations, "ig_steps": 3, "preset": "balance"}.items() <= index["explain_settings"].items()
    assert set(metrics) <= set(index["summary"]["metrics"])
    maps = [np.load(_latest(trained_run.work_dir) / name) for entry in index["images"] for name in entry["files"]
            if name.endswith(".npy")]
    assert maps and all(m.dtype == np.uint8 and m.max() == 255 for m in maps)  # a map per predicted class
    assert not work.exists()


def test_a_gradient_method_on_an_ir_is_a_one_line_error(trained_run: TrainedRun, plain_ir: Path,
                                                        capfd: pytest.CaptureFixture) -> None:
    code = main(["explain", "--work_dir", str(trained_run.work_dir), "--checkpoint", str(plain_ir),
                 "--explain_method", "IGOSPlusPlus"])
    assert_clean_failure(code, capfd.readouterr().err, "IGOSPlusPlus", "gradients", ".ckpt", "RISE", "SAG")


def _sag_records(run_dir: Path) -> list[dict]:
    index = read_index(run_dir)
    assert index["explain_method"] == "SAG"
    records = [entry["sag"] for entry in index["images"] if not entry["error"]]
    assert records and all(record["roots"] and record["graph"].endswith("_sag_graph.png") for record in records)
    for record in records:
        for root in record["roots"]:
            assert root["score"] >= 0.9 * record["full_score"] - 1e-6 and root["patches"]
            mask = (run_dir / root["file"]).read_bytes()
            assert mask[:4] == b"\x89PNG"
    gallery = (run_dir / "gallery.html").read_text()
    assert all(record["graph"] in gallery for record in records)
    return records


def test_sag_from_the_cli_on_a_checkpoint_and_on_a_plain_ir(trained_run: TrainedRun, shapes_root: Path,
                                                            tmp_path: Path) -> None:
    checkpoint_work = tmp_path / "checkpoint"
    assert main(["explain", "--work_dir", str(checkpoint_work), "--config", str(trained_run.recipe),
                 "--checkpoint", str(trained_run.checkpoint), "--data_root", str(trained_run.data_root),
                 "--dump", "True", "--explain_method", "SAG", *SMALL_SAG]) == 0
    run_dir = _latest(checkpoint_work)
    _sag_records(run_dir)
    assert "ReciproCAM" in json.loads((run_dir / "explain_index.json").read_text())["explain_settings"]["prior"]

    xml = save_plain_ir(calibrated_torchvision("resnet18", 3), tmp_path / "plain" / "resnet18.xml")
    images = tmp_path / "images"
    copy_images(shapes_root, images, 2)
    labels = tmp_path / "labels.txt"
    labels.write_text("circle\nsquare\ntriangle\n")
    ir_work = tmp_path / "ir"
    assert main(["explain", "--checkpoint", str(xml), "--data_root", str(images), "--work_dir", str(ir_work),
                 "--dump", "True", "--explain_method", "SAG", *SMALL_SAG, "--black_box.num_masks", "32",
                 "--ir.labels_file", str(labels), "--ir.mean", ",".join(map(str, IMAGENET_MEAN)),
                 "--ir.std", ",".join(map(str, IMAGENET_STD)), "--ir.input_size", "96,96"]) == 0
    run_dir = _latest(ir_work)
    assert len(_sag_records(run_dir)) == 2
    index = json.loads((run_dir / "explain_index.json").read_text())
    assert index["runtime"]["backend"] == "openvino" and "RISE (32 masks" in index["explain_settings"]["prior"]

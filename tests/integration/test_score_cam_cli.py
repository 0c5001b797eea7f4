"""``otx explain --explain_method ScoreCAM`` on a trained checkpoint (through the Lightning Trainer) and on
its explain IR (through the asynchronous request queue): the same maps, recorded settings, the audit
metrics, the CSV and the gallery."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import TrainedRun, assert_clean_failure, copy_images, raw_maps, read_index, run_cli
from otx_xai.cli import main


def _run_dir(stdout: str) -> Path:
    return Path(stdout.split("index: ")[1].split()[0]).parent


def test_cli_score_cam_on_a_checkpoint_and_on_its_ir(trained_run: TrainedRun, explain_ir: Path,
                                                      tmp_path: Path) -> None:
    images = tmp_path / "images"
    copy_images(trained_run.data_root, images, 2)  # resnet18 at 64 px: 1 + 512 inferences per image
    common = ["--config", str(trained_run.recipe), "--data_root", str(images), "--dump", "True",
              "--explain_method", "ScoreCAM", "--black_box.batch_size", "64"]
    checkpoint = run_cli(["explain", *common, "--work_dir", str(tmp_path / "ckpt"), "--checkpoint",
                          str(trained_run.checkpoint), "--metrics", "insertion_deletion", "--metric_steps", "4"],
                         tmp_path)
    assert checkpoint.returncode == 0, checkpoint.stderr
    ir = run_cli(["explain", *common, "--work_dir", str(tmp_path / "ir"), "--checkpoint", str(explain_ir)], tmp_path)
    assert ir.returncode == 0, ir.stderr
    runs = {"checkpoint": _run_dir(checkpoint.stdout), "ir": _run_dir(ir.stdout)}
    for run_dir in runs.values():
        index = read_index(run_dir)
        assert index["explain_method"] == "ScoreCAM" and index["explain_settings"]["method"] == "ScoreCAM"
        assert index["explain_settings"]["batch_size"] == 64 and len(index["images"]) == 2
        assert (run_dir / "gallery.html").is_file() and list(run_dir.glob("*.csv"))
    assert "insertion_deletion" in read_index(runs["checkpoint"])["summary"]["metrics"]
    assert read_index(runs["ir"])["runtime"]["outputs"] == ["logits", "feature_map"]
    torch_maps, ir_maps = raw_maps(runs["checkpoint"]), raw_maps(runs["ir"])
    assert torch_maps.keys() == ir_maps.keys() and len(torch_maps) == 2
    for maps in torch_maps.values():  # ALL: a map per class, at the input size
        assert maps.shape == (3, 64, 64) and (maps.reshape(3, -1).max(axis=1) == 255).all()
    assert max(np.abs(torch_maps[k].astype(int) - ir_maps[k].astype(int)).max() for k in torch_maps) <= 1


@pytest.mark.parametrize(("flags", "words"), [
    (["--explain_method", "ScoreCAM", "--explain_layer", "layer9"], ("'layer9'", "layer4")),
    (["--explain_method", "RISE", "--explain_layer", "layer3"], ("explain_layer", "ScoreCAM", "RISE")),
], ids=["unknown_layer", "layer_for_rise"])
def test_explain_layer_with_a_perturbation_method_is_checked_before_the_run(
        trained_run: TrainedRun, capfd: pytest.CaptureFixture, tmp_path: Path, flags: list[str],
        words: tuple[str, ...]) -> None:
    work_dir = tmp_path / "ws"
    code = main(["explain", "--config", str(trained_run.recipe), "--checkpoint", str(trained_run.checkpoint),
                 "--data_root", str(trained_run.data_root), "--work_dir", str(work_dir), *flags])
    assert_clean_failure(code, capfd.readouterr().err, *words)
    assert not list(work_dir.glob("2*/explain_index.json")), "no half-written run"

"""More bad input (issue "Reliability and scale"): another task's checkpoint, an fp16 IR, a typo in a
config key, an unwritable work_dir, and a write error in the middle of a dump."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import numpy as np
import openvino as ov
import pytest

from conftest import RECIPES, TrainedRun, assert_clean_failure
from otx_xai import Engine
from otx_xai.cli import main
from otx_xai.explain.dump import SALIENCY_DIR


def _fails(args: list, capfd: pytest.CaptureFixture, *words: str) -> str:
    code = main([str(a) for a in args])
    return assert_clean_failure(code, capfd.readouterr().err, *words)


def test_checkpoint_of_another_task(trained_run: TrainedRun, tmp_path: Path, capfd: pytest.CaptureFixture) -> None:
    recipe = RECIPES.parent / "detection" / "fcos_light.yaml"
    _fails(["explain", "--config", recipe, "--checkpoint", trained_run.checkpoint, "--data_root", trained_run.data_root,
            "--work_dir", tmp_path / "ws"], capfd, "class folders are for classification")


def test_unknown_ir_precision(trained_run: TrainedRun, tmp_path: Path, capfd: pytest.CaptureFixture) -> None:
    xml = Engine(work_dir=trained_run.work_dir).export(explain=True)
    _fails(["explain", "--checkpoint", xml, "--data_root", trained_run.data_root, "--work_dir", tmp_path / "ws",
            "--ir_precision", "fp8"], capfd, "unknown IR precision 'fp8'", "f32, bf16")


def test_ir_precision_with_a_checkpoint(trained_run: TrainedRun, tmp_path: Path, capfd: pytest.CaptureFixture) -> None:
    _fails(["explain", "--config", trained_run.recipe, "--checkpoint", trained_run.checkpoint, "--data_root",
            trained_run.data_root, "--work_dir", tmp_path / "ws", "--ir_precision", "bf16"], capfd,
           "applies to an .xml IR")


def test_typo_in_a_config_key(trained_run: TrainedRun, tmp_path: Path, capfd: pytest.CaptureFixture) -> None:
    config = tmp_path / "flags.yaml"
    config.write_text(f"work_dir: {trained_run.work_dir}\ndump: true\nexplain_config:\n  postprocesss: true\n")
    code = main(["explain", "--config", str(config)])
    line = assert_clean_failure(code, capfd.readouterr().err, "postprocesss")
    assert code == 2, line


def test_unwritable_work_dir(trained_run: TrainedRun, tmp_path: Path, capfd: pytest.CaptureFixture) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    _fails(["explain", "--config", trained_run.recipe, "--checkpoint", trained_run.checkpoint, "--data_root",
            trained_run.data_root, "--work_dir", blocker / "ws"], capfd, "cannot write to work_dir", "--work_dir")


def test_ir_with_fp16_weights_explains_like_the_f32_ir(trained_run: TrainedRun, tmp_path: Path) -> None:
    engine = Engine(model=str(trained_run.recipe), data_root=trained_run.data_root, work_dir=tmp_path / "ws",
                    checkpoint=trained_run.checkpoint)
    xml = engine.export(explain=True)
    half = tmp_path / "half" / "exported_model.xml"
    ov.save_model(ov.Core().read_model(str(xml)), str(half), compress_to_fp16=True)
    assert half.with_suffix(".bin").stat().st_size < 0.6 * xml.with_suffix(".bin").stat().st_size
    full = {r.info.image_id: r.raw_saliency_map.astype(int) for r in engine.explain(checkpoint=xml)}
    compressed = engine.explain(checkpoint=half)
    assert {r.info.image_id for r in compressed} == set(full)
    difference = np.mean([np.abs(r.raw_saliency_map.astype(int) - full[r.info.image_id]).mean() for r in compressed])
    assert difference <= 8  # fp16 weights move maps by a few grey levels; they still explain


def test_write_error_mid_dump_leaves_nothing_half_written(trained_run: TrainedRun, tmp_path: Path,
                                                          capfd: pytest.CaptureFixture,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """A disk that fills up after a few files (the system call refuses with ENOSPC): a one-line error naming
    the file and saying --resume True finishes the run, every file on disk complete, no temp file, and
    --resume finishes the run."""
    synced = {"count": 0}
    real_fsync = os.fsync

    def full_disk_after_five(descriptor: int) -> None:
        if synced["count"] >= 5:
            raise OSError(errno.ENOSPC, "No space left on device")
        synced["count"] += 1
        real_fsync(descriptor)

    monkeypatch.setattr(os, "fsync", full_disk_after_five)
    args = ["explain", "--config", trained_run.recipe, "--checkpoint", trained_run.checkpoint, "--data_root",
            trained_run.data_root, "--work_dir", tmp_path / "ws", "--dump", "True"]
    line = _fails(args, capfd, "No space left on device", "--resume True", str(tmp_path / "ws"))
    monkeypatch.undo()
    run_dir = (tmp_path / "ws" / ".latest" / "explain").resolve()
    assert str(run_dir) in line and ".tmp" not in line  # the file that could not be written, not a temp name
    assert not list(run_dir.rglob("*.tmp"))
    assert all(p.stat().st_size > 0 for p in (run_dir / SALIENCY_DIR).iterdir())
    assert main([str(a) for a in [*args, "--resume", "True"]]) == 0
    index = json.loads((run_dir / "explain_index.json").read_text())
    assert index["summary"]["explained"] == len(index["images"]) > 0
    assert all((run_dir / f).is_file() for entry in index["images"] for f in entry["files"])

"""An exported IR explains with nothing but itself and the images: no recipe, no checkpoint, no training run."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import TrainedRun
from otx_xai import Engine
from otx_xai.cli import main


def test_ir_explains_in_an_empty_work_dir(trained_run: TrainedRun, tmp_path: Path) -> None:
    xml = Engine(work_dir=trained_run.work_dir).export(explain=True)
    work_dir = tmp_path / "elsewhere"
    assert main(["explain", "--checkpoint", str(xml), "--data_root", str(trained_run.data_root),
                 "--work_dir", str(work_dir), "--dump", "True"]) == 0
    index = json.loads(((work_dir / ".latest" / "explain").resolve() / "explain_index.json").read_text())
    assert index["summary"]["explained"] > 0
    assert index["label_names"] == ["circle", "square", "triangle"]


def test_ir_precision_is_chosen_and_recorded(trained_run: TrainedRun, tmp_path: Path) -> None:
    xml = Engine(work_dir=trained_run.work_dir).export(explain=True)
    work_dir = tmp_path / "bf16"
    assert main(["explain", "--checkpoint", str(xml), "--data_root", str(trained_run.data_root),
                 "--work_dir", str(work_dir), "--dump", "True", "--ir_precision", "bf16",
                 "--ir.performance_hint", "latency"]) == 0
    index = json.loads(((work_dir / ".latest" / "explain").resolve() / "explain_index.json").read_text())
    assert index["runtime"]["backend"] == "openvino" and index["runtime"]["precision"] == "bf16"
    # the flag's hint, on every compiled form, as the plugin reported it
    assert index["runtime"]["performance_hint"] == "latency"
    assert set(index["runtime"]["compiled_hints"].values()) == {"LATENCY"}
    # what the plugin compiled: bf16 where the CPU has bf16 instructions (this machine), else f32
    assert index["runtime"]["compiled_precision"] in ("bf16", "f32")
    assert index["summary"]["explained"] > 0

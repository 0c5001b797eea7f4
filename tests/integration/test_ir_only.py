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

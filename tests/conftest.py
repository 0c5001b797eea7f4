"""Shared fixtures: one tiny synthetic dataset and one trained resnet18 work_dir for the whole session.

Everything is real (torch, Lightning, OpenVINO, datumaro) and tiny: 8 images per class at ~80 px,
64×64 model input, one epoch. Tests that only read the trained run share it instead of training again.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import openvino as ov
import pytest
import torch
import yaml
from hypothesis import settings

from otx_xai import Engine
from otx_xai.data.shapes import make_classification_shapes
from otx_xai.explain.dump import SALIENCY_DIR
from otx_xai.openvino.metadata import read_metadata

# The suite's fuzz tests draw the same examples on every run ("ci", the default), so a run's verdict does not
# depend on luck; `HYPOTHESIS_PROFILE=explore pytest tests/unit/test_fuzz.py` draws new ones to hunt for bugs.
settings.register_profile("ci", derandomize=True, database=None)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

REPO = Path(__file__).resolve().parents[1]
RECIPES = REPO / "recipes" / "classification"
BIN = Path(sys.executable).parent
INPUT_SIZE = (64, 64)
IMAGES_PER_CLASS = 8
IMAGE_SIZE = 80

# The models are tiny: one intra-op thread is as fast, and OpenMP threads spinning on a busy machine
# (other test runs, the CLI subprocesses) cost 10-50x. Child processes get the same setting.
torch.set_num_threads(1)
CHILD_THREADS = "1"


def write_recipe(directory: Path, name: str = "resnet18.yaml", **data: Any) -> Path:
    """A copy of a repository recipe with a 64×64 input, small batches and one epoch."""
    values = yaml.safe_load((RECIPES / name).read_text())
    values["data"] = {**values["data"], "input_size": list(INPUT_SIZE), "batch_size": 8, **data}
    values["max_epochs"] = 1
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"tiny_{name}"
    path.write_text(yaml.safe_dump(values))
    return path


def run_cli(args: list[str], cwd: Path, program: str = "otx") -> subprocess.CompletedProcess:
    """Run an installed console script (``otx`` / ``otx-xai``) or ``python -m otx_xai`` in ``cwd``."""
    command = [sys.executable, "-m", "otx_xai"] if program == "-m" else [str(BIN / program)]
    env = {**os.environ, "OMP_NUM_THREADS": CHILD_THREADS}
    env.pop("OTX_XAI_DEBUG", None)
    return subprocess.run(command + args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def error_lines(stderr: str) -> list[str]:
    """The lines of stderr that report an error (warnings and log lines are not errors)."""
    return [line for line in stderr.splitlines() if line.startswith("otx") and "error:" in line]


def assert_clean_failure(code: int, stderr: str, *words: str) -> str:
    """Non-zero exit, exactly one one-line error naming every word of ``words``, no traceback."""
    assert code != 0, stderr
    assert "Traceback" not in stderr, stderr
    lines = error_lines(stderr)
    assert len(lines) == 1, stderr
    for word in words:
        assert word.lower() in lines[0].lower(), lines[0]
    return lines[0]


@pytest.fixture(scope="session")
def shapes_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Class folders circle/square/triangle with 8 images each and boxes.json (24 images)."""
    root = tmp_path_factory.mktemp("data") / "shapes"
    return make_classification_shapes(root, IMAGES_PER_CLASS, IMAGE_SIZE, seed=0)


@dataclass
class TrainedRun:
    """A work_dir holding one training run of the tiny resnet18 recipe, and the engine that made it."""

    engine: Engine
    work_dir: Path
    data_root: Path
    recipe: Path
    checkpoint: Path
    metrics: dict[str, float]


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory: pytest.TempPathFactory, shapes_root: Path) -> TrainedRun:
    """``Engine(model=recipe, data_root, work_dir).train()``, once per session.

    The paths are stable. ``engine`` is shared: the Engine API test goes on with it (explain, export,
    explain the IR) and then points it back at the checkpoint; other tests should only read from it.
    """
    root = tmp_path_factory.mktemp("trained")
    recipe = write_recipe(root)
    engine = Engine(model=str(recipe), data_root=shapes_root, work_dir=root / "ws")
    metrics = engine.train(max_epochs=1)
    return TrainedRun(engine, root / "ws", shapes_root, recipe, Path(engine.checkpoint), metrics)


@pytest.fixture(scope="session")
def explain_ir(trained_run: TrainedRun) -> Path:
    """The trained checkpoint exported with the explain outputs."""
    return Engine(work_dir=trained_run.work_dir).export(explain=True)


@pytest.fixture(scope="session")
def plain_ir(trained_run: TrainedRun) -> Path:
    """The trained checkpoint exported WITHOUT the explain outputs."""
    return Engine(work_dir=trained_run.work_dir).export(explain=False)


def read_ir(xml: Path) -> tuple[list[str], dict[str, Any]]:
    """The output names of an IR and its otx_xai rt_info, read with the OpenVINO runtime."""
    model = ov.Core().read_model(str(xml))
    return [port.get_any_name() for port in model.outputs], read_metadata(model)


def raw_maps(run_dir: Path) -> dict[str, np.ndarray]:
    """The raw (K, h, w) uint8 maps a dumped run wrote, by image id."""
    suffix = "_saliency_map.npy"
    return {p.name[: -len(suffix)]: np.load(p) for p in (run_dir / SALIENCY_DIR).glob(f"*{suffix}")}


def copy_images(source: Path, target: Path, count: int) -> list[Path]:
    """Copy ``count`` images of a class-folder dataset into one plain (unlabelled) folder."""
    target.mkdir(parents=True, exist_ok=True)
    images = sorted(source.rglob("*.png"))
    images = images[:: max(1, len(images) // count)][:count]
    return [Path(shutil.copy(image, target / f"{image.parent.name}_{image.name}")) for image in images]


def read_index(run_dir: Path) -> dict[str, Any]:
    """A dumped run's explain_index.json, checked: every listed file exists, no temp file is left."""
    index = json.loads((run_dir / "explain_index.json").read_text())
    assert isinstance(index["version"], int) and index["images"]
    for entry in index["images"]:
        assert {"image_id", "source_path", "predicted", "files", "error"} <= set(entry), entry
        missing = [name for name in entry["files"] if not (run_dir / name).is_file()]
        assert not missing, missing
    assert not list(run_dir.rglob(".*.tmp")), "temporary files left behind"
    return index


def iou(first: np.ndarray, second: np.ndarray) -> float:
    """IoU of two boxes x1, y1, x2, y2, the slow obvious way (the reference for the detection tests)."""
    width = max(0.0, min(first[2], second[2]) - max(first[0], second[0]))
    height = max(0.0, min(first[3], second[3]) - max(first[1], second[1]))
    inter = width * height
    area = (first[2] - first[0]) * (first[3] - first[1]) + (second[2] - second[0]) * (second[3] - second[1])
    return inter / max(area - inter, 1e-6)

"""Occlusion and LIME from the CLI: on a trained checkpoint (with the audit metrics on their maps) and on a
plain IR otx_xai did not write (``ov.convert_model``, labels and preprocessing from the ``--ir.*`` flags);
through the IR's request queue they give the maps they give through torch."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import TrainedRun, raw_maps
from foreign_irs import calibrated_torchvision, random_images, save_plain_ir
from otx_xai.cli import main
from otx_xai.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from otx_xai.explain.black_box.presets import BlackBoxConfig
from otx_xai.explain.black_box.protocol import black_box_method
from otx_xai.explain.black_box.runners import ir_runner, torch_runner
from otx_xai.explain.config import ExplainConfig, TargetExplainGroup
from otx_xai.explain.entity import ModelInfo
from otx_xai.openvino.foreign_metadata import ForeignIROptions
from otx_xai.openvino.inference import IRModel

LABELS = ["circle", "square", "triangle"]  # the shapes dataset's classes
SIZE = 64
SMALL = {"Occlusion": ["--black_box.window", "16", "--black_box.stride", "8"],
         "LIME": ["--black_box.num_samples", "40", "--black_box.segmentation", "slic"]}


def _csv(values: list[float]) -> str:
    return ",".join(str(v) for v in values)


def _index(work_dir: Path) -> tuple[Path, dict]:
    run_dir = (work_dir / ".latest" / "explain").resolve()
    return run_dir, json.loads((run_dir / "explain_index.json").read_text())


@pytest.fixture(scope="module")
def plain_resnet(tmp_path_factory: pytest.TempPathFactory) -> tuple[torch.nn.Module, Path]:
    """A random resnet18 (calibrated batch norm, classifier scaled to unsaturated scores) and its plain IR."""
    net = calibrated_torchvision("resnet18", len(LABELS), size=SIZE)
    with torch.no_grad():
        [m for m in net.modules() if isinstance(m, torch.nn.Linear)][-1].weight.mul_(0.05)
    return net, save_plain_ir(net, tmp_path_factory.mktemp("plain_resnet") / "resnet18.xml", size=SIZE)


@pytest.mark.parametrize("method", ["Occlusion", "LIME"])
def test_cli_on_the_checkpoint_with_the_audit_metrics(method: str, trained_run: TrainedRun, tmp_path: Path) -> None:
    work_dir = tmp_path / "ws"
    code = main(["explain", "--config", str(trained_run.recipe), "--data_root", str(trained_run.data_root),
                 "--checkpoint", str(trained_run.checkpoint), "--work_dir", str(work_dir), "--dump", "True",
                 "--explain_method", method, *SMALL[method], "--metrics", "pointing_game,insertion_deletion,adcc",
                 "--metric_steps", "4", "--explain_config.target_explain_group", "PREDICTIONS"])
    assert code == 0
    run_dir, index = _index(work_dir)
    assert index["explain_method"] == method
    if method == "Occlusion":
        assert (index["explain_settings"]["window"], index["explain_settings"]["stride"]) == (16, 8)
    else:
        assert index["explain_settings"]["num_samples"] == 40 and index["explain_settings"]["segmentation"] == "slic"
    assert {"pointing_game", "insertion_deletion", "adcc"} <= set(index["summary"]["metrics"])
    maps = raw_maps(run_dir)
    assert maps and len(maps) == len(index["images"])
    for entry in index["images"]:  # PREDICTIONS: the predicted class's map only, a real one
        saliency = maps[entry["image_id"]]
        painted = [k for k in range(len(LABELS)) if saliency[k].any()]
        assert painted == [label["index"] for label in entry["predicted"]]
        assert len(np.unique(saliency[painted[0]])) > 3


@pytest.mark.parametrize("method", ["Occlusion", "LIME"])
def test_cli_on_a_plain_ir(method: str, plain_resnet: tuple[torch.nn.Module, Path], shapes_root: Path,
                           tmp_path: Path) -> None:
    labels_file = tmp_path / "labels.txt"
    labels_file.write_text("\n".join(LABELS) + "\n")
    code = main(["explain", "--checkpoint", str(plain_resnet[1]), "--data_root", str(shapes_root), "--work_dir",
                 str(tmp_path / "ws"), "--dump", "True", "--ir.labels_file", str(labels_file), "--ir.mean",
                 _csv(IMAGENET_MEAN), "--ir.std", _csv(IMAGENET_STD), "--ir.input_size", f"{SIZE},{SIZE}",
                 "--explain_method", method, *SMALL[method], "--explain_config.target_explain_group", "ALL"])
    assert code == 0
    run_dir, index = _index(tmp_path / "ws")
    assert index["explain_method"] == method and index["runtime"]["backend"] == "openvino"
    maps = raw_maps(run_dir)
    assert maps and all(m.shape == (3, SIZE, SIZE) and all(m[k].any() for k in range(3)) for m in maps.values())


@pytest.mark.parametrize("method", ["Occlusion", "LIME"])
def test_the_ir_queue_gives_the_torch_maps(method: str, plain_resnet: tuple[torch.nn.Module, Path]) -> None:
    net, xml = plain_resnet
    ir = IRModel(xml, foreign=ForeignIROptions(labels=LABELS, mean=IMAGENET_MEAN, std=IMAGENET_STD,
                                               input_size=[SIZE, SIZE]))
    images = random_images(count=3, seed=5, size=SIZE)
    config = BlackBoxConfig(window=16, stride=8, num_samples=60, segmentation="slic", batch_size=8)
    explain = ExplainConfig(target_explain_group=TargetExplainGroup.ALL)
    info = ModelInfo("classification", LABELS)
    from_ir = black_box_method("classification", method, config).explain(images, ir_runner(ir, 8), info, explain)
    from_torch = black_box_method("classification", method, config).explain(images, torch_runner(net, 8), info,
                                                                            explain)
    np.testing.assert_allclose(from_ir["logits"], from_torch["logits"], rtol=1e-4, atol=1e-4)
    assert np.abs(from_ir["saliency_map"].astype(int) - from_torch["saliency_map"].astype(int)).max() <= 2

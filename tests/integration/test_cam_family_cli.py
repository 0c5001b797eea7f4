"""The CAM family through the real Trainer and CLI: a model trained with Grad-CAM probes, every method at explain
time on its checkpoint (the index records method and settings, maps match the model's own forward), a layer by
name, one-line errors for a wrong layer and for a gradient method on an IR, and CAM carried by an exported IR."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import error_lines, raw_maps, read_index, write_recipe
from otx_xai import Engine, ExplainConfig
from otx_xai.cli import main
from otx_xai.models.classification import ImageClassifier

METHODS = ["GradCAM", "GradCAMPlusPlus", "XGradCAM", "LayerCAM", "CAM"]


@dataclass
class GradTrained:
    root: Path
    recipe: Path
    checkpoint: Path
    data_root: Path
    train_dir: Path


@pytest.fixture(scope="module")
def grad_trained(tmp_path_factory: pytest.TempPathFactory, shapes_root: Path) -> GradTrained:
    """One epoch of a resnet18 built with explain_method GradCAM, with one probe image."""
    root = tmp_path_factory.mktemp("gradcam")
    recipe = write_recipe(root)
    engine = Engine(model=str(recipe), data_root=shapes_root, work_dir=root / "ws")
    engine.recipe.model.init_args["explain_method"] = "GradCAM"
    engine.train(max_epochs=1, explain_probes=1)
    train_dir = (root / "ws" / ".latest" / "train").resolve()
    recipe.write_text(recipe.read_text().replace("lr: 0.001", "lr: 0.001\n    explain_method: GradCAM"))
    return GradTrained(root, recipe, Path(engine.checkpoint), shapes_root, train_dir)


def explain_args(run: GradTrained, work_dir: Path, *extra: str) -> list[str]:
    return ["explain", "--config", str(run.recipe), "--checkpoint", str(run.checkpoint), "--data_root",
            str(run.data_root), "--work_dir", str(work_dir), "--dump", "True", *extra]


def test_training_time_probes_show_grad_cam(grad_trained: GradTrained) -> None:
    probes = sorted((grad_trained.train_dir / "probes" / "epoch_000").glob("*.png"))
    assert len(probes) == 1 and probes[0].stat().st_size > 0


@pytest.mark.parametrize("method", METHODS)
def test_each_method_explains_the_checkpoint_from_the_cli(grad_trained: GradTrained, method: str,
                                                         tmp_path: Path) -> None:
    group = "PREDICTIONS" if method == "XGradCAM" else "ALL"
    code = main(explain_args(grad_trained, tmp_path / "ws", "--explain_method", method,
                             "--explain_config.target_explain_group", group, "--explain_config.max_explain_chunk", "5"))
    assert code == 0
    run_dir = (tmp_path / "ws" / ".latest" / "explain").resolve()
    index = read_index(run_dir)
    assert index["explain_method"] == method
    if method != "CAM":
        assert index["explain_settings"] == {"layer": "layer4.1.relu_1", "chunk": 5}
    assert (run_dir / "explain_index.csv").is_file() and (run_dir / "gallery.html").is_file()
    maps = raw_maps(run_dir)
    assert maps and all(m.dtype == np.uint8 for m in maps.values())
    # the maps are the model's own forward_explain on the same images (the Trainer ran under inference_mode)
    model = ImageClassifier(["circle", "square", "triangle"], "resnet18", explain_method=method)
    model.load_state_dict(torch.load(grad_trained.checkpoint, weights_only=False)["state_dict"])
    engine = Engine(model=model.eval(), data_root=grad_trained.data_root, work_dir=tmp_path / "api")
    engine.recipe.data.input_size = (64, 64)
    results = engine.explain(explain_config=ExplainConfig(target_explain_group=group))
    for result in results:
        np.testing.assert_array_equal(maps[result.info.image_id], result.raw_saliency_map)
        assert result.raw_saliency_map[result.predicted[0]].std() > 0
        if group == "PREDICTIONS":  # only the predicted class was computed
            others = [k for k in range(3) if k not in result.predicted]
            assert int(result.raw_saliency_map[others].max()) == 0


def test_a_layer_by_name_and_the_audit(grad_trained: GradTrained, tmp_path: Path) -> None:
    code = main(explain_args(grad_trained, tmp_path / "ws", "--explain_layer", "layer3", "--metrics",
                             "pointing_game,insertion_deletion", "--metric_steps", "4", "--sanity_check", "True"))
    assert code == 0
    run_dir = (tmp_path / "ws" / ".latest" / "explain").resolve()
    index = read_index(run_dir)
    assert index["explain_settings"]["layer"] == "layer3"
    assert next(iter(raw_maps(run_dir).values())).shape == (3, 4, 4)  # layer3's grid at 64 px
    assert "sanity_check" in index["summary"] and "pointing_game" in index["summary"]


@pytest.fixture(scope="module")
def cam_ir(grad_trained: GradTrained, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, Path]:
    """The trained weights in a model built with explain_method CAM: its maps in torch, and its explain IR."""
    work_dir = tmp_path_factory.mktemp("cam_ir") / "ws"
    model = ImageClassifier(["circle", "square", "triangle"], "resnet18", explain_method="CAM")
    model.load_state_dict(torch.load(grad_trained.checkpoint, weights_only=False)["state_dict"])
    engine = Engine(model=model.eval(), data_root=grad_trained.data_root, work_dir=work_dir)
    engine.recipe.data.input_size = (64, 64)
    torch_maps = {r.info.image_id: r.raw_saliency_map for r in engine.explain()}
    return engine.export(explain=True), torch_maps, work_dir


def test_cam_is_carried_by_an_exported_ir(grad_trained: GradTrained, cam_ir: tuple) -> None:
    xml, torch_maps, work_dir = cam_ir
    assert all(m.std() > 0 for m in torch_maps.values())
    assert main(["explain", "--checkpoint", str(xml), "--data_root", str(grad_trained.data_root),
                 "--work_dir", str(work_dir), "--dump", "True"]) == 0
    run_dir = (work_dir / ".latest" / "explain").resolve()
    assert read_index(run_dir)["explain_method"] == "CAM"
    for image_id, maps in raw_maps(run_dir).items():
        assert np.abs(maps.astype(int) - torch_maps[image_id].astype(int)).max() <= 1


def test_one_line_errors(grad_trained: GradTrained, tmp_path: Path, cam_ir: tuple,
                         capsys: pytest.CaptureFixture) -> None:
    assert main(explain_args(grad_trained, tmp_path / "a", "--explain_layer", "layer9")) == 1
    lines = error_lines(capsys.readouterr().err)
    assert len(lines) == 1 and "layer4" in lines[0] and "layer1" in lines[0]
    assert main(["explain", "--checkpoint", str(cam_ir[0]), "--data_root", str(grad_trained.data_root),
                 "--work_dir", str(tmp_path / "b"), "--explain_method", "GradCAM"]) == 1
    (line,) = error_lines(capsys.readouterr().err)
    for name in ("CAM", "ScoreCAM", "ReciproCAM", "AISE"):
        assert name in line

"""``weights:`` whose classifier fits the labels is kept (a 1000-class model explains as it is, with
torchvision's own category names); a mismatch re-creates it and says so. The weights are a random-weight
torchvision state dict saved into a temporary TORCH_HOME: nothing is downloaded."""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torchvision

from otx_xai import Engine, ExplainConfig, TargetExplainGroup
from otx_xai.data.datamodule import DataConfig
from otx_xai.engine.recipe import ModelSpec, Recipe, RecipeError, model_label_names
from otx_xai.models.classification import ImageClassifier

IMAGENET = list(torchvision.models.ResNet18_Weights.DEFAULT.meta["categories"])
FILE = "resnet18-random.pth"


@pytest.fixture
def torch_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, torch.nn.Module]:
    """A TORCH_HOME whose hub/checkpoints holds a random 1000-class resnet18's state dict (and that net)."""
    torch.manual_seed(0)
    net = torchvision.models.resnet18(weights=None).eval()
    with torch.no_grad():
        net.fc.weight.mul_(20.0)  # scores that are not all ~1/1000
    checkpoints = tmp_path / "torch_home" / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    torch.save(net.state_dict(), checkpoints / FILE)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    return tmp_path, net


def test_a_classifier_that_fits_the_labels_is_kept(torch_home: tuple[Path, torch.nn.Module],
                                                   caplog: pytest.LogCaptureFixture) -> None:
    _, net = torch_home
    with caplog.at_level(logging.INFO):
        model = ImageClassifier(IMAGENET, backbone="resnet18", weights=FILE).eval()
    assert "the classifier kept" in caplog.text and "re-created" not in caplog.text
    images = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model(images), net(images), rtol=1e-5, atol=1e-5)
        assert model.forward_explain(images)["saliency_map"].shape == (2, 1000, 2, 2)


def test_a_classifier_for_other_labels_is_re_created_and_logged(torch_home: tuple[Path, torch.nn.Module],
                                                                caplog: pytest.LogCaptureFixture) -> None:
    _, net = torch_home
    with caplog.at_level(logging.INFO):
        model = ImageClassifier(["a", "b", "c"], backbone="resnet18", weights=FILE).eval()
    line = next(record.getMessage() for record in caplog.records if "re-created" in record.getMessage())
    assert FILE in line and "fc.weight (1000, 512) vs (3, 512)" in line and "\n" not in line
    assert model.head.fc.weight.shape == (3, 512)
    torch.testing.assert_close(model.backbone.get_submodule("layer4.1.conv2").weight, net.layer4[1].conv2.weight)


def test_label_names_file_reads_torchvision_categories_or_a_file(tmp_path: Path) -> None:
    spec = ModelSpec(init_args={"backbone": "mobilenet_v2"}, label_names_file="torchvision")
    assert model_label_names(spec) == IMAGENET
    names = tmp_path / "labels.txt"
    names.write_text("cat\n\ndog\n")
    assert model_label_names(ModelSpec(label_names_file=str(names))) == ["cat", "dog"]
    with pytest.raises(RecipeError, match=r"label_names_file 'missing\.txt' not found"):
        model_label_names(ModelSpec(label_names_file="missing.txt"))


def test_a_pretrained_model_explains_a_plain_folder_with_the_weights_own_labels(
        torch_home: tuple[Path, torch.nn.Module]) -> None:
    tmp_path, _ = torch_home
    folder = tmp_path / "images"
    folder.mkdir()
    generator = np.random.default_rng(0)
    for index in range(3):
        cv2.imwrite(str(folder / f"photo_{index}.png"), generator.integers(0, 256, (72, 90, 3), dtype=np.uint8))
    recipe = Recipe(model=ModelSpec(init_args={"backbone": "resnet18", "weights": FILE},
                                    label_names_file="torchvision"),
                    data=DataConfig(input_size=(64, 64), batch_size=2))
    engine = Engine(model=recipe, data_root=folder, work_dir=tmp_path / "ws")
    results = engine.explain(explain_config=ExplainConfig(target_explain_group=TargetExplainGroup.PREDICTIONS),
                             dump=True)
    assert len(results) == 3 and engine.model.label_names == IMAGENET
    for result in results:
        (label,) = result.saliency_map  # the top-1 class only
        assert 0 <= label < 1000 and result.saliency_map[label].dtype == np.uint8
        assert result.raw_saliency_map.shape == (1000, 2, 2)
    index = (engine.last_explain_dir / "explain_index.json").read_text()
    assert '"tench"' in index  # the header's label names are ImageNet's

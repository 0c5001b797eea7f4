"""ExplainConfig / TargetExplainGroup contracts and the recipes shipped in recipes/classification."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from otx_xai import ExplainConfig, TargetExplainGroup
from otx_xai.data.datamodule import DataConfig
from otx_xai.engine.recipe import (
    ModelSpec,
    Recipe,
    RecipeError,
    build_model,
    import_class,
    load_recipe,
    recipe_from_dict,
)
from otx_xai.models.classification import ImageClassifier

RECIPES = Path(__file__).resolve().parents[2] / "recipes" / "classification"
CNN_RECIPES = sorted(p.name for p in RECIPES.glob("*.yaml")
                     if "ImageClassifier" in yaml.safe_load(p.read_text())["model"]["class_path"])


def one_line(error: pytest.ExceptionInfo) -> str:
    message = str(error.value)
    assert message.strip() and "\n" not in message.strip(), message
    return message


def test_explain_config_defaults() -> None:
    config = ExplainConfig()
    assert config.target_explain_group is TargetExplainGroup.ALL
    assert config.postprocess is False and config.crop_padded_map is False
    assert config.predicted_maps_conf_thr == pytest.approx(0.3)


def test_target_explain_group_is_a_str_enum() -> None:
    assert {g.value for g in TargetExplainGroup} == {"IMAGE", "ALL", "PREDICTIONS"}
    assert all(isinstance(g, str) for g in TargetExplainGroup)
    assert TargetExplainGroup.PREDICTIONS == "PREDICTIONS"


@pytest.mark.parametrize("given", ["PREDICTIONS", "predictions", TargetExplainGroup.PREDICTIONS])
def test_target_group_accepts_names_and_members(given: str) -> None:
    assert ExplainConfig(target_explain_group=given).target_explain_group is TargetExplainGroup.PREDICTIONS


@pytest.mark.parametrize("given", ["FOO", "", "PREDICTION"])
def test_unknown_target_group_is_a_one_line_value_error(given: str) -> None:
    with pytest.raises(ValueError) as error:
        ExplainConfig(target_explain_group=given)
    message = one_line(error)
    assert "target_explain_group" in message and repr(given) in message
    assert all(g.value in message for g in TargetExplainGroup), "the message lists the valid groups"


@pytest.mark.parametrize("threshold", [-0.1, 1.5])
def test_threshold_outside_unit_interval_is_rejected(threshold: float) -> None:
    with pytest.raises(ValueError) as error:
        ExplainConfig(predicted_maps_conf_thr=threshold)
    assert "predicted_maps_conf_thr" in one_line(error)


@pytest.mark.parametrize("name", sorted(p.name for p in RECIPES.glob("*.yaml")))
def test_every_shipped_recipe_loads(name: str) -> None:
    raw = yaml.safe_load((RECIPES / name).read_text())
    recipe = load_recipe(RECIPES / name)
    assert recipe.task == raw["task"] == "classification"
    assert recipe.model.class_path == raw["model"]["class_path"]
    assert isinstance(import_class(recipe.model.class_path), type)
    assert recipe.data.input_size == tuple(raw["data"]["input_size"])
    assert recipe.model.init_args.get("multilabel", False) == recipe.data.multilabel, "head and data agree"


@pytest.mark.parametrize("name", CNN_RECIPES)
def test_cnn_recipes_build_their_backbone(name: str) -> None:
    recipe = load_recipe(RECIPES / name)
    model = build_model(recipe.model, ["a", "b", "c"])
    assert isinstance(model, ImageClassifier)
    assert model.hparams["backbone"] == recipe.model.init_args["backbone"]
    assert model.multilabel == recipe.data.multilabel and model.label_names == ["a", "b", "c"]
    with torch.no_grad():
        assert model.eval()(torch.zeros(1, 3, 64, 64)).shape == (1, 3)


def test_recipe_from_dict_fills_defaults_and_tuples() -> None:
    recipe = recipe_from_dict({"model": {"init_args": {"backbone": "resnet18"}}, "data": {"input_size": [64, 96]}})
    assert recipe == Recipe(model=ModelSpec(init_args={"backbone": "resnet18"}),
                            data=DataConfig(input_size=(64, 96)), max_epochs=10)


@pytest.mark.parametrize(("values", "word"), [
    ({"modle": {}}, "modle"),
    ({"data": {"input_sise": [64, 64]}}, "input_sise"),
    ({"model": {"class_pth": "x"}}, "class_pth"),
])
def test_unknown_recipe_keys_are_one_line_errors(values: dict, word: str) -> None:
    with pytest.raises(RecipeError) as error:
        recipe_from_dict(values, "my.yaml")
    message = one_line(error)
    assert word in message and "my.yaml" in message


def test_missing_or_invalid_recipe_file(tmp_path: Path) -> None:
    with pytest.raises(RecipeError) as error:
        load_recipe(tmp_path / "nope.yaml")
    assert "not found" in one_line(error)
    broken = tmp_path / "broken.yaml"
    broken.write_text("model: [unclosed\n")
    with pytest.raises(RecipeError) as error:
        load_recipe(broken)
    assert "YAML" in one_line(error)


def test_bad_model_class_and_arguments() -> None:
    with pytest.raises(RecipeError) as error:
        import_class("otx_xai.models.classification.NoSuchModel")
    assert "NoSuchModel" in one_line(error)
    with pytest.raises(RecipeError) as error:
        build_model(ModelSpec(init_args={"backbone": "resnet18", "bogus": 1}), ["a", "b"])
    assert "bogus" in one_line(error)
    with pytest.raises(ValueError, match="unknown backbone"):
        build_model(ModelSpec(init_args={"backbone": "resnet1000"}), ["a", "b"])

"""Recipes: a YAML file naming the model class and its arguments, the data settings and the schedule."""

from __future__ import annotations

import importlib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from otx_xai.data.datamodule import DataConfig


class RecipeError(ValueError):
    """A recipe that cannot be used; the message names the problem and the fix."""


@dataclass
class ModelSpec:
    """Which LightningModule to build (``class_path``) and its arguments (label_names come from data)."""

    class_path: str = "otx_xai.models.classification.ImageClassifier"
    init_args: dict[str, Any] = field(default_factory=dict)


@dataclass
class Recipe:
    """A whole recipe: task, model, data and how long to train."""

    task: str = "classification"
    model: ModelSpec = field(default_factory=ModelSpec)
    data: DataConfig = field(default_factory=DataConfig)
    max_epochs: int = 10

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _known(cls: type, values: Any, where: str) -> dict[str, Any]:
    if not isinstance(values, dict):
        raise RecipeError(f"{where} must be a mapping of keys to values, not {type(values).__name__}")
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise RecipeError(f"unknown key(s) {', '.join(unknown)} in {where}: expected {', '.join(sorted(names))}")
    return values


def recipe_from_dict(values: dict[str, Any], where: str = "recipe") -> Recipe:
    """Build a Recipe from plain data, rejecting unknown keys with a one-line error."""
    values = _known(Recipe, values or {}, where)
    model = _known(ModelSpec, values.get("model") or {}, f"{where}: model")
    data = _known(DataConfig, values.get("data") or {}, f"{where}: data")
    if not isinstance(model.get("init_args", {}), dict) or not isinstance(model.get("class_path", ""), str):
        raise RecipeError(f"{where}: model needs class_path (a dotted class name) and init_args (a mapping)")
    try:
        data_config = DataConfig(**data)
    except (TypeError, ValueError) as error:
        raise RecipeError(f"{where}: data: {error}") from None
    epochs = values.get("max_epochs", 10)
    if not isinstance(epochs, int) or epochs < 1:
        raise RecipeError(f"{where}: max_epochs must be a positive integer, not {epochs!r}")
    task = values.get("task", "classification")
    if not isinstance(task, str):
        raise RecipeError(f"{where}: task must be a name such as classification or detection")
    return Recipe(task=task, model=ModelSpec(**model), data=data_config, max_epochs=epochs)


def load_recipe(path: str | Path) -> Recipe:
    """Read a recipe YAML file."""
    path = Path(path)
    if not path.is_file():
        raise RecipeError(f"recipe {path} not found: pass an existing YAML file (see recipes/)")
    try:
        values = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise RecipeError(f"recipe {path} is not valid YAML: {str(error).splitlines()[0]}") from None
    return recipe_from_dict(values, str(path))


def import_class(class_path: str) -> type:
    """The class named by a dotted path."""
    module_name, _, name = class_path.rpartition(".")
    try:
        return getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError, ValueError):
        raise RecipeError(f"cannot import model class {class_path!r}: check model.class_path") from None


def build_model(spec: ModelSpec, label_names: list[str]) -> Any:
    """Instantiate the recipe's model for these labels."""
    cls = import_class(spec.class_path)
    try:
        return cls(label_names=label_names, **spec.init_args)
    except TypeError as error:
        raise RecipeError(f"bad model.init_args for {spec.class_path}: {error}") from None

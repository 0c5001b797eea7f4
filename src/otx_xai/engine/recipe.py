"""Recipes: a YAML file naming the model class and its arguments, the data settings and the schedule."""

from __future__ import annotations

import importlib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import openvino as ov
import yaml

from otx_xai.data.datamodule import DataConfig
from otx_xai.errors import UserError
from otx_xai.openvino.ir_file import read_model
from otx_xai.openvino.metadata import read_metadata


class RecipeError(UserError):
    """A recipe that cannot be used; the message names the problem and the fix."""


@dataclass
class ModelSpec:
    """Which LightningModule to build (``class_path``) and its arguments.

    Its label_names come from the data, or from ``label_names_file``: a text file with one class name
    per line, or ``torchvision`` for the categories in the metadata of the torchvision weights of
    ``init_args.backbone`` (ImageNet's 1000 names): the labels of pretrained ``weights`` whose
    classifier is kept, to explain a plain folder of images with no dataset labels.
    """

    class_path: str = "otx_xai.models.classification.ImageClassifier"
    init_args: dict[str, Any] = field(default_factory=dict)
    label_names_file: str | None = None


def model_label_names(spec: ModelSpec) -> list[str] | None:
    """The labels ``spec.label_names_file`` names, or None when it names none; a one-line error when
    the file is missing or empty."""
    source = spec.label_names_file
    if not source:
        return None
    if source == "torchvision":
        from otx_xai.models.weights import torchvision_categories

        return torchvision_categories(str(spec.init_args.get("backbone", "resnet18")))
    path = Path(source).expanduser()
    if not path.is_file():
        raise RecipeError(f"model.label_names_file {source!r} not found: pass a text file with one class name "
                          "per line, or 'torchvision' for the backbone's torchvision categories")
    names = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    if not names:
        raise RecipeError(f"model.label_names_file {source!r} holds no class name: write one name per line")
    return names


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
    if not isinstance(model.get("label_names_file") or "", str):
        raise RecipeError(f"{where}: model.label_names_file must be a file path or 'torchvision'")
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


def recipe_of_ir(xml_path: str) -> Recipe:
    """A Recipe (task and data settings) from an exported IR's metadata, for explaining it with no recipe.

    An IR otx_xai did not export gets a classification recipe with default data settings: its labels and
    preprocessing are resolved when it is loaded (``IRModel`` with the ``--ir.*`` flags or its rt_info).
    """
    meta = read_metadata(read_model(ov.Core(), xml_path))  # a missing or broken file: a one-line UserError
    if not meta:
        return Recipe(task="classification", data=DataConfig())
    data = DataConfig(input_size=tuple(meta["input_size"]), mean=list(meta["mean"]), std=list(meta["std"]),
                      letterbox=bool(meta.get("letterbox", False)))
    return Recipe(task=meta["task"], data=data)

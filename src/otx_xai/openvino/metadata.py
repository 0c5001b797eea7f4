"""What an exported IR carries in rt_info so it can be run and explained with no checkpoint or recipe."""

from __future__ import annotations

import json
from typing import Any

import openvino as ov

from otx_xai.errors import MissingFileError

RT_SECTION = "otx_xai"
XAI_OUTPUTS = ("feature_vector", "saliency_map", "feature_map")
BOX_SALIENCY_MAP = "box_saliency_map"  # detectors' per-box maps: an extra XAI output, not required of an IR


def write_metadata(model: ov.Model, values: dict[str, Any]) -> None:
    """Store each value (JSON-encoded) under ``rt_info/otx_xai/<key>``."""
    for key, value in values.items():
        model.set_rt_info(json.dumps(value), [RT_SECTION, key])


def read_metadata(model: ov.Model) -> dict[str, Any]:
    """The values written by ``write_metadata``; empty when the IR was not exported by otx_xai."""
    if not model.has_rt_info([RT_SECTION]):
        return {}
    section = model.get_rt_info([RT_SECTION])
    values = section.astype(dict) if hasattr(section, "astype") else dict(section)
    return {key: json.loads(value.astype(str)) for key, value in values.items()}


def recipe_of_ir(xml_path: str) -> Any:
    """A Recipe (task and data settings) from an exported IR's metadata, for explaining it with no recipe.

    An IR otx_xai did not export gets a classification recipe with default data settings: its labels and
    preprocessing are resolved when it is loaded (``IRModel`` with the ``--ir.*`` flags or its rt_info).
    """
    from pathlib import Path

    from otx_xai.data.datamodule import DataConfig
    from otx_xai.engine.recipe import Recipe

    if not Path(xml_path).is_file():
        raise MissingFileError(f"IR {xml_path} not found: export with `otx export` first")
    meta = read_metadata(ov.Core().read_model(str(xml_path)))
    if not meta:
        return Recipe(task="classification", data=DataConfig())
    data = DataConfig(input_size=tuple(meta["input_size"]), mean=list(meta["mean"]), std=list(meta["std"]),
                      letterbox=bool(meta.get("letterbox", False)))
    return Recipe(task=meta["task"], data=data)

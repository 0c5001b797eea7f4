"""What an exported IR carries in rt_info so it can be run and explained with no checkpoint or recipe."""

from __future__ import annotations

import json
from typing import Any

import openvino as ov

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

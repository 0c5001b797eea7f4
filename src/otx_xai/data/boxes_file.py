"""``boxes.json``: ground-truth boxes of a classification folder, for the pointing game.

It maps an image's path relative to the data folder (``/``-separated) to its boxes, in pixels of the
original image, in any of three forms::

    {"circle/0001.png": [12, 8, 40, 36]}                          one box
    {"circle/0001.png": [[12, 8, 40, 36], [50, 50, 60, 70]]}      several boxes
    {"circle/0001.png": {"box": [12, 8, 40, 36]}}                 what the shapes generator writes (other
                                                                   keys, e.g. "label", are ignored)

Anything else is a one-line error naming the file, the entry and these forms.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from otx_xai.data.folder_files import BOXES_FILE
from otx_xai.errors import UserError

EXPECTED_FORMS = ('{"rel/path.png": [x1, y1, x2, y2]}, a list of such boxes, or '
                  '{"rel/path.png": {"box": [x1, y1, x2, y2]}} (pixels of the original image)')


def _is_box(value: Any) -> bool:
    if not isinstance(value, list) or len(value) != 4:
        return False
    if not all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in value):
        return False
    return value[2] >= value[0] and value[3] >= value[1]


def _entry_boxes(value: Any) -> list[list[float]] | None:
    """The boxes of one entry in any accepted form, or None when it is none of them."""
    if isinstance(value, dict) and "box" in value:  # other keys ("label") are notes for people
        value = value["box"]
    if _is_box(value):
        return [[float(v) for v in value]]
    if isinstance(value, list) and value and all(_is_box(box) for box in value):
        return [[float(v) for v in box] for box in value]
    return None


def read_boxes(root: Path) -> dict[str, list[list[float]]]:
    """``{relative path: [[x1, y1, x2, y2], ...]}`` from ``<root>/boxes.json`` (empty when there is none)."""
    path = root / BOXES_FILE
    if not path.is_file():
        return {}
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise UserError(f"{path} is not valid JSON ({str(error).splitlines()[0]}): write {EXPECTED_FORMS}") \
            from None
    if not isinstance(document, dict):
        raise UserError(f"{path} holds a JSON {type(document).__name__}, not an object mapping image paths to "
                        f"boxes: write {EXPECTED_FORMS}")
    boxes = {}
    for key, value in document.items():
        entry = _entry_boxes(value)
        if entry is None:
            shown = json.dumps(value)
            shown = shown if len(shown) <= 60 else shown[:57] + "..."
            raise UserError(f"{path}: the entry {key!r} is {shown}, not boxes: write {EXPECTED_FORMS}")
        boxes[key] = entry
    return boxes

"""The records every dataset reader produces: images with their labels and boxes, per subset.

The readers (``classification_records``, ``coco``, ``voc``, ``object_records``) import from here and
never the other way round.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from otx_xai.errors import UserError

SUBSETS = ("train", "val", "test")


class DatasetError(UserError):
    """A data_root that cannot be used; the message names the problem and the fix."""


@dataclass
class ImageRecord:
    """One image of a dataset: its file, unique id, labels and (optional) ground-truth boxes."""

    path: str
    image_id: str
    labels: list[int] = field(default_factory=list)
    boxes: list[list[float]] = field(default_factory=list)


@dataclass
class DatasetRecords:
    """Records per subset and the label names (index = class index)."""

    subsets: dict[str, list[ImageRecord]]
    label_names: list[str]
    labelled: bool = True


def sanitize_id(text: str) -> str:
    """Keep ``[A-Za-z0-9_]``; everything else becomes ``_``."""
    return re.sub(r"[^A-Za-z0-9_]", "_", text).strip("_") or "image"


def unique_ids(bases: list[str]) -> list[str]:
    """Sanitized ids made unique by a numeric suffix (``a_b``, ``a_b_2``, ...), in order."""
    taken: set[str] = set()
    ids = []
    for raw in bases:
        base = sanitize_id(raw)
        image_id, count = base, 1
        while image_id in taken:  # a suffixed id may itself be another file's name ("a b", "a_b", "a_b_2")
            count += 1
            image_id = f"{base}_{count}"
        taken.add(image_id)
        ids.append(image_id)
    return ids

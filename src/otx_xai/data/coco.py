"""Reading a COCO ``data_root`` (detection, instance segmentation) through datumaro.

Layout: ``<root>/annotations/instances_<subset>.json`` with the images under ``<root>/images/<subset>/``
(or ``<root>/images/``) for subsets train, val and test. Labels are 0-based indices in category order
(COCO category ids ascending), taken from the train file when there is one; boxes are x1, y1, x2, y2
and polygons flat ``[x, y, x, y, ...]`` lists, both in original-image pixels.
A folder of plain images (no annotations) is read as an unlabelled test subset, for predict / explain.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import datumaro as dm
import numpy as np
from datumaro.plugins.data_formats.coco.base import CocoInstancesBase

from otx_xai.data.folder_files import has_images_at_top, plain_folder_files, relative_ids
from otx_xai.data.records import SUBSETS, DatasetError, DatasetRecords, ImageRecord, unique_ids

ANNOTATIONS_DIR = "annotations"
COCO_HINT = ("detection and instance segmentation read COCO: <root>/annotations/instances_<subset>.json "
             "with images under <root>/images/<subset>/")


@dataclass
class CocoRecord(ImageRecord):
    """An image with its objects: ``labels[i]``, ``boxes[i]`` and ``polygons[i]`` describe object i.

    ``polygons[i]`` holds the object's parts, each a flat ``[x, y, ...]`` list (empty when the object
    has no polygon, e.g. an RLE mask, which this reader does not decode).
    """

    polygons: list[list[list[float]]] = field(default_factory=list)


def annotation_file(root: Path, subset: str) -> Path:
    """Where the annotations of ``subset`` live."""
    return root / ANNOTATIONS_DIR / f"instances_{subset}.json"


def _read_subset(path: Path, subset: str) -> dm.Dataset:
    try:
        return dm.Dataset.from_extractors(CocoInstancesBase(str(path), subset=subset))
    except Exception as error:  # datumaro raises many types for one cause: an unusable file
        first = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise DatasetError(f"cannot read COCO annotations {path}: {first}; {COCO_HINT}") from None


def _objects(item: dm.DatasetItem) -> tuple[list[int], list[list[float]], list[list[list[float]]]]:
    """Labels, boxes and polygons of one item, grouped by annotation id (a box and its polygon parts)."""
    boxes: dict[int, tuple[int, list[float]]] = {}
    parts: dict[int, list[list[float]]] = {}
    for annotation in item.annotations:
        if annotation.label is None:
            continue
        if annotation.type == dm.AnnotationType.bbox:
            boxes[annotation.id] = (annotation.label, [float(v) for v in annotation.points])
        elif annotation.type == dm.AnnotationType.polygon:
            parts.setdefault(annotation.id, []).append([float(v) for v in annotation.points])
    ids = sorted(boxes)
    return [boxes[i][0] for i in ids], [boxes[i][1] for i in ids], [parts.get(i, []) for i in ids]


def _subset_records(dataset: dm.Dataset, names: list[str]) -> list[CocoRecord]:
    """Records sorted by path, labels remapped by name onto ``names``, ids unique within the subset."""
    own = [c.name for c in dataset.categories()[dm.AnnotationType.label]]
    remap = {i: names.index(n) for i, n in enumerate(own) if n in names}
    items = sorted(dataset, key=lambda it: it.media.path)
    records = []
    for item, image_id in zip(items, unique_ids([item.id for item in items]), strict=True):
        labels, boxes, polygons = _objects(item)
        kept = [i for i, label in enumerate(labels) if label in remap]
        records.append(CocoRecord(item.media.path, image_id, [remap[labels[i]] for i in kept],
                                  [boxes[i] for i in kept], [polygons[i] for i in kept]))
    return records


def _unlabelled(root: Path) -> DatasetRecords | None:
    """A plain folder of images as an unlabelled test subset; None when it holds no images at the top."""
    if not has_images_at_top(root):
        return None
    paths = plain_folder_files(root)
    records = [CocoRecord(str(path), image_id) for path, image_id in zip(paths, relative_ids(paths, root), strict=True)]
    return DatasetRecords({"test": records}, [], labelled=False)


def read_coco_records(data_root: str | Path) -> DatasetRecords:
    """Records per subset of a COCO ``data_root`` (or of a plain image folder, unlabelled)."""
    root = Path(data_root)
    if not root.is_dir():
        raise DatasetError(f"data_root {root} is not a folder: pass the COCO dataset folder; {COCO_HINT}")
    files = {s: annotation_file(root, s) for s in SUBSETS if annotation_file(root, s).is_file()}
    if not files:
        plain = _unlabelled(root)
        if plain is not None:
            return plain
        raise DatasetError(f"{root} has no annotations/instances_<subset>.json (class folders are for "
                           f"classification recipes): {COCO_HINT}")
    datasets = {s: _read_subset(path, s) for s, path in files.items()}
    first = datasets["train"] if "train" in datasets else next(iter(datasets.values()))
    names = [c.name for c in first.categories()[dm.AnnotationType.label]]
    subsets = {s: _subset_records(d, names) for s, d in datasets.items()}
    if not any(r.boxes for records in subsets.values() for r in records):
        raise DatasetError(f"the COCO annotations under {root / ANNOTATIONS_DIR} hold no bounding boxes: "
                           "give every object a 'bbox' [x, y, width, height] and a 'category_id'")
    return DatasetRecords(subsets, names)


def rasterize_polygons(record: CocoRecord, height: int, width: int) -> np.ndarray:
    """The record's objects as (N, height, width) bool masks at original size (parts filled, merged)."""
    masks = np.zeros((len(record.polygons), height, width), dtype=np.uint8)
    for mask, parts in zip(masks, record.polygons, strict=True):
        shapes = [np.round(np.asarray(p, dtype=np.float64).reshape(-1, 2)).astype(np.int32) for p in parts]
        if shapes:
            cv2.fillPoly(mask, shapes, 1)
    return masks.astype(bool)

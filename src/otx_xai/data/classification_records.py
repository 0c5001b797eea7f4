"""Finding a dataset's images and labels through datumaro, split into train / val / test.

Layouts of a classification ``data_root``:
- ImageNet-style class folders ``<root>/<label>/<image>``, split by a fixed seed;
- COCO (``<root>/annotations/instances_<subset>.json``) or VOC: an image's labels are its objects' categories
  (multilabel), their boxes the ground truth of the pointing game;
- the same under subset folders ``<root>/{train,val,test}/<label>/<image>``;
- a plain folder of unlabelled images ``<root>/<image>`` (predict / explain only).
A ``boxes.json`` at the root (written by the shapes generator) adds ground-truth boxes per image.
"""

from __future__ import annotations

import json
from pathlib import Path

import datumaro as dm
import numpy as np
from datumaro.plugins.data_formats.image_dir import ImageDirBase
from datumaro.plugins.data_formats.imagenet import ImagenetBase

from otx_xai.data.object_records import has_object_annotations, read_object_records
from otx_xai.data.records import SUBSETS, DatasetError, DatasetRecords, ImageRecord, unique_ids

SPLIT_FRACTIONS = (0.7, 0.15)  # train, val; the rest is test


def _unique_ids(paths: list[Path], root: Path) -> list[str]:
    """Ids from paths relative to root, without extension."""
    return unique_ids([str(path.relative_to(root).with_suffix("")) for path in paths])


def _has_images_at_top(root: Path) -> bool:
    from datumaro.util.image import IMAGE_EXTENSIONS

    return any(p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS for p in root.iterdir())


def _read_folder(path: Path, labelled: bool, label_names: list[str] | None) -> tuple[list[str], list]:
    """(label names, [(image path, label index or None)]) of one folder, through datumaro."""
    if not labelled:
        dataset = dm.Dataset.from_extractors(ImageDirBase(str(path)))
        return [], sorted((Path(item.media.path), None) for item in dataset)
    dataset = dm.Dataset.from_extractors(ImagenetBase(str(path)))
    names = [c.name for c in dataset.categories()[dm.AnnotationType.label]]
    remap = {i: (label_names or names).index(n) if n in (label_names or names) else None
             for i, n in enumerate(names)}
    pairs = []
    for item in dataset:
        labels = [a.label for a in item.annotations if a.type == dm.AnnotationType.label]
        pairs.append((Path(item.media.path), remap[labels[0]] if labels else None))
    return names, sorted(pairs, key=lambda p: str(p[0]))


def _boxes(root: Path) -> dict[str, list[float]]:
    path = root / "boxes.json"
    if not path.is_file():
        return {}
    return {k: v["box"] for k, v in json.loads(path.read_text()).items()}


def _records(pairs: list, root: Path, boxes: dict[str, list[float]]) -> list[ImageRecord]:
    ids = _unique_ids([p for p, _ in pairs], root)
    records = []
    for (path, label), image_id in zip(pairs, ids, strict=True):
        key = path.relative_to(root).as_posix()
        records.append(ImageRecord(str(path), image_id, [] if label is None else [label],
                                   [boxes[key]] if key in boxes else []))
    return records


def _split(records: list[ImageRecord], seed: int) -> dict[str, list[ImageRecord]]:
    order = np.random.default_rng(seed).permutation(len(records))
    n_train = max(1, int(round(len(records) * SPLIT_FRACTIONS[0])))
    n_val = max(1, int(round(len(records) * SPLIT_FRACTIONS[1]))) if len(records) > 2 else 0
    picked = [records[i] for i in order]
    return {"train": picked[:n_train], "val": picked[n_train : n_train + n_val],
            "test": picked[n_train + n_val :] or picked[-1:]}


def read_classification_records(data_root: str | Path, seed: int = 0) -> DatasetRecords:
    """Records of a classification data_root in any of the supported layouts."""
    root = Path(data_root)
    if not root.is_dir():
        raise DatasetError(f"data_root {root} is not a folder: pass the folder holding the images")
    if has_object_annotations(root):  # COCO or VOC: an image's labels are the categories of its objects
        return read_object_records(root)
    boxes = _boxes(root)
    if all((root / s).is_dir() for s in ("train", "val")):
        names, _ = _read_folder(root / "train", True, None)
        subsets = {}
        for subset in SUBSETS:
            if (root / subset).is_dir():
                _, pairs = _read_folder(root / subset, True, names)
                subsets[subset] = _records(pairs, root, boxes)
        records = DatasetRecords(subsets, names)
    elif _has_images_at_top(root):
        _, pairs = _read_folder(root, False, None)
        records = DatasetRecords({"test": _records(pairs, root, boxes)}, [], labelled=False)
    else:
        names, pairs = _read_folder(root, True, None)
        records = DatasetRecords(_split(_records(pairs, root, boxes), seed), names)
    if not any(records.subsets.values()):
        raise DatasetError(
            f"no images found under {root}: expected <root>/<label>/<image>, "
            "<root>/{train,val,test}/<label>/<image> or a folder of images"
        )
    return records

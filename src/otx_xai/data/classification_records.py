"""Finding a dataset's images and labels, split into train / val / test.

The folders are listed by ``folder_files`` (ids unique; in a plain folder every file is an input, in class
folders every file with an image suffix, ``.gif`` included); COCO and VOC are read
through datumaro. Layouts of a classification ``data_root``:
- ImageNet-style class folders ``<root>/<label>/<image>``, split by a fixed seed;
- COCO (``<root>/annotations/instances_<subset>.json``) or VOC: an image's labels are its objects' categories
  (multilabel), their boxes the ground truth of the pointing game;
- the same under subset folders ``<root>/{train,val,test}/<label>/<image>``;
- a plain folder of unlabelled images ``<root>/<image>`` (predict / explain only).
A ``boxes.json`` at the root adds ground-truth boxes per image (``boxes_file`` says its forms).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from otx_xai.data.boxes_file import read_boxes
from otx_xai.data.folder_files import (
    IMAGE_SUFFIXES,
    class_folders,
    folder_files,
    has_images_at_top,
    plain_folder_files,
    relative_ids,
)
from otx_xai.data.object_records import has_object_annotations, read_object_records
from otx_xai.data.records import SUBSETS, DatasetError, DatasetRecords, ImageRecord

SPLIT_FRACTIONS = (0.7, 0.15)  # train, val; the rest is test


def _read_class_folders(path: Path, label_names: list[str] | None) -> tuple[list[str], list]:
    """(label names, [(image path, label index or None)]) of a folder of class folders: each sub-folder is a
    label (``label_names`` fixes their order, e.g. the train subset's), every file with an image suffix in it
    an image of it (a training set's notes and thumbnails databases stay out of training)."""
    names = class_folders(path)
    order = label_names or names
    pairs = [(image, order.index(name) if name in order else None)
             for name in names for image in folder_files(path / name) if image.suffix.lower() in IMAGE_SUFFIXES]
    return names, sorted(pairs, key=lambda pair: str(pair[0]))


def _records(pairs: list, root: Path, boxes: dict[str, list[list[float]]]) -> list[ImageRecord]:
    ids = relative_ids([p for p, _ in pairs], root)
    records = []
    for (path, label), image_id in zip(pairs, ids, strict=True):
        image_boxes = boxes.get(path.relative_to(root).as_posix(), [])
        labels = [] if label is None else [label] * max(1, len(image_boxes))  # one label per box: pointing game
        records.append(ImageRecord(str(path), image_id, labels, image_boxes))
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
    boxes = read_boxes(root)
    if all((root / s).is_dir() for s in ("train", "val")):
        names = class_folders(root / "train")
        subsets = {}
        for subset in SUBSETS:
            if (root / subset).is_dir():
                _, pairs = _read_class_folders(root / subset, names)
                subsets[subset] = _records(pairs, root, boxes)
        records = DatasetRecords(subsets, names)
    elif has_images_at_top(root):
        pairs = [(path, None) for path in plain_folder_files(root)]
        records = DatasetRecords({"test": _records(pairs, root, boxes)}, [], labelled=False)
    else:
        names, pairs = _read_class_folders(root, None)
        records = DatasetRecords(_split(_records(pairs, root, boxes), seed), names)
    if not any(records.subsets.values()):
        raise DatasetError(
            f"no images found under {root}: expected <root>/<label>/<image>, "
            "<root>/{train,val,test}/<label>/<image> or a folder of images"
        )
    return records

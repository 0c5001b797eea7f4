"""Object-annotated datasets (boxes per image): COCO or VOC, whichever the folder holds."""

from __future__ import annotations

from pathlib import Path

from otx_xai.data.coco import ANNOTATIONS_DIR, read_coco_records
from otx_xai.data.records import DatasetRecords
from otx_xai.data.voc import is_voc, read_voc_records


def has_object_annotations(root: Path) -> bool:
    """Whether ``root`` holds COCO or VOC annotations."""
    return (root / ANNOTATIONS_DIR).is_dir() or is_voc(root)


def read_object_records(data_root: str | Path) -> DatasetRecords:
    """Records per subset of a COCO or VOC ``data_root`` (a plain image folder reads as unlabelled)."""
    root = Path(data_root)
    return read_voc_records(root) if is_voc(root) else read_coco_records(root)

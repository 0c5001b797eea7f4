"""Reading a Pascal VOC detection ``data_root`` through datumaro.

Layout: ``<root>/Annotations/<id>.xml``, ``<root>/ImageSets/Main/<subset>.txt`` and
``<root>/JPEGImages/``; labels come from ``labelmap.txt`` when present (VOC's own 20 classes otherwise),
without the background class. Boxes are x1, y1, x2, y2 in original-image pixels.
"""

from __future__ import annotations

from pathlib import Path

import datumaro as dm

from otx_xai.data.coco import CocoRecord
from otx_xai.data.records import DatasetError, DatasetRecords, unique_ids

VOC_HINT = "VOC reads <root>/Annotations/*.xml, <root>/ImageSets/Main/<subset>.txt and <root>/JPEGImages/"


def is_voc(root: Path) -> bool:
    """Whether ``root`` looks like a VOC dataset."""
    return (root / "Annotations").is_dir() and (root / "ImageSets" / "Main").is_dir()


def read_voc_records(data_root: str | Path) -> DatasetRecords:
    """Records per subset of a VOC detection dataset."""
    root = Path(data_root)
    try:
        dataset = dm.Dataset.import_from(str(root), "voc_detection")
    except Exception as error:  # datumaro raises many types for one cause: an unusable dataset
        first = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise DatasetError(f"cannot read VOC dataset {root}: {first}; {VOC_HINT}") from None
    categories = [c.name for c in dataset.categories()[dm.AnnotationType.label]]
    names = [name for name in categories if name != "background"]
    remap = {i: names.index(name) for i, name in enumerate(categories) if name in names}
    subsets: dict[str, list[CocoRecord]] = {}
    for subset, part in dataset.subsets().items():
        items = sorted(part, key=lambda item: item.media.path)
        records = []
        for item, image_id in zip(items, unique_ids([item.id for item in items]), strict=True):
            boxes = [a for a in item.annotations if a.type == dm.AnnotationType.bbox and a.label in remap]
            records.append(CocoRecord(item.media.path, image_id, [remap[a.label] for a in boxes],
                                      [[float(v) for v in a.points] for a in boxes], [[] for _ in boxes]))
        subsets[subset] = records
    if not any(r.boxes for records in subsets.values() for r in records):
        raise DatasetError(f"the VOC annotations under {root / 'Annotations'} hold no boxes: {VOC_HINT}")
    return DatasetRecords(subsets, names)

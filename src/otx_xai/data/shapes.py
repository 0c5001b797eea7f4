"""The synthetic "shapes" dataset: coloured shapes on textured noise, with every object's box saved.

Because each object's box (and polygon) is known, saliency quality is measurable: the peak of a class
map should fall inside that class's box (the pointing game). Each class has its own hue (with jitter)
and its own shape, so a small CNN learns it in a few epochs on the CPU.

Layouts:
- ``classification``: ``<root>/<label>/<id>.png`` (one object per image) and ``<root>/boxes.json``
  mapping each image's path relative to root to ``{"label": ..., "box": [x1, y1, x2, y2]}``.
- ``coco``: ``<root>/images/<subset>/<id>.png`` and ``<root>/annotations/instances_<subset>.json``
  (boxes, polygons and areas; several objects per image) for subsets train, val and test.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

SHAPE_CLASSES = ("circle", "square", "triangle")
_HUES = {"circle": 0, "square": 60, "triangle": 120}  # OpenCV hue (0..180): red, green, blue


@dataclass
class ShapeObject:
    """One drawn object: its class, polygon (x, y points) and box [x1, y1, x2, y2]."""

    label: str
    polygon: np.ndarray
    box: list[float]


def _textured_noise(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    coarse = rng.uniform(60, 190, size=(max(2, height // 16), max(2, width // 16), 3)).astype(np.float32)
    smooth = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    fine = rng.normal(0, 18, size=(height, width, 3))
    return np.clip(smooth + fine, 0, 255).astype(np.uint8)


def _polygon(label: str, cx: float, cy: float, radius: float, angle: float) -> np.ndarray:
    corners = {"circle": 24, "square": 4, "triangle": 3}[label]
    start = angle if label != "circle" else 0.0
    t = start + np.arange(corners) * 2 * np.pi / corners
    return np.stack([cx + radius * np.cos(t), cy + radius * np.sin(t)], axis=1).astype(np.float32)


def _colour(rng: np.random.Generator, label: str) -> tuple[int, int, int]:
    hue = (_HUES[label] + int(rng.integers(-8, 9))) % 180
    hsv = np.uint8([[[hue, int(rng.integers(170, 256)), int(rng.integers(170, 256))]]])
    b, g, r = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0]
    return int(b), int(g), int(r)


def draw_shapes_image(
    rng: np.random.Generator, labels: list[str], height: int, width: int
) -> tuple[np.ndarray, list[ShapeObject]]:
    """A BGR image with one non-overlapping shape per label, and the objects drawn."""
    image = _textured_noise(rng, height, width)
    objects: list[ShapeObject] = []
    short = min(height, width)
    for label in labels:
        for _ in range(50):
            radius = float(rng.uniform(0.14, 0.24) * short)
            cx = float(rng.uniform(radius, width - radius))
            cy = float(rng.uniform(radius, height - radius))
            polygon = _polygon(label, cx, cy, radius, float(rng.uniform(0, 2 * np.pi)))
            box = [float(polygon[:, 0].min()), float(polygon[:, 1].min()),
                   float(polygon[:, 0].max()), float(polygon[:, 1].max())]
            if all(_disjoint(box, other.box) for other in objects):
                break
        cv2.fillPoly(image, [np.round(polygon).astype(np.int32)], _colour(rng, label), lineType=cv2.LINE_8)
        objects.append(ShapeObject(label, polygon, box))
    return image, objects


def _disjoint(a: list[float], b: list[float]) -> bool:
    return a[2] < b[0] or b[2] < a[0] or a[3] < b[1] or b[3] < a[1]


def _random_size(rng: np.random.Generator, image_size: int) -> tuple[int, int]:
    """Height and width around ``image_size`` with aspect ratios from 3:4 to 4:3."""
    aspect = float(rng.uniform(0.75, 1.34))
    return image_size, max(16, int(round(image_size * aspect)))


def write_image(path: Path, image: np.ndarray) -> None:
    """Write a PNG through a temporary file so a reader never sees half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, encoded = cv2.imencode(".png", image)
    if not ok:
        raise OSError(f"could not encode {path}")
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(encoded.tobytes())
    tmp.replace(path)


def make_classification_shapes(
    root: str | Path, images_per_class: int = 30, image_size: int = 128, seed: int = 0
) -> Path:
    """Write the classification layout (class folders + boxes.json) and return its root."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    boxes: dict[str, dict[str, object]] = {}
    for label in SHAPE_CLASSES:
        for index in range(images_per_class):
            image, objects = draw_shapes_image(rng, [label], *_random_size(rng, image_size))
            relative = f"{label}/{label}_{index:04d}.png"
            write_image(root / relative, image)
            boxes[relative] = {"label": label, "box": objects[0].box}
    (root / "boxes.json").write_text(json.dumps(boxes, indent=1))
    return root


def make_coco_shapes(
    root: str | Path,
    images_per_subset: dict[str, int] | None = None,
    image_size: int = 160,
    max_objects: int = 3,
    seed: int = 0,
) -> Path:
    """Write the COCO layout (boxes, polygons; 1..max_objects objects per image) and return its root."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    subsets = images_per_subset or {"train": 48, "val": 12, "test": 12}
    categories = [{"id": i + 1, "name": name, "supercategory": ""} for i, name in enumerate(SHAPE_CLASSES)]
    category_id = {c["name"]: c["id"] for c in categories}
    for subset, count in subsets.items():
        images, annotations = [], []
        for index in range(count):
            labels = list(rng.choice(SHAPE_CLASSES, size=int(rng.integers(1, max_objects + 1))))
            height, width = _random_size(rng, image_size)
            image, objects = draw_shapes_image(rng, labels, height, width)
            name = f"{subset}_{index:04d}.png"
            write_image(root / "images" / subset / name, image)
            image_id = index + 1
            images.append({"id": image_id, "file_name": name, "height": height, "width": width})
            for obj in objects:
                x1, y1, x2, y2 = obj.box
                annotations.append({
                    "id": len(annotations) + 1, "image_id": image_id, "category_id": category_id[obj.label],
                    "bbox": [x1, y1, x2 - x1, y2 - y1], "area": float(cv2.contourArea(obj.polygon)),
                    "segmentation": [obj.polygon.flatten().tolist()], "iscrowd": 0,
                })
        document = {"images": images, "annotations": annotations, "categories": categories}
        path = root / "annotations" / f"instances_{subset}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(document))
    return root

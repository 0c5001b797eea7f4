"""One PNG per metric: the worst and the best images of a run by that metric, as overlay thumbnails.

Row one holds the ``count`` worst images (worst first), row two the ``count`` best (best first); with
fewer than ``2 * count`` scored images the rows share images. Each thumbnail shows the map of the
image's top predicted label (else its first map) and is captioned with the image id and the value.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np

from otx_xai.data.records import sanitize_id
from otx_xai.errors import UserError
from otx_xai.explain.dump import atomic_write_bytes
from otx_xai.report.csv_index import higher_is_better, image_metrics, load_index, map_targets, predicted_labels
from otx_xai.report.numbers import for_people

THUMB = 128
PAD = 8
TITLE = 24
CAPTION = 18
_FONT = cv2.FONT_HERSHEY_SIMPLEX
_BACKGROUND = (255, 255, 255)
_EMPTY = (200, 200, 200)


def ranked_images(images: list[dict[str, Any]], metric: str) -> list[tuple[dict[str, Any], float]]:
    """Entries that have ``metric``, worst first (ties keep index order)."""
    scored = [(entry, image_metrics(entry)[metric]) for entry in images if metric in image_metrics(entry)]
    sign = 1.0 if higher_is_better(metric) else -1.0
    return sorted(scored, key=lambda pair: sign * pair[1])


def _map_file(entry: dict[str, Any]) -> str | None:
    targets = map_targets(entry)
    top = predicted_labels(entry)[:1]
    wanted = [t for t in targets if top and t.name == sanitize_id(top[0])]
    chosen = wanted or targets
    return chosen[0].shown if chosen else None


def _thumbnail(run_dir: Path, entry: dict[str, Any]) -> np.ndarray:
    """The entry's map letterboxed into a THUMB x THUMB BGR tile (grey when it cannot be read)."""
    tile = np.full((THUMB, THUMB, 3), _EMPTY, dtype=np.uint8)
    relative = _map_file(entry)
    image = cv2.imread(str(run_dir / relative), cv2.IMREAD_COLOR) if relative else None
    if image is None or image.size == 0:
        return tile
    height, width = image.shape[:2]
    scale = THUMB / max(height, width)
    new_h, new_w = max(1, round(height * scale)), max(1, round(width * scale))
    resized = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    top, left = (THUMB - new_h) // 2, (THUMB - new_w) // 2
    tile[top:top + new_h, left:left + new_w] = resized
    return tile


def _put_text(canvas: np.ndarray, text: str, x: int, baseline: int, width: int, scale: float) -> None:
    """Draw ASCII ``text`` shortened with '~' until it fits ``width`` pixels."""
    text = text.encode("ascii", "replace").decode()
    while len(text) > 1 and cv2.getTextSize(text, _FONT, scale, 1)[0][0] > width:
        text = text[: max(1, len(text) - 2)] + "~"
    cv2.putText(canvas, text, (x, baseline), _FONT, scale, (0, 0, 0), 1, cv2.LINE_AA)


def _row(run_dir: Path, title: str, items: list[tuple[dict[str, Any], float]], columns: int) -> np.ndarray:
    width = PAD + columns * (THUMB + PAD)
    row = np.full((TITLE + THUMB + CAPTION, width, 3), _BACKGROUND, dtype=np.uint8)
    _put_text(row, title, PAD, TITLE - 7, width - 2 * PAD, 0.55)
    for column, (entry, value) in enumerate(items):
        x = PAD + column * (THUMB + PAD)
        row[TITLE:TITLE + THUMB, x:x + THUMB] = _thumbnail(run_dir, entry)
        _put_text(row, f"{for_people(value)} {entry.get('image_id', '')}", x, TITLE + THUMB + CAPTION - 5, THUMB, 0.35)
    return row


def contact_sheet(run_dir: Path, metric: str, count: int = 8) -> np.ndarray:
    """The contact sheet as a BGR image: a row of the worst images, a row of the best."""
    if count < 1:
        raise UserError(f"count must be at least 1, got {count}")
    index = load_index(run_dir)
    ranked = ranked_images(index["images"], metric)
    if not ranked:
        raise UserError(f"no image of {run_dir} has a value for metric {metric!r}")
    columns = min(count, len(ranked))
    direction = "higher is better" if higher_is_better(metric) else "lower is better"
    worst = _row(run_dir, f"worst {columns} by {metric} ({direction})", ranked[:columns], columns)
    best = _row(run_dir, f"best {columns} by {metric}", ranked[::-1][:columns], columns)
    spacer = np.full((PAD, worst.shape[1], 3), _BACKGROUND, dtype=np.uint8)
    return np.concatenate([worst, spacer, best, spacer])


def write_contact_sheet(run_dir: Path, metric: str, count: int = 8) -> Path:
    """Write ``<run>/contact_sheet_<metric>.png`` (atomically) and return its path."""
    run_dir = Path(run_dir)
    ok, encoded = cv2.imencode(".png", contact_sheet(run_dir, metric, count))
    if not ok:
        raise OSError("PNG encoding failed")
    path = run_dir / f"contact_sheet_{sanitize_id(metric)}.png"
    atomic_write_bytes(path, encoded.tobytes())
    return path

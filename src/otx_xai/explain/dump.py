"""Writing maps and the run index: every file through a temp file and a rename, never half-written."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from otx_xai.data.records import sanitize_id
from otx_xai.errors import WriteError
from otx_xai.explain.index_summary import dedupe

INDEX_VERSION = 1
SALIENCY_DIR = "saliency_maps"  # the folder OTX's tutorial names: <run>/saliency_maps/
LEGACY_SALIENCY_DIR = "saliency_map"  # runs written before the rename; --resume finishes them in it
INDEX_JSON = "explain_index.json"
INDEX_LINES = "explain_index.jsonl"


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see either nothing or the whole file; a WriteError naming
    ``path`` when the system refuses (disk full, read-only folder), with no temporary file left."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as error:
        raise WriteError(path, error) from None
    finally:
        tmp.unlink(missing_ok=True)


def encode_png(image: np.ndarray) -> bytes:
    """PNG bytes of a grey (H, W) or RGB (H, W, 3) uint8 image."""
    if image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    ok, encoded = cv2.imencode(".png", image)
    if not ok:
        raise OSError("PNG encoding failed")
    return encoded.tobytes()


def encode_npy(array: np.ndarray) -> bytes:
    """``.npy`` bytes of an array."""
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def map_file_stem(image_id: str, key: int | str, label_names: list[str]) -> str:
    """``<image_id>_class_<label>`` (or ``<image_id>_map_per_image``), sanitized."""
    if isinstance(key, str):
        return f"{image_id}_{key}"
    label = label_names[key] if key < len(label_names) else str(key)
    return f"{image_id}_class_{sanitize_id(label)}"


def saliency_dir_name(run_dir: Path) -> str:
    """The folder a run's maps go to: ``SALIENCY_DIR``, or the old name for a run started under it (resume)."""
    return LEGACY_SALIENCY_DIR if (run_dir / LEGACY_SALIENCY_DIR).is_dir() else SALIENCY_DIR


def box_map_file_stem(image_id: str, box_index: int, label: int, label_names: list[str]) -> str:
    """``<image_id>_box_<k>_<label>``, sanitized: the map of box ``k`` (its index in the image's detections)."""
    name = label_names[label] if 0 <= label < len(label_names) else str(label)
    return f"{image_id}_box_{box_index}_{sanitize_id(name)}"


def read_index_lines(path: Path) -> list[dict[str, Any]]:
    """The entries of a JSON-lines index, skipping a line torn by an interrupted run."""
    if not path.is_file():
        return []
    entries = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            entries.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return entries


def _drop_torn_tail(path: Path) -> None:
    """Cut a last line left without its newline by a killed writer."""
    if not path.is_file() or path.stat().st_size == 0:
        return
    data = path.read_bytes()
    if not data.endswith(b"\n"):
        path.write_bytes(data[: data.rfind(b"\n") + 1])


def completed_ids(run_dir: Path) -> set[str]:
    """Ids of the images a run's index holds whose files are all on disk (a resumed run skips them)."""
    return {entry["image_id"] for entry in read_index_lines(run_dir / INDEX_LINES)
            if all((run_dir / name).is_file() for name in entry.get("files", []))}


def remove_temp_files(run_dir: Path) -> None:
    """Delete temporary files an interrupted run left behind (never a finished file)."""
    for tmp in run_dir.rglob(".*.tmp"):
        tmp.unlink(missing_ok=True)


class RunIndex:
    """The run's index: one JSON line per image as it is done, one JSON document at the end.

    Opening an existing run folder continues its index (resume), and its maps folder (``maps_dir``, the
    old ``saliency_map/`` for a run written before the rename). ``lines_name`` is another file for the
    lines (a rank of a distributed run appends to its own).
    """

    def __init__(self, run_dir: Path, header: dict[str, Any], lines_name: str = INDEX_LINES) -> None:
        self.run_dir = run_dir
        self.maps_dir = saliency_dir_name(run_dir)
        self.header = {"version": INDEX_VERSION, **header}
        self.lines_path = run_dir / lines_name
        run_dir.mkdir(parents=True, exist_ok=True)
        _drop_torn_tail(self.lines_path)
        # unbuffered: each line reaches the OS as it is added, and a refused write leaves nothing queued
        self._lines = open(self.lines_path, "ab", buffering=0)  # noqa: SIM115 - closed in close()

    def add(self, entry: dict[str, Any]) -> None:
        """Record one image (appended and flushed at once; a line torn by a full disk is dropped on resume)."""
        try:
            line = memoryview((json.dumps(entry) + "\n").encode("utf-8"))
            while line:  # an unbuffered write may take part of the line (a disk filling up)
                line = line[self._lines.write(line):]
        except OSError as error:
            raise WriteError(self.lines_path, error) from None

    def entries(self) -> list[dict[str, Any]]:
        """Every entry written so far, one per image id."""
        return dedupe(read_index_lines(self.lines_path))

    def close_lines(self) -> None:
        """Close the lines file without writing the JSON document (a rank of a distributed run)."""
        self._lines.close()

    def close(self, summary: dict[str, Any]) -> Path:
        """Write the whole index as one JSON document and return its path."""
        entries = self.entries()
        self._lines.close()
        document = {**self.header, "summary": summary, "images": entries}
        path = self.run_dir / INDEX_JSON
        atomic_write_bytes(path, json.dumps(document, indent=1).encode())
        return path

"""A corpus of awkward image files inside the explained data: each is explained or recorded, never fatal."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import TrainedRun
from otx_xai import Engine
from otx_xai.data.records import sanitize_id

CORPUS_EXPLAINED = ("grey", "rgba", "sixteen_bit", "one_pixel", "very_large", sanitize_id("unicode ünï 名"),
                    "with_space",
                    "with_space_2")
CORPUS_FAILED = ("empty", "text_named_jpg", "truncated")  # OpenCV refuses a JPEG cut short


def _write(path: Path, image: np.ndarray) -> None:
    ok, data = cv2.imencode(path.suffix, image)
    assert ok
    path.write_bytes(data.tobytes())


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A plain folder with one file per awkward case."""
    root = tmp_path_factory.mktemp("corpus")
    rng = np.random.default_rng(0)
    colour = rng.integers(0, 255, size=(48, 64, 3), dtype=np.uint8)
    _write(root / "grey.png", colour[:, :, 0])
    _write(root / "rgba.png", np.dstack([colour, np.full((48, 64), 128, np.uint8)]))
    _write(root / "sixteen_bit.png", colour.astype(np.uint16) * 257)
    _write(root / "one_pixel.png", colour[:1, :1])
    _write(root / "very_large.png", np.zeros((12000, 12000, 3), np.uint8))
    _write(root / "unicode ünï 名.png", colour)
    _write(root / "with space.png", colour)  # sanitizes to with_space, like the next one
    _write(root / "with_space.jpg", colour)
    jpeg = cv2.imencode(".jpg", colour)[1].tobytes()
    (root / "truncated.jpg").write_bytes(jpeg[: len(jpeg) * 2 // 3])
    (root / "empty.png").write_bytes(b"")
    (root / "text_named_jpg.jpg").write_text("this is not an image\n")
    return root


def test_every_file_is_explained_or_recorded(trained_run: TrainedRun, corpus: Path, tmp_path: Path) -> None:
    engine = Engine(model=str(trained_run.recipe), data_root=corpus, work_dir=tmp_path / "ws",
                    checkpoint=trained_run.checkpoint)
    results = engine.explain(dump=True)
    index = json.loads((engine.last_explain_dir / "explain_index.json").read_text())
    by_id = {entry["image_id"]: entry for entry in index["images"]}
    assert sorted(by_id) == sorted(CORPUS_EXPLAINED + CORPUS_FAILED)
    for image_id in CORPUS_EXPLAINED:
        assert by_id[image_id]["error"] is None, by_id[image_id]
        assert by_id[image_id]["files"]
    for image_id in CORPUS_FAILED:
        assert "cannot read" in by_id[image_id]["error"]
        assert by_id[image_id]["files"] == []
    sources = {by_id["with_space"]["source_path"], by_id["with_space_2"]["source_path"]}
    assert {Path(p).name for p in sources} == {"with space.png", "with_space.jpg"}
    sizes = {r.info.image_id: r.info.original_size for r in results}
    assert sizes["one_pixel"] == (1, 1)
    assert max(sizes["very_large"]) <= 4096  # decoded at a reduced scale: no 432 MB frame in memory
    assert index["summary"]["failed"] == len(CORPUS_FAILED)

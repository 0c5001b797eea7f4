"""Property (hypothesis): random bytes, random file names (non-UTF-8 included) and random image sizes through the
folder reader and the CLI. Every run ends with exit 0 or a one-line error, and the index lists every input file
exactly once. The examples are drawn the same way on every run (the suite's "ci" profile derandomizes).
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import cv2
import numpy as np
import PIL.Image
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import TrainedRun, assert_clean_failure
from otx_xai.cli import main
from otx_xai.data.classification_records import read_classification_records
from otx_xai.data.image_io import printable_path

SUFFIXES = [b".png", b".jpg", b".gif", b".txt", b""]
# name bytes: no "/" or NUL (not allowed), no "\\" (its printable form could equal an escaped byte's); a
# leading "." makes a hidden file, which is not an input (the docs say so)
NAME_BYTES = st.binary(min_size=1, max_size=12).map(lambda raw: bytes(b for b in raw if b not in b"/\0\\")).filter(
    lambda raw: bool(raw) and not raw.startswith(b"."))


def _encoded(kind: str, height: int, width: int, seed: int) -> bytes:
    """An image of the given size (noise), encoded as PNG, JPEG or GIF."""
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    if kind == "gif":
        buffer = io.BytesIO()
        PIL.Image.fromarray(pixels).save(buffer, format="GIF")
        return buffer.getvalue()
    return cv2.imencode(f".{kind}", pixels)[1].tobytes()


CONTENT = st.one_of(
    st.binary(max_size=300),  # random bytes
    st.tuples(st.sampled_from(["png", "jpg", "gif"]), st.integers(1, 48), st.integers(1, 48), st.integers(0, 9))
    .map(lambda spec: _encoded(*spec)),
)
FOLDER = st.lists(st.tuples(NAME_BYTES, st.sampled_from(SUFFIXES), CONTENT), min_size=1, max_size=5,
                  unique_by=lambda item: item[0] + item[1])


def _write_folder(root: Path, files: list[tuple[bytes, bytes, bytes]]) -> list[bytes]:
    """Write the files (the first always a real PNG, so the folder reads as a plain folder of images); their
    paths as bytes."""
    root.mkdir(parents=True)
    paths = []
    for position, (name, suffix, content) in enumerate(files):
        if position == 0:
            suffix, content = b".png", _encoded("png", 9, 7, 0)
        path = os.fsencode(root) + b"/" + name + suffix
        if path in paths:  # the first file's name with .png may be another file's name
            continue
        with open(path, "wb") as handle:
            handle.write(content)
        paths.append(path)
    return paths


def _expected_sources(paths: list[bytes]) -> list[str]:
    return sorted(printable_path(os.fsdecode(path)) for path in paths)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(files=FOLDER)
def test_the_folder_reader_lists_every_file_once(tmp_path_factory: pytest.TempPathFactory,
                                                 files: list[tuple[bytes, bytes, bytes]]) -> None:
    root = tmp_path_factory.mktemp("fuzz_folder")
    paths = _write_folder(root / "data", files)
    records = read_classification_records(root / "data").subsets["test"]
    assert sorted(printable_path(record.path) for record in records) == _expected_sources(paths)
    assert len({record.image_id for record in records}) == len(records)


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(files=FOLDER)
def test_the_cli_ends_with_exit_0_or_one_line_and_indexes_every_file_once(
        trained_run: TrainedRun, tmp_path_factory: pytest.TempPathFactory, capfd: pytest.CaptureFixture,
        files: list[tuple[bytes, bytes, bytes]]) -> None:
    root = tmp_path_factory.mktemp("fuzz_cli")
    paths = _write_folder(root / "data", files)
    code = main(["explain", "--config", str(trained_run.recipe), "--checkpoint", str(trained_run.checkpoint),
                 "--data_root", str(root / "data"), "--work_dir", str(root / "ws"), "--dump", "True"])
    stderr = capfd.readouterr().err
    if code != 0:
        assert_clean_failure(code, stderr)
        assert code == 1, stderr
    index = json.loads(((root / "ws" / ".latest" / "explain").resolve() / "explain_index.json").read_text())
    assert sorted(entry["source_path"] for entry in index["images"]) == _expected_sources(paths)
    assert code == (0 if index["summary"]["explained"] else 1)

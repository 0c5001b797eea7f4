"""Reading a model file for OpenVINO: an IR (``.xml`` + ``.bin``) or an ONNX file, checked first.

OpenVINO answers a missing or truncated ``.bin`` or a non-IR ``.xml`` with a long C++ traceback (and its
frontends with absl log lines), and accepts a ``.bin`` longer than the ``.xml`` uses. The files are
checked here before OpenVINO sees them: the ``.xml`` must be an IR (root ``<net>``) and its ``.bin`` as
long as the last constant the ``.xml`` places in it; anything else is a one-line UserError naming the file.
OpenVINO's own output while reading is kept off the terminal.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import openvino as ov

from otx_xai.errors import MissingFileError, UserError

MODEL_SUFFIXES = (".xml", ".onnx")  # what OpenVINO reads; a .ckpt is everything else
FIX = "pass the .xml and .bin of one export (otx export, ov.save_model), or an .onnx file"


def is_openvino_model(path: str | Path | None) -> bool:
    """Whether ``path`` names a model OpenVINO runs (IR ``.xml`` or ``.onnx``), not a Lightning checkpoint."""
    return path is not None and Path(str(path)).suffix.lower() in MODEL_SUFFIXES


def _bin_bytes_used(xml: Path) -> int:
    """The length the ``.bin`` must have: the end of the last constant the IR's ``.xml`` places in it."""
    try:
        root = ElementTree.parse(xml).getroot()
    except ElementTree.ParseError as error:
        raise UserError(f"{xml} is not an OpenVINO IR: not well-formed XML ({error}); {FIX}") from None
    if root.tag != "net":
        raise UserError(f"{xml} is not an OpenVINO IR: its root element is <{root.tag}>, not <net>; {FIX}")
    used = 0
    for data in root.iter("data"):
        offset, size = data.get("offset"), data.get("size")
        if offset is not None and size is not None and offset.isdigit() and size.isdigit():
            used = max(used, int(offset) + int(size))
    return used


def check_model_file(path: str | Path) -> None:
    """A one-line UserError when ``path`` (an IR ``.xml`` or an ``.onnx``) cannot be what OpenVINO reads."""
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"IR {path} not found: export with `otx export` first, or {FIX}")
    if path.stat().st_size == 0:
        raise UserError(f"{path} is empty: {FIX}")
    if path.suffix.lower() != ".xml":
        return
    weights = path.with_suffix(".bin")
    used = _bin_bytes_used(path)
    if not weights.is_file() and used > 0:  # an IR without constants needs no .bin
        raise UserError(f"{path} has no {weights.name} beside it: copy the .bin written with this .xml next to it "
                        "(or export again)")
    size = weights.stat().st_size if weights.is_file() else 0
    if size < used:
        raise UserError(f"{weights} is truncated: {size} bytes, {path.name} needs {used}; copy it again "
                        "(or export again)")
    if size > used:
        raise UserError(f"{weights} is {size} bytes but {path.name} uses {used}: the .bin belongs to another "
                        "export; copy the .bin written with this .xml (or export again)")


@contextlib.contextmanager
def _stderr_to(file: IO[bytes]) -> Iterator[None]:
    """Send file descriptor 2 (C++ logs, absl lines) to ``file`` while the block runs."""
    saved = os.dup(2)
    try:
        os.dup2(file.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def read_model(core: ov.Core, path: str | Path) -> ov.Model:
    """``core.read_model(path)`` after ``check_model_file``; OpenVINO's output while reading is dropped,
    and a refusal is a one-line UserError naming the file."""
    check_model_file(path)
    with tempfile.TemporaryFile() as log:
        try:
            with _stderr_to(log):
                return core.read_model(str(path))
        except RuntimeError:
            kind = "ONNX" if Path(path).suffix.lower() == ".onnx" else "IR"
            raise UserError(f"OpenVINO cannot read {path}: not a complete, valid {kind} file; {FIX}") from None

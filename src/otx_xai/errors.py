"""otx_xai's error model: bad input is a ``UserError``; anything else that escapes is a bug of ours.

A ``UserError`` message is one line that names the problem and the fix (``the file x.xml has no .bin
beside it: export the IR again or copy its .bin``). The CLI prints it and exits 1; any other exception is
reported as an internal error (exit 3). ``UserError`` subclasses ``ValueError`` so callers that caught
``ValueError`` for bad input keep working.
"""

from __future__ import annotations

import traceback
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
DEBUG_VARIABLE = "OTX_XAI_DEBUG"


class UserError(ValueError):
    """Bad input from the user (a flag value, a file, a model, a dataset): the message says what to do."""


class WriteError(UserError):
    """A file of ours could not be written (disk full, a folder made read-only): names the path."""

    def __init__(self, path: str | Path, error: OSError, hint: str = "free space or make the folder writable") -> None:
        reason = error.strerror or str(error) or type(error).__name__
        super().__init__(f"cannot write {path}: {reason}; {hint}")
        self.path = Path(path)


def one_line(text: str) -> str:
    """A message folded onto one line (each line stripped, joined by spaces)."""
    return " ".join(line.strip() for line in str(text).strip().splitlines() if line.strip())


def user_error_line(stage: str, error: BaseException) -> str:
    """``otx <stage>: error: <problem and fix>``."""
    return f"otx {stage}: error: {one_line(str(error)) or type(error).__name__}"


def _our_frame(error: BaseException) -> traceback.FrameSummary | None:
    """The innermost frame of the traceback inside the otx_xai package (the last one when none is)."""
    frames = traceback.extract_tb(error.__traceback__)
    ours = [frame for frame in frames if Path(frame.filename).resolve().is_relative_to(PACKAGE_DIR)]
    return (ours or frames or [None])[-1]


def internal_error_line(stage: str, error: BaseException) -> str:
    """``otx <stage>: internal error: <Type> in <module path>:<line>; rerun with OTX_XAI_DEBUG=1 ...``."""
    frame = _our_frame(error)
    where = "?"
    if frame is not None:
        path = Path(frame.filename).resolve()
        name = path.relative_to(PACKAGE_DIR).as_posix() if path.is_relative_to(PACKAGE_DIR) else path.name
        where = f"{name}:{frame.lineno}"
    return (f"otx {stage}: internal error: {type(error).__name__} in {where}; rerun with {DEBUG_VARIABLE}=1 "
            "for the traceback and report it")


class InterfaceError(UserError, TypeError):
    """A user's own model or module lacks what otx_xai needs of it (a TypeError too, as Python calls it)."""


class MissingFileError(UserError, FileNotFoundError):
    """A file the user named, or one an earlier stage should have written, is not there."""

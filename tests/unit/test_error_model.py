"""The CLI's error model: bad input is one line and exit 1, bad flags exit 2, a bug of ours one line naming
where it happened and exit 3; OTX_XAI_DEBUG=1 gives the traceback instead."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

import otx_xai.engine.workdir as workdir
from conftest import assert_clean_failure
from otx_xai.cli import main
from otx_xai.errors import InterfaceError, MissingFileError, UserError, WriteError, internal_error_line


def _line_of(function: object, text: str) -> int:
    """The line number of the first source line of ``function`` that contains ``text``."""
    lines, start = inspect.getsourcelines(function)
    return start + next(i for i, line in enumerate(lines) if text in line)


def test_user_error_is_one_line_and_exit_1(tmp_path: Path, capfd: pytest.CaptureFixture) -> None:
    code = main(["explain", "--work_dir", str(tmp_path / "nowhere")])
    line = assert_clean_failure(code, capfd.readouterr().err, "nowhere", "does not exist", "train first")
    assert code == 1 and line.startswith("otx explain: error: ")


def test_bad_flag_is_exit_2(capfd: pytest.CaptureFixture) -> None:
    code = main(["explain", "--no_such_flag", "1"])
    assert_clean_failure(code, capfd.readouterr().err, "no_such_flag")
    assert code == 2


def test_a_bug_is_an_internal_error_naming_where(tmp_path: Path, capfd: pytest.CaptureFixture,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A real TypeError inside otx_xai (a constant broken on purpose): exit 3 and one line with the module
    path and line, never presented as bad input."""
    (tmp_path / "ws").mkdir()
    monkeypatch.setattr(workdir, "RUN_FILE", None)  # `link / RUN_FILE` now raises TypeError in latest_run
    code = main(["explain", "--work_dir", str(tmp_path / "ws")])
    stderr = capfd.readouterr().err
    line = assert_clean_failure(code, stderr)
    expected = f"internal error: TypeError in engine/workdir.py:{_line_of(workdir.latest_run, 'link / RUN_FILE')}"
    assert code == 3 and expected in line, line
    assert line.endswith("rerun with OTX_XAI_DEBUG=1 for the traceback and report it"), line
    monkeypatch.setenv("OTX_XAI_DEBUG", "1")
    with pytest.raises(TypeError):
        main(["explain", "--work_dir", str(tmp_path / "ws")])


def test_debug_re_raises_a_user_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTX_XAI_DEBUG", "1")
    with pytest.raises(UserError, match="does not exist"):
        main(["explain", "--work_dir", str(tmp_path / "nowhere")])


def test_error_types_keep_their_python_families() -> None:
    """Callers that caught ValueError / TypeError / FileNotFoundError for these keep working."""
    assert issubclass(UserError, ValueError)
    assert issubclass(InterfaceError, TypeError) and issubclass(InterfaceError, UserError)
    assert issubclass(MissingFileError, FileNotFoundError) and issubclass(MissingFileError, UserError)
    error = WriteError(Path("/x/y.png"), OSError(28, "No space left on device"))
    assert str(error) == "cannot write /x/y.png: No space left on device; free space or make the folder writable"


def test_internal_error_outside_our_code_names_the_last_frame() -> None:
    try:
        int("not a number")
    except ValueError as error:
        line = internal_error_line("train", error)
    assert line.startswith("otx train: internal error: ValueError in test_error_model.py:"), line

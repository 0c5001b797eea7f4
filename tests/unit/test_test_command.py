"""The README's test command is all a fresh machine needs: CI runs exactly it, and tox installs the browser."""

from __future__ import annotations

import configparser
import subprocess
import sys
from pathlib import Path

from conftest import REPO

TEST_COMMAND = "python3 -m pip install -q tox && tox"


def test_ci_runs_exactly_the_readme_test_command() -> None:
    assert TEST_COMMAND in (REPO / "README.md").read_text()
    script = (REPO / ".ci" / "run").read_text().splitlines()
    commands = [line for line in script if line.strip() and not line.startswith(("#", "set ", "cd "))]
    assert commands == [TEST_COMMAND]


def test_tox_installs_the_browser_before_the_tests() -> None:
    tox = configparser.ConfigParser(interpolation=None)
    tox.read(REPO / "tox.ini")
    assert tox["testenv"]["commands_pre"].split() == ["python", "{tox_root}/tests/ensure_browser.py"]


def test_the_browser_script_leaves_a_present_browser_alone(tmp_path: Path) -> None:
    """With the browser there it installs nothing (no apt-get run: it answers at once with exit 0)."""
    present = tmp_path / "chromium"
    present.write_text("#!/bin/sh\n")
    done = subprocess.run([sys.executable, str(REPO / "tests" / "ensure_browser.py"), "--browser", str(present)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")

"""Make sure the gallery browser tests have their browser: Debian's chromium at /usr/bin/chromium.

Run by tox before the tests (``commands_pre``), so the README's test command passes on a fresh machine
with nothing installed by hand. Nothing happens when the browser is there; otherwise, as root on a
Debian-like system, ``apt-get update`` and ``apt-get install chromium`` install it. Elsewhere it exits
non-zero with the command to run. ``--browser PATH`` checks another path (the tests of this script).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

BROWSER = Path("/usr/bin/chromium")
PACKAGE = "chromium"
INSTALL_HINT = f"apt-get update && apt-get install -y {PACKAGE}"


def install_commands() -> list[list[str]]:
    """The commands that install the browser package, in order."""
    quiet = ["-qq"]
    return [["apt-get", "update", *quiet], ["apt-get", "install", "-y", *quiet, PACKAGE]]


def ensure_browser(browser: Path = BROWSER) -> str:
    """``"present"`` or ``"installed"``; SystemExit with the command to run when it cannot install."""
    if browser.is_file():
        return "present"
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        raise SystemExit(f"{browser} is missing and cannot be installed from here (needs root and apt-get): "
                         f"run `{INSTALL_HINT}`")
    print(f"{browser} is missing: installing Debian's {PACKAGE} for the gallery browser tests", flush=True)
    environment = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in install_commands():
        done = subprocess.run(command, env=environment, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise SystemExit(f"`{' '.join(command)}` failed ({last}): run `{INSTALL_HINT}`")
    if not BROWSER.is_file():
        raise SystemExit(f"{PACKAGE} installed but {BROWSER} is missing: run `{INSTALL_HINT}`")
    return "installed"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--browser", type=Path, default=BROWSER, help="the browser path to check")
    args = parser.parse_args(argv)
    ensure_browser(args.browser)
    return 0


if __name__ == "__main__":
    sys.exit(main())

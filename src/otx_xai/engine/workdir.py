"""The work_dir layout: one timestamped folder per run, ``.latest/<stage>`` pointing at the newest."""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path
from typing import Any

from otx_xai.errors import UserError, WriteError
from otx_xai.explain.dump import atomic_write_bytes

RUN_FILE = "run.json"


class WorkDirError(UserError):
    """A work_dir that cannot be used; the message names the problem and the fix."""


def new_run_dir(work_dir: str | Path) -> Path:
    """Create ``<work_dir>/<YYYYmmdd_HHMMSS>`` (with a suffix if that second is taken)."""
    root = Path(work_dir)
    try:
        root.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now().strftime("%Y%m%d_%H%M%S")
        for attempt in range(1000):
            run = root / (stamp if attempt == 0 else f"{stamp}_{attempt}")
            try:
                run.mkdir()
                return run
            except FileExistsError:
                continue
    except OSError as error:
        raise WorkDirError(f"cannot write to work_dir {root}: {error.strerror or error}; choose a writable "
                           "folder with --work_dir") from None
    raise WorkDirError(f"too many runs in the same second under {root}")


def point_latest(run_dir: Path, stage: str) -> None:
    """Make ``<work_dir>/.latest/<stage>`` a relative symlink to ``run_dir`` (replaced atomically)."""
    latest = run_dir.parent / ".latest"
    link = latest / stage
    tmp = latest / f".{stage}.{os.getpid()}.tmp"
    try:
        latest.mkdir(exist_ok=True)
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(Path("..") / run_dir.name)
        os.replace(tmp, link)
    except OSError as error:
        raise WriteError(link, error) from None


def write_run_record(run_dir: Path, record: dict[str, Any]) -> None:
    """Describe a run (stage, recipe, data_root, checkpoint, ...) in ``run.json`` (written atomically)."""
    atomic_write_bytes(run_dir / RUN_FILE, json.dumps(record, indent=1, default=str).encode("utf-8"))


def latest_run(work_dir: str | Path, stage: str) -> tuple[Path, dict[str, Any]]:
    """The newest run of ``stage`` and its record, or a one-line error saying what to run first."""
    root = Path(work_dir)
    if not root.is_dir():
        raise WorkDirError(f"work_dir {root} does not exist: train first (otx train --work_dir {root} ...) "
                           "or pass --config and --checkpoint")
    link = root / ".latest" / stage
    record_path = link / RUN_FILE
    if not record_path.is_file():
        raise WorkDirError(f"no {stage} run in {root}: run `otx {stage} --work_dir {root} ...` first, "
                           "or pass --config and --checkpoint")
    return link.resolve(), json.loads(record_path.read_text())

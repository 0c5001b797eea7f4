"""An explain run killed with SIGKILL midway loses nothing: --resume explains only what is missing."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np

from conftest import BIN, TrainedRun, run_cli
from otx_xai.explain.dump import LEGACY_SALIENCY_DIR, SALIENCY_DIR

IMAGES = 36


def _image_folder(source: Path, target: Path, count: int = IMAGES) -> Path:
    """A plain folder of ``count`` unlabelled images (the audit case), copied (cyclically) from the shapes data."""
    target.mkdir(parents=True)
    sources = sorted(source.rglob("*.png"))
    for index in range(count):
        shutil.copy(sources[index % len(sources)], target / f"img_{index:03d}.png")
    return target


def _explain_args(run: TrainedRun, data: Path, work_dir: Path) -> list[str]:
    return ["explain", "--config", str(run.recipe), "--checkpoint", str(run.checkpoint), "--data_root", str(data),
            "--work_dir", str(work_dir), "--data.batch_size", "1", "--dump", "True",
            "--explain_config.postprocess", "True"]


def _lines(work_dir: Path) -> int:
    files = list(work_dir.glob("2*/explain_index.jsonl"))
    return len(files[0].read_text().splitlines()) if files else 0


def _raw_maps(run_dir: Path) -> dict[str, np.ndarray]:
    return {p.name: np.load(p) for p in (run_dir / SALIENCY_DIR).glob("*.npy")}


def test_killed_run_resumes_to_a_complete_consistent_index(trained_run: TrainedRun, tmp_path: Path) -> None:
    data = _image_folder(trained_run.data_root, tmp_path / "images")
    work_dir = tmp_path / "ws"
    process = subprocess.Popen([str(BIN / "otx"), *_explain_args(trained_run, data, work_dir)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while _lines(work_dir) < 4 and process.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    done_before = _lines(work_dir)
    assert 0 < done_before < IMAGES, "the run was not interrupted midway: make it longer"
    run_dir = (work_dir / ".latest" / "explain").resolve()
    assert not (run_dir / "explain_index.json").exists()

    resumed = run_cli([*_explain_args(trained_run, data, work_dir), "--resume", "True"], cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert (work_dir / ".latest" / "explain").resolve() == run_dir
    index = json.loads((run_dir / "explain_index.json").read_text())
    ids = [entry["image_id"] for entry in index["images"]]
    assert sorted(ids) == sorted(f"img_{i:03d}" for i in range(IMAGES))
    assert index["summary"]["explained"] == IMAGES
    for entry in index["images"]:
        assert entry["error"] is None
        assert all((run_dir / name).is_file() for name in entry["files"])
    assert not list(run_dir.rglob("*.tmp"))
    assert json.loads((run_dir / "run.json").read_text())["status"] == "complete"

    fresh = run_cli(_explain_args(trained_run, data, tmp_path / "fresh"), cwd=tmp_path)
    assert fresh.returncode == 0, fresh.stderr
    expected = _raw_maps((tmp_path / "fresh" / ".latest" / "explain").resolve())
    got = _raw_maps(run_dir)
    assert expected.keys() == got.keys()
    for name, maps in expected.items():
        np.testing.assert_array_equal(got[name], maps)


def test_resume_without_earlier_run_starts_a_new_one(trained_run: TrainedRun, tmp_path: Path) -> None:
    data = _image_folder(trained_run.data_root, tmp_path / "images")
    result = run_cli([*_explain_args(trained_run, data, tmp_path / "ws"), "--resume", "True"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    index = json.loads(next((tmp_path / "ws").glob("2*/explain_index.json")).read_text())
    assert index["summary"]["explained"] == IMAGES


def _to_old_layout(run_dir: Path, keep: int) -> list[dict]:
    """Make a finished run look like one written before the rename and killed after ``keep`` images:
    maps under ``saliency_map/``, index lines naming them there, no JSON index; the rest's maps gone."""
    (run_dir / SALIENCY_DIR).rename(run_dir / LEGACY_SALIENCY_DIR)
    entries = [json.loads(line) for line in (run_dir / "explain_index.jsonl").read_text().splitlines()]
    for entry in entries:
        entry["files"] = [name.replace(f"{SALIENCY_DIR}/", f"{LEGACY_SALIENCY_DIR}/", 1) for name in entry["files"]]
    for entry in entries[keep:]:
        for name in entry["files"]:
            (run_dir / name).unlink()
    (run_dir / "explain_index.jsonl").write_text("".join(json.dumps(entry) + "\n" for entry in entries[:keep]))
    (run_dir / "explain_index.json").unlink()
    return entries[:keep]


def test_resume_finishes_a_run_written_under_the_old_folder_name(trained_run: TrainedRun, tmp_path: Path) -> None:
    data = _image_folder(trained_run.data_root, tmp_path / "images", count=8)
    work_dir = tmp_path / "ws"
    first = run_cli(_explain_args(trained_run, data, work_dir), cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    run_dir = (work_dir / ".latest" / "explain").resolve()
    expected = _raw_maps(run_dir)
    kept = _to_old_layout(run_dir, keep=3)
    stamps = {name: (run_dir / name).stat().st_mtime_ns for entry in kept for name in entry["files"]}

    resumed = run_cli([*_explain_args(trained_run, data, work_dir), "--resume", "True"], cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    index = json.loads((run_dir / "explain_index.json").read_text())
    assert sorted(entry["image_id"] for entry in index["images"]) == [f"img_{i:03d}" for i in range(8)]
    files = [name for entry in index["images"] for name in entry["files"]]
    assert all(name.startswith(f"{LEGACY_SALIENCY_DIR}/") and (run_dir / name).is_file() for name in files)
    assert not (run_dir / SALIENCY_DIR).exists()  # the run is finished in the folder it was started in
    assert {name: (run_dir / name).stat().st_mtime_ns for name in stamps} == stamps  # the 3 done: not redone
    got = {p.name: np.load(p) for p in (run_dir / LEGACY_SALIENCY_DIR).glob("*.npy")}
    assert got.keys() == expected.keys()
    for name, maps in expected.items():
        np.testing.assert_array_equal(got[name], maps)

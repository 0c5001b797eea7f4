"""Distributed explain: Lightning DDP with 2 CPU processes (gloo) gives the one-process run's index and maps."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

from conftest import BIN, CHILD_THREADS, TrainedRun
from otx_xai.explain.dump import SALIENCY_DIR

TEST_IMAGES = {"circle": 3, "square": 2, "triangle": 2}  # 7 images, batches of 2: ranks get 4 and 3


def _data(source: Path, root: Path) -> list[str]:
    """A subset-layout dataset whose test subset holds TEST_IMAGES; the test image ids."""
    ids = []
    for label, count in TEST_IMAGES.items():
        files = sorted((source / label).glob("*.png"))
        for subset, chosen in (("train", files[-1:]), ("val", files[-2:-1]), ("test", files[:count])):
            folder = root / subset / label
            folder.mkdir(parents=True, exist_ok=True)
            for path in chosen:
                shutil.copy(path, folder / path.name)
                if subset == "test":
                    ids.append(f"test_{label}_{path.stem}")
    return ids


def _explain(run: TrainedRun, data: Path, work_dir: Path, *extra: str) -> subprocess.Popen:
    args = ["explain", "--config", str(run.recipe), "--checkpoint", str(run.checkpoint), "--data_root", str(data),
            "--work_dir", str(work_dir), "--data.batch_size", "2", "--dump", "True", *extra]
    env = {**os.environ, "OMP_NUM_THREADS": CHILD_THREADS}
    env.pop("OTX_XAI_DEBUG", None)
    return subprocess.Popen([str(BIN / "otx"), *args], cwd=work_dir.parent, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _files(run_dir: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in (run_dir / SALIENCY_DIR).iterdir()}


def test_ddp_explain_matches_one_process(trained_run: TrainedRun, tmp_path: Path) -> None:
    ids = _data(trained_run.data_root, tmp_path / "data")
    # both at once: the machine has 2 cores, and most of each run is process start-up
    single = _explain(trained_run, tmp_path / "data", tmp_path / "single")
    ddp = _explain(trained_run, tmp_path / "data", tmp_path / "ddp",
                   "--trainer.devices", "2", "--trainer.strategy", "ddp", "--trainer.accelerator", "cpu")
    (_, single_err), (ddp_out, ddp_err) = single.communicate(timeout=600), ddp.communicate(timeout=600)
    assert single.returncode == 0, single_err
    assert ddp.returncode == 0, ddp_err
    assert "Traceback" not in ddp_err, ddp_err
    assert ddp_out.count("explained 7 images") == 1, ddp_out  # only rank 0 reports

    runs = [p for p in (tmp_path / "ddp").iterdir() if p.name != ".latest"]
    assert len(runs) == 1, runs  # the other rank made no run folder of its own
    run_dir = runs[0]
    assert (tmp_path / "ddp" / ".latest" / "explain").resolve() == run_dir.resolve()
    expected_dir = (tmp_path / "single" / ".latest" / "explain").resolve()

    index = json.loads((run_dir / "explain_index.json").read_text())
    got_ids = [entry["image_id"] for entry in index["images"]]
    assert sorted(got_ids) == sorted(ids) and len(set(got_ids)) == len(ids) == 7
    lines = [json.loads(line) for line in (run_dir / "explain_index.jsonl").read_text().splitlines()]
    assert [entry["image_id"] for entry in lines] == got_ids
    expected = json.loads((expected_dir / "explain_index.json").read_text())
    assert [e["predicted"] for e in index["images"]] == [e["predicted"] for e in expected["images"]]
    assert index["images"] == expected["images"]  # labels, scores, ground truth, files, order
    assert index["summary"] == expected["summary"] and index["summary"]["explained"] == 7

    maps, expected_maps = _files(run_dir), _files(expected_dir)
    assert maps.keys() == expected_maps.keys()
    assert sum(name.endswith(".npy") for name in maps) == 7
    assert maps == expected_maps  # .npy raw maps and PNGs, byte for byte

    assert not list(run_dir.rglob("*.tmp")), "temporary files left"
    assert not list(run_dir.glob("explain_index.rank*")), "per-rank indexes left"
    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "complete" and record["counts"]["explained"] == 7
    assert (run_dir / "gallery.html").is_file() and (run_dir / "explain_index.csv").is_file()

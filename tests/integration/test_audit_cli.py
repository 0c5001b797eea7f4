"""`otx explain --metrics ... --sanity_check ... --fail_under ...`: values in the index, gates, clear errors."""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from conftest import TrainedRun, assert_clean_failure, copy_images, raw_maps, read_index, run_cli
from otx_xai.cli import main
from otx_xai.metrics import insertion_deletion_auc, resize_map


def _explain(run: TrainedRun, cwd: Path, *extra: str) -> tuple[int, str, dict]:
    """Run the CLI; return exit code, stderr and the index (with its run folder under "_run_dir")."""
    work_dir = cwd / "ws"
    result = run_cli(["explain", "--config", str(run.recipe), "--checkpoint", str(run.checkpoint),
                      "--data_root", str(run.data_root), "--work_dir", str(work_dir), "--dump", "True", *extra], cwd)
    index_path = next(work_dir.glob("2*/explain_index.json"), None)
    index = {**json.loads(index_path.read_text()), "_run_dir": index_path.parent} if index_path else {}
    return result.returncode, result.stderr, index


@pytest.fixture(scope="module")
def audited(trained_run: TrainedRun, tmp_path_factory: pytest.TempPathFactory) -> tuple[int, str, dict]:
    return _explain(trained_run, tmp_path_factory.mktemp("audit"), "--metrics",
                    "pointing_game,insertion_deletion,adcc", "--metric_steps", "6", "--sanity_check", "True")


def test_metric_values_per_image_and_summary(audited: tuple[int, str, dict]) -> None:
    code, stderr, index = audited
    assert code == 0, stderr
    images = index["images"]
    for entry in images:
        metrics = entry["metrics"]
        assert {"pointing_game", "insertion", "deletion", "insertion_deletion", "adcc", "average_drop",
                "coherency", "complexity", "sanity_spearman"} <= set(metrics)
        assert math.isclose(metrics["insertion_deletion"], metrics["insertion"] - metrics["deletion"])
        assert -1.0 <= metrics["sanity_spearman"] <= 1.0
    summary = index["summary"]["metrics"]
    values = [e["metrics"]["adcc"] for e in images]
    assert math.isclose(summary["adcc"]["overall"]["mean"], float(np.mean(values)))
    assert sum(block["count"] for block in summary["adcc"]["per_class"].values()) == len(images)
    assert set(index["summary"]["sanity_check"]) == {"median_spearman", "images", "flagged"}
    assert (index["_run_dir"] / "explain_index.csv").read_text().count("\n") == len(images) + 1
    for metric in ("pointing_game", "insertion_deletion", "adcc"):
        assert (index["_run_dir"] / f"contact_sheet_{metric}.png").stat().st_size > 0


def test_insertion_deletion_in_the_index_equals_a_direct_computation(trained_run: TrainedRun,
                                                                      audited: tuple[int, str, dict]) -> None:
    """Recompute one image's AUCs with the metric function and the model's own scores."""
    _, _, index = audited
    entry = index["images"][0]
    model = trained_run.engine.model.eval()
    preprocess = trained_run.engine.recipe.data.preprocess()
    image = cv2.cvtColor(cv2.imread(entry["source_path"]), cv2.COLOR_BGR2RGB)
    target = entry["predicted"][0]["index"]
    raw = np.load(index["_run_dir"] / next(f for f in entry["files"] if f.endswith(".npy")))[target]

    def scores(batch: np.ndarray) -> np.ndarray:
        inputs = torch.stack([preprocess(i)[0] for i in batch])
        with torch.inference_mode():
            return torch.softmax(model(inputs), -1).numpy()

    expected = insertion_deletion_auc(image, resize_map(raw.astype(np.float32), image.shape[:2]), target, scores,
                                      steps=6)
    assert math.isclose(entry["metrics"]["insertion"], expected["insertion"], abs_tol=1e-4)
    assert math.isclose(entry["metrics"]["deletion"], expected["deletion"], abs_tol=1e-4)


def test_fail_under_exits_non_zero_after_writing_everything(trained_run: TrainedRun, tmp_path: Path) -> None:
    code, stderr, index = _explain(trained_run, tmp_path, "--fail_under", "pointing_game=1.0,adcc=1.0")
    line = assert_clean_failure(code, stderr, "quality gate failed", "adcc")
    assert "fail_under 1" in line
    assert index["summary"]["explained"] > 0  # the maps and index were written before the gate


@pytest.mark.parametrize(("flags", "words"), [
    (["--metrics", "pointing_gam"], ("unknown metric", "pointing_game")),
    (["--fail_under", "adcc"], ("malformed", "metric=value")),
    (["--fail_under", "adcc=2"], ("adcc", "[0, 1]")),
])
def test_bad_audit_flags_are_one_line_errors(trained_run: TrainedRun, tmp_path: Path, capsys: pytest.CaptureFixture,
                                             flags: list[str], words: tuple[str, ...]) -> None:
    code = main(["explain", "--config", str(trained_run.recipe), "--checkpoint", str(trained_run.checkpoint),
                 "--data_root", str(trained_run.data_root), "--work_dir", str(tmp_path / "ws"), *flags])
    assert_clean_failure(code, capsys.readouterr().err, *words)


def test_pointing_game_without_boxes_names_what_is_missing(trained_run: TrainedRun, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    for path in sorted(trained_run.data_root.rglob("*.png"))[:3]:
        (plain / path.name).write_bytes(path.read_bytes())
    code = main(["explain", "--config", str(trained_run.recipe), "--checkpoint", str(trained_run.checkpoint),
                 "--data_root", str(plain), "--work_dir", str(tmp_path / "ws"), "--metrics", "pointing_game"])
    assert_clean_failure(code, capsys.readouterr().err, "pointing_game", "boxes")


def test_auditing_an_ir_leaves_its_maps_and_predictions_unchanged(trained_run: TrainedRun, explain_ir: Path,
                                                                  tmp_path: Path) -> None:
    """The audit scores perturbed images on the same IR while its predict pipeline has batches in flight:
    maps and predictions equal an unaudited run's. (The OpenVINO stale-input case that made IRModel.infer
    copy its inputs is reproduced in tests/unit/test_ir_inference.py; this run's sizes did not hit it.)"""
    images = tmp_path / "images"
    copy_images(trained_run.data_root, images, 20)  # three batches of 8: two in flight while the audit runs
    runs = {}
    for name, extra in (("plain", []), ("audited", ["--metrics", "insertion_deletion", "--metric_steps", "4"])):
        work_dir = tmp_path / name
        assert main(["explain", "--checkpoint", str(explain_ir), "--data_root", str(images),
                     "--work_dir", str(work_dir), "--dump", "True", *extra]) == 0
        runs[name] = next(work_dir.glob("2*/explain_index.json")).parent
    plain, audited = (raw_maps(runs[name]) for name in ("plain", "audited"))
    assert len(plain) == 20 and plain.keys() == audited.keys()
    for image_id, saliency in plain.items():
        np.testing.assert_array_equal(audited[image_id], saliency, err_msg=image_id)
    predicted = {name: {entry["image_id"]: entry["predicted"] for entry in read_index(run)["images"]}
                 for name, run in runs.items()}
    assert predicted["audited"] == predicted["plain"]

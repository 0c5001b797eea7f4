"""Bad input on the command line: a non-zero exit with one line naming the problem, never a traceback;
unreadable images inside the explain data are skipped, indexed with their error, and the run succeeds."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from conftest import RECIPES, TrainedRun, assert_clean_failure, copy_images, read_index, run_cli
from otx_xai.cli import main


def run_main(args: list[str], capfd: pytest.CaptureFixture) -> tuple[int, str]:
    """``otx <args>`` in this process: its exit code and everything written to stderr."""
    code = main([str(arg) for arg in args])
    return code, capfd.readouterr().err


def explain_fails(args: list, capfd: pytest.CaptureFixture, *words: str) -> str:
    code, stderr = run_main(["explain", *args], capfd)
    return assert_clean_failure(code, stderr, *words)


def test_missing_work_dir(tmp_path: Path, capfd: pytest.CaptureFixture) -> None:
    explain_fails(["--work_dir", tmp_path / "nowhere"], capfd, "nowhere", "does not exist")


def test_work_dir_without_training_run(tmp_path: Path, capfd: pytest.CaptureFixture) -> None:
    (tmp_path / "ws").mkdir()
    explain_fails(["--work_dir", tmp_path / "ws"], capfd, "no train run")


@pytest.mark.parametrize("name", ["missing.ckpt", "missing.xml"])
def test_missing_checkpoint(trained_run: TrainedRun, tmp_path: Path, capfd: pytest.CaptureFixture,
                            name: str) -> None:
    explain_fails(["--work_dir", trained_run.work_dir, "--checkpoint", tmp_path / name], capfd, name, "not found")


@pytest.mark.parametrize(("recipe", "words"), [
    ("vit_small_test.yaml", ("ImageClassifier", "VisionTransformerClassifier")),
    ("mobilenet_v3_small.yaml", ("resnet18", "mobilenet_v3_small")),
    ("resnet18_multilabel.yaml", ("multilabel",)),
], ids=["model_class", "backbone", "multilabel"])
def test_checkpoint_of_another_model(trained_run: TrainedRun, tmp_path: Path, capfd: pytest.CaptureFixture,
                                     recipe: str, words: tuple[str, ...]) -> None:
    args = ["--config", RECIPES / recipe, "--data_root", trained_run.data_root,
            "--checkpoint", trained_run.checkpoint, "--work_dir", tmp_path / "ws"]
    explain_fails(args, capfd, *words)


def test_checkpoint_with_another_number_of_classes(trained_run: TrainedRun, tmp_path: Path,
                                                  capfd: pytest.CaptureFixture) -> None:
    for label in ("circle", "square"):
        shutil.copytree(trained_run.data_root / label, tmp_path / "two" / label)
    args = ["--work_dir", trained_run.work_dir, "--data_root", tmp_path / "two", "--checkpoint", trained_run.checkpoint]
    explain_fails(args, capfd, "3 labels", "2 labels")


def test_ir_exported_without_explain(trained_run: TrainedRun, plain_ir: Path, capfd: pytest.CaptureFixture) -> None:
    """A white-box method asked of an IR with no XAI outputs (``auto`` explains it black-box instead)."""
    explain_fails(["--work_dir", trained_run.work_dir, "--checkpoint", plain_ir, "--explain_method", "ReciproCAM"],
                  capfd, "saliency_map", "--explain", "AISE")


def test_unknown_target_group(trained_run: TrainedRun, capfd: pytest.CaptureFixture) -> None:
    line = explain_fails(["--work_dir", trained_run.work_dir, "--explain_config.target_explain_group", "FOO"], capfd,
                         "target_explain_group", "FOO")
    assert all(group in line for group in ("IMAGE", "ALL", "PREDICTIONS")), "the valid groups are listed"


@pytest.mark.parametrize("stage", ["explain", "train"])
def test_empty_dataset_folder(trained_run: TrainedRun, tmp_path: Path, capfd: pytest.CaptureFixture,
                              stage: str) -> None:
    (tmp_path / "empty").mkdir()
    args = [stage, "--data_root", tmp_path / "empty"]
    args += ["--work_dir", trained_run.work_dir] if stage == "explain" else [
        "--config", trained_run.recipe, "--work_dir", tmp_path / "ws"]
    code, stderr = run_main(args, capfd)
    assert_clean_failure(code, stderr, "no images", str(tmp_path / "empty"))


def test_unreadable_images_are_skipped_and_indexed(trained_run: TrainedRun, tmp_path: Path,
                                                  capfd: pytest.CaptureFixture) -> None:
    folder = tmp_path / "mixed"
    good = copy_images(trained_run.data_root, folder, 3)
    (folder / "empty.png").write_bytes(b"")
    (folder / "notes.jpg").write_text("this is not a picture\n")
    work_dir = tmp_path / "ws"
    args = ["explain", "--config", trained_run.recipe, "--checkpoint", trained_run.checkpoint,
            "--data_root", folder, "--work_dir", work_dir, "--dump", "True"]
    code, stderr = run_main(args, capfd)
    assert code == 0 and "Traceback" not in stderr, stderr
    index = read_index((work_dir / ".latest" / "explain").resolve())
    entries = {Path(entry["source_path"]).name: entry for entry in index["images"]}
    assert set(entries) == {p.name for p in good} | {"empty.png", "notes.jpg"}
    for name in ("empty.png", "notes.jpg"):
        assert entries[name]["files"] == [] and name in entries[name]["error"]
    for image in good:
        entry = entries[image.name]
        assert entry["error"] is None and entry["predicted"] and entry["files"]
    assert index["summary"]["explained"] == 3 and index["summary"]["failed"] == 2


def test_real_process_exits_cleanly(tmp_path: Path) -> None:
    """The same contract from the installed console script: exit code, one line, no traceback."""
    result = run_cli(["explain", "--work_dir", str(tmp_path / "nowhere")], tmp_path)
    assert_clean_failure(result.returncode, result.stderr, "nowhere", "does not exist")
    assert result.stdout.strip() == ""

"""The command line end to end, in a temp dir, through the installed `otx` / `otx-xai` and `python -m otx_xai`:
train → explain --work_dir (latest run, best checkpoint) → export --explain True → explain --checkpoint <xml>."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from conftest import RECIPES, raw_maps, read_index, read_ir, run_cli
from otx_xai.cli import main
from otx_xai.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from otx_xai.explain.dump import SALIENCY_DIR

DESIGN_FLAGS = ["--work_dir", "--config", "--data_root", "--checkpoint", "--dump",
                "--explain_config.target_explain_group", "--explain_config.postprocess",
                "--explain_config.crop_padded_map", "--explain_config.predicted_maps_conf_thr"]


@dataclass
class CliChain:
    root: Path
    work_dir: Path
    steps: dict[str, subprocess.CompletedProcess]
    train_dir: Path
    explain_dir: Path
    xml: Path
    ir_dir: Path


def latest(work_dir: Path, stage: str) -> Path:
    return (work_dir / ".latest" / stage).resolve()


def check(step: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert step.returncode == 0, f"{step.args}\n{step.stdout}\n{step.stderr}"
    assert "Traceback" not in step.stderr, step.stderr
    return step


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory, shapes_root: Path) -> CliChain:
    root = tmp_path_factory.mktemp("cli")
    work_dir = root / "ws"
    steps = {"train": check(run_cli(
        ["train", "--config", str(RECIPES / "resnet18.yaml"), "--data_root", str(shapes_root), "--work_dir", "ws",
         "--max_epochs", "1", "--data.input_size", "[64,64]", "--data.batch_size", "8"], root))}
    train_dir = latest(work_dir, "train")
    steps["explain"] = check(run_cli(
        ["explain", "--work_dir", "ws", "--dump", "True", "--explain_config.postprocess", "True",
         "--explain_config.target_explain_group", "PREDICTIONS"], root))
    explain_dir = latest(work_dir, "explain")
    steps["export"] = check(run_cli(["export", "--work_dir", "ws", "--explain", "True"], root, program="otx-xai"))
    xml = latest(work_dir, "export") / "exported_model.xml"
    steps["explain_ir"] = check(run_cli(
        ["explain", "--work_dir", "ws", "--checkpoint", str(xml), "--dump", "True"], root, program="-m"))
    return CliChain(root, work_dir, steps, train_dir, explain_dir, xml, latest(work_dir, "explain"))


def test_train_records_its_best_checkpoint(cli: CliChain) -> None:
    record = json.loads((cli.train_dir / "run.json").read_text())
    checkpoint = cli.train_dir / record["best_checkpoint"]
    assert checkpoint.is_file() and checkpoint.suffix == ".ckpt"
    assert record["recipe"]["data"]["input_size"] == [64, 64], "the --data.input_size flag overrides the recipe"


def test_explain_finds_latest_run_and_best_checkpoint(cli: CliChain, shapes_root: Path) -> None:
    record = json.loads((cli.train_dir / "run.json").read_text())
    index = read_index(cli.explain_dir)
    assert Path(index["checkpoint"]).resolve() == (cli.train_dir / record["best_checkpoint"]).resolve()
    assert Path(index["data_root"]).resolve() == shapes_root.resolve()
    assert index["explain_config"]["target_explain_group"] == "PREDICTIONS"
    assert cli.explain_dir.parent == cli.work_dir.resolve() and cli.explain_dir != cli.ir_dir


def test_explain_dumps_predicted_maps_and_overlays(cli: CliChain) -> None:
    index = read_index(cli.explain_dir)
    raw = raw_maps(cli.explain_dir)
    assert set(raw) == {entry["image_id"] for entry in index["images"]}
    for entry in index["images"]:
        assert entry["error"] is None and len(entry["predicted"]) == 1, "multiclass PREDICTIONS = top-1"
        stem = f"{entry['image_id']}_class_{entry['predicted'][0]['label']}"
        assert sorted(Path(name).name for name in entry["files"]) == sorted(
            [f"{stem}_overlay.png", f"{stem}_saliency_map.png", f"{entry['image_id']}_saliency_map.npy"])
        original = cv2.imread(entry["source_path"])
        for suffix in ("saliency_map", "overlay"):
            png = cv2.imread(str(cli.explain_dir / SALIENCY_DIR / f"{stem}_{suffix}.png"))
            assert png.shape == original.shape, "postprocessed maps have the original image size"
        maps = raw[entry["image_id"]]
        assert maps.dtype == np.uint8 and maps.shape == (3, 2, 2)


def test_export_writes_ir_with_xai_outputs_and_metadata(cli: CliChain) -> None:
    assert cli.xml.is_file() and cli.xml.with_suffix(".bin").is_file()
    outputs, meta = read_ir(cli.xml)
    assert outputs == ["logits", "feature_vector", "saliency_map", "feature_map"]
    assert meta["task"] == "classification"
    assert meta["label_names"] == ["circle", "square", "triangle"]
    assert meta["input_size"] == [64, 64]
    assert meta["mean"] == pytest.approx(IMAGENET_MEAN) and meta["std"] == pytest.approx(IMAGENET_STD)
    assert meta["explain_method"] == "ReciproCAM"
    assert meta["output_names"] == outputs


def test_ir_maps_agree_with_checkpoint_maps(cli: CliChain) -> None:
    from_checkpoint, from_ir = raw_maps(cli.explain_dir), raw_maps(cli.ir_dir)
    assert set(from_checkpoint) == set(from_ir) and from_ir
    for image_id, maps in from_checkpoint.items():
        difference = np.abs(maps.astype(int) - from_ir[image_id].astype(int))
        assert difference.mean() <= 2.0, (image_id, difference)
    ir_index = read_index(cli.ir_dir)
    assert Path(ir_index["checkpoint"]).resolve() == cli.xml.resolve()
    assert ir_index["explain_config"]["target_explain_group"] == "ALL"
    assert all(len([f for f in e["files"] if f.endswith(".png")]) == 3 for e in ir_index["images"])


def help_text(stage: str, capsys: pytest.CaptureFixture) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main([stage, "--help"])
    assert exit_info.value.code == 0
    return capsys.readouterr().out


def test_explain_help_lists_every_design_flag(capsys: pytest.CaptureFixture) -> None:
    text = help_text("explain", capsys)
    assert not [flag for flag in DESIGN_FLAGS if flag not in text]


def test_export_help_has_explain_flag(capsys: pytest.CaptureFixture) -> None:
    assert "--explain " in help_text("export", capsys)


def test_print_config(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    work_dir = tmp_path / "somewhere"
    with pytest.raises(SystemExit) as exit_info:
        main(["explain", "--work_dir", str(work_dir), "--dump", "True",
              "--explain_config.target_explain_group", "IMAGE", "--print_config"])
    assert exit_info.value.code == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["work_dir"] == str(work_dir) and printed["dump"] is True
    assert printed["explain_config"]["target_explain_group"] == "IMAGE"
    assert not work_dir.exists(), "--print_config must not run anything"


def test_yaml_config_in_place_of_flags(cli: CliChain) -> None:
    flags = cli.root / "flags.yaml"
    flags.write_text(yaml.safe_dump({"work_dir": str(cli.work_dir), "dump": True,
                                     "explain_config": {"target_explain_group": "PREDICTIONS"}}))
    assert main(["explain", "--config", str(flags)]) == 0
    run_dir = latest(cli.work_dir, "explain")
    assert run_dir not in (cli.explain_dir, cli.ir_dir)
    index = read_index(run_dir)
    assert index["explain_config"]["target_explain_group"] == "PREDICTIONS"
    for entry in index["images"]:
        stem = f"{entry['image_id']}_class_{entry['predicted'][0]['label']}"
        assert sorted(Path(name).name for name in entry["files"]) == sorted(
            [f"{stem}_saliency_map.png", f"{entry['image_id']}_saliency_map.npy"]), "no overlays unless postprocess"

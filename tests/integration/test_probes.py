"""`train --explain_probes N`: overlays of N fixed validation images logged after every epoch."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from otx_xai import Engine
from otx_xai.data.image_io import read_image_rgb
from otx_xai.errors import UserError
from otx_xai.explain.black_box.presets import BlackBoxConfig
from otx_xai.explain.black_box.protocol import black_box_method
from otx_xai.explain.black_box.runners import method_torch_runner
from otx_xai.explain.callback import model_info
from otx_xai.explain.config import ExplainConfig, TargetExplainGroup
from otx_xai.explain.saliency import colorize, overlay


def test_probe_overlays_are_logged_each_epoch(shapes_root: Path, tmp_path: Path) -> None:
    recipe = Path(__file__).parents[2] / "recipes" / "classification" / "resnet18.yaml"
    engine = Engine(model=recipe, data_root=shapes_root, work_dir=tmp_path / "ws")
    engine.recipe.data.input_size = (64, 64)
    engine.recipe.data.batch_size = 8
    engine.train(max_epochs=2, explain_probes=2)
    run_dir = (tmp_path / "ws" / ".latest" / "train").resolve()
    probe_ids = {info.image_id for info in next(iter(engine.datamodule.val_dataloader()))["infos"][:2]}
    for epoch in (0, 1):
        files = sorted((run_dir / "probes" / f"epoch_{epoch:03d}").glob("*.png"))
        assert {f.stem for f in files} == probe_ids
        for path in files:
            image = cv2.imread(str(path))
            source = next(i for i in engine.datamodule.records.subsets["val"] if i.image_id == path.stem)
            assert image.shape[:2] == cv2.imread(source.path).shape[:2]
    events = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"images": 0})
    events.Reload()
    tags = events.Tags()["images"]
    assert sorted(tags) == sorted(f"explain_probes/{i}" for i in probe_ids)
    assert [e.step for e in events.Images(tags[0])] == [0, 1]


def test_probes_with_a_method_that_runs_the_model(shapes_root: Path, tmp_path: Path) -> None:
    """`--explain_probes_method ScoreCAM`: the probe overlays are Score-CAM's maps of the epoch's model,
    equal to Score-CAM run directly on the trained model afterwards (one epoch: that model is the last)."""
    recipe = Path(__file__).parents[2] / "recipes" / "classification" / "resnet18.yaml"
    engine = Engine(model=recipe, data_root=shapes_root, work_dir=tmp_path / "ws")
    engine.recipe.data.input_size = (64, 64)
    engine.recipe.data.batch_size = 8
    engine.train(max_epochs=1, explain_probes=2, explain_probes_method="ScoreCAM")
    run_dir = (tmp_path / "ws" / ".latest" / "train").resolve()
    batch = next(iter(engine.datamodule.val_dataloader()))
    images, infos = batch["images"][:2], batch["infos"][:2]
    model = engine.model.eval()
    method = black_box_method("classification", "ScoreCAM", BlackBoxConfig())
    outputs = method.explain(images.numpy(), method_torch_runner(method, model, 32), model_info(model),
                             ExplainConfig(target_explain_group=TargetExplainGroup.PREDICTIONS))
    own = model.forward_explain(images)["saliency_map"].numpy()
    for k, info in enumerate(infos):
        top = int(np.asarray(outputs["logits"])[k].argmax())
        expected = overlay(colorize(outputs["saliency_map"][k, top], read_image_rgb(info.source_path).shape[:2]),
                           read_image_rgb(info.source_path))
        written = cv2.cvtColor(cv2.imread(str(run_dir / "probes" / "epoch_000" / f"{info.image_id}.png")),
                               cv2.COLOR_BGR2RGB)
        assert np.array_equal(written, expected)
        assert not np.array_equal(outputs["saliency_map"][k, top], own[k, top]), "Recipro-CAM's map, not Score-CAM's"


def test_an_unknown_probes_method_is_one_line(shapes_root: Path, tmp_path: Path) -> None:
    engine = Engine(model=Path(__file__).parents[2] / "recipes" / "classification" / "resnet18.yaml",
                    data_root=shapes_root, work_dir=tmp_path / "ws")
    with pytest.raises(UserError, match="not available for classification: use one of"):
        engine.train(max_epochs=1, explain_probes=1, explain_probes_method="SHAP")

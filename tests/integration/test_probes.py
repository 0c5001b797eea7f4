"""`train --explain_probes N`: overlays of N fixed validation images logged after every epoch."""

from __future__ import annotations

from pathlib import Path

import cv2
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from otx_xai import Engine


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

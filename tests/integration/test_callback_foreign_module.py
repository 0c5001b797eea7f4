"""ExplainCallback in a plain lightning.Trainer with a user's own LightningModule (none of our classes)
that implements the documented explain interface over plain tensor batches."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import lightning
import numpy as np
import pytest
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset

from otx_xai import ExplainCallback, ExplainConfig, ExplainSink, TargetExplainGroup
from otx_xai.explain.dump import SALIENCY_DIR
from otx_xai.explain.entity import softmax

LABELS = ["cat", "dog", "bird"]
COUNT, SIZE = 5, 32


class UserCam(lightning.LightningModule):
    """A user's classifier: conv features → global average pooling → linear, explained by plain CAM."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.label_names = list(LABELS)
        self.explain_mode = False
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3, stride=4, padding=1), nn.ReLU())
        self.head = nn.Linear(8, len(LABELS))
        self.modes_seen: list[bool] = []

    def forward(self, images: Tensor) -> Tensor:
        return self.head(self.features(images).mean(dim=(2, 3)))

    def cam(self, images: Tensor) -> Tensor:
        """uint8 (B, K, h, w): class weights times feature map, min-max scaled per map."""
        maps = torch.einsum("kc,bchw->bkhw", self.head.weight, self.features(images)).flatten(2)
        low, high = maps.min(-1, keepdim=True).values, maps.max(-1, keepdim=True).values
        scaled = (maps - low) / (high - low).clamp_min(1e-30) * 255
        return torch.round(scaled).to(torch.uint8).view(len(images), len(LABELS), SIZE // 4, SIZE // 4)

    def predict_step(self, batch: list[Tensor], batch_idx: int) -> dict[str, Tensor]:
        images = batch[0]
        self.modes_seen.append(self.explain_mode)
        logits = self(images)
        if not self.explain_mode:
            return {"logits": logits}
        vector = self.features(images).mean(dim=(2, 3))
        return {"logits": logits, "saliency_map": self.cam(images), "feature_vector": vector}


def images() -> Tensor:
    return torch.rand(COUNT, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(1))


def loader() -> DataLoader:
    return DataLoader(TensorDataset(images()), batch_size=3)  # batches of 3 and 2 images


def trainer(root: Path, callbacks: list) -> lightning.Trainer:
    return lightning.Trainer(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False,
                             enable_model_summary=False, default_root_dir=str(root), callbacks=callbacks)


def explain(module: UserCam, root: Path, config: ExplainConfig, dump: bool) -> ExplainSink:
    sink = ExplainSink(config, root / "run" if dump else None, {"label_names": LABELS})
    trainer(root, [ExplainCallback(sink)]).predict(module, dataloaders=loader(), return_predictions=False)
    sink.finish()
    return sink


@pytest.fixture
def module() -> UserCam:
    return UserCam().eval()


def expected_ids() -> list[str]:
    return ["batch0_0", "batch0_1", "batch0_2", "batch1_0", "batch1_1"]


def test_callback_explains_a_foreign_module(module: UserCam, tmp_path: Path) -> None:
    sink = explain(module, tmp_path, ExplainConfig(), dump=False)
    assert module.modes_seen == [True, True], "the callback switches explain_mode on during predict"
    assert module.explain_mode is False, "and back off afterwards"
    with torch.no_grad():
        logits = module(images())
        maps = module.cam(images()).numpy()
    scores = torch.softmax(logits, dim=-1).numpy()
    assert [r.info.image_id for r in sink.results] == expected_ids()
    for index, result in enumerate(sink.results):
        np.testing.assert_allclose(result.scores, scores[index], rtol=1e-5, atol=1e-6)
        assert result.predicted == [int(np.argmax(scores[index]))]
        assert np.array_equal(result.raw_saliency_map, maps[index])
        assert list(result.saliency_map) == [0, 1, 2]
        assert result.feature_vector.shape == (8,)


def test_predictions_are_the_same_without_the_callback(module: UserCam, tmp_path: Path) -> None:
    plain = trainer(tmp_path, []).predict(module, dataloaders=loader())
    assert all(set(out) == {"logits"} for out in plain)
    logits = torch.cat([out["logits"] for out in plain]).numpy()
    sink = explain(module, tmp_path, ExplainConfig(), dump=False)
    explained = np.stack([r.scores for r in sink.results])
    assert np.array_equal(softmax(logits), explained), "scores of the explain run = scores of plain predict"


def test_callback_dumps_a_foreign_module(module: UserCam, tmp_path: Path) -> None:
    config = ExplainConfig(target_explain_group=TargetExplainGroup.PREDICTIONS)
    sink = explain(module, tmp_path, config, dump=True)
    run_dir = tmp_path / "run"
    index = json.loads((run_dir / "explain_index.json").read_text())
    entries = {entry["image_id"]: entry for entry in index["images"]}
    assert sorted(entries) == expected_ids() and index["label_names"] == LABELS
    for result in sink.results:
        entry = entries[result.info.image_id]
        top1 = result.predicted[0]
        assert entry["error"] is None and [p["label"] for p in entry["predicted"]] == [LABELS[top1]]
        png = run_dir / SALIENCY_DIR / f"{result.info.image_id}_class_{LABELS[top1]}_saliency_map.png"
        assert f"{SALIENCY_DIR}/{png.name}" in entry["files"]
        assert np.array_equal(cv2.imread(str(png), cv2.IMREAD_UNCHANGED), result.raw_saliency_map[top1])
        assert np.array_equal(np.load(run_dir / SALIENCY_DIR / f"{result.info.image_id}_saliency_map.npy"),
                              result.raw_saliency_map)
    assert not list(run_dir.rglob(".*.tmp"))


def test_postprocess_of_tensor_batches_uses_the_input_size(module: UserCam, tmp_path: Path) -> None:
    """Tensor batches have no image file: maps are coloured at the input size, with no overlay."""
    config = ExplainConfig(target_explain_group=TargetExplainGroup.IMAGE, postprocess=True)
    sink = explain(module, tmp_path, config, dump=True)
    assert len(sink.results) == COUNT
    for result in sink.results:
        coloured = result.saliency_map["map_per_image"]
        assert coloured.shape == (SIZE, SIZE, 3) and coloured.dtype == np.uint8
        names = sorted(Path(name).name for name in result.files)
        image_id = result.info.image_id
        assert names == [f"{image_id}_map_per_image_saliency_map.png", f"{image_id}_saliency_map.npy"]


def test_module_without_the_interface_is_a_clear_error(tmp_path: Path) -> None:
    class NoInterface(lightning.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.layer = nn.Linear(3, 2)

        def predict_step(self, batch: list[Tensor], batch_idx: int) -> Tensor:
            return self.layer(batch[0].mean(dim=(2, 3)))

    with pytest.raises(TypeError, match="label_names"):
        trainer(tmp_path, [ExplainCallback(ExplainSink(ExplainConfig()))]).predict(
            NoInterface(), dataloaders=loader(), return_predictions=False)

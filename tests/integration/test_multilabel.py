"""Multilabel classification on COCO-annotated shapes: labels are the categories of an image's objects."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from otx_xai import Engine, ExplainConfig, TargetExplainGroup
from otx_xai.data.records import DatasetError
from otx_xai.data.shapes import make_coco_shapes

RECIPES = Path(__file__).parents[2] / "recipes" / "classification"


@pytest.fixture(scope="module")
def coco_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_coco_shapes(tmp_path_factory.mktemp("ml") / "coco", {"train": 24, "val": 6, "test": 6},
                            image_size=80, max_objects=3, seed=1)


def _engine(recipe: str, data_root: Path, work_dir: Path) -> Engine:
    engine = Engine(model=RECIPES / recipe, data_root=data_root, work_dir=work_dir)
    engine.recipe.data.input_size = (64, 64)
    engine.recipe.data.batch_size = 8
    return engine


def test_multilabel_predictions_are_every_label_above_the_threshold(coco_root: Path, tmp_path: Path) -> None:
    engine = _engine("resnet18_multilabel.yaml", coco_root, tmp_path / "ws")
    engine.train(max_epochs=1)
    threshold = 0.4
    config = ExplainConfig(target_explain_group=TargetExplainGroup.PREDICTIONS, predicted_maps_conf_thr=threshold)
    results = engine.explain(explain_config=config, dump=True)
    assert len(results) == 6
    for result in results:
        expected = [k for k, score in enumerate(result.scores) if score > threshold]
        assert result.predicted == expected
        assert sorted(result.saliency_map) == expected
        assert result.raw_saliency_map.shape == (3, 2, 2) and result.raw_saliency_map.dtype == np.uint8
        assert np.all((result.scores >= 0) & (result.scores <= 1))  # sigmoid scores, not a softmax
        assert len(result.info.gt_labels) == len(result.info.gt_boxes) >= 1
    index = json.loads((engine.last_explain_dir / "explain_index.json").read_text())
    assert index["summary"]["pointing_game_objects"] == sum(len(set(r.info.gt_labels)) for r in results)


def test_multiclass_recipe_on_multilabel_data_is_a_clear_error(coco_root: Path, tmp_path: Path) -> None:
    engine = _engine("resnet18.yaml", coco_root, tmp_path / "ws")
    with pytest.raises(DatasetError, match="multilabel recipe"):
        engine.train(max_epochs=1)

"""Pascal VOC through datumaro: the same objects as the COCO original, and a detector explains on it."""

from __future__ import annotations

from pathlib import Path

import datumaro as dm
import numpy as np
import pytest

from otx_xai import Engine, ExplainConfig
from otx_xai.data.coco import read_coco_records
from otx_xai.data.object_records import read_object_records
from otx_xai.data.records import DatasetError
from otx_xai.data.shapes import make_coco_shapes

RECIPE = Path(__file__).parents[2] / "recipes" / "detection" / "fcos_light.yaml"


@pytest.fixture(scope="module")
def roots(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("voc")
    coco = make_coco_shapes(base / "coco", {"train": 12, "val": 4, "test": 4}, image_size=80, seed=3)
    voc = base / "voc"
    dm.Dataset.import_from(str(coco), "coco_instances").export(str(voc), "voc_detection", save_media=True)
    return coco, voc


def test_voc_records_match_the_coco_original(roots: tuple[Path, Path]) -> None:
    coco, voc = (read_coco_records(roots[0]), read_object_records(roots[1]))
    assert voc.label_names == coco.label_names == ["circle", "square", "triangle"]
    for subset, records in coco.subsets.items():
        by_id = {r.image_id: r for r in voc.subsets[subset]}
        assert sorted(by_id) == sorted(r.image_id for r in records)
        for record in records:
            other = by_id[record.image_id]
            order, other_order = np.argsort([b[0] for b in record.boxes]), np.argsort([b[0] for b in other.boxes])
            assert [record.labels[i] for i in order] == [other.labels[i] for i in other_order]
            np.testing.assert_allclose(np.array(record.boxes)[order], np.array(other.boxes)[other_order], atol=0.01)


def test_detector_trains_and_explains_on_voc(roots: tuple[Path, Path], tmp_path: Path) -> None:
    engine = Engine(model=RECIPE, data_root=roots[1], work_dir=tmp_path / "ws")
    engine.recipe.data.input_size = (64, 64)
    engine.recipe.data.batch_size = 4
    engine.train(max_epochs=1)
    results = engine.explain(explain_config=ExplainConfig(), dump=True)
    assert len(results) == 4
    assert all(r.raw_saliency_map.shape[0] == 3 and r.raw_saliency_map.dtype == np.uint8 for r in results)


def test_voc_without_boxes_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "Annotations").mkdir()
    (tmp_path / "ImageSets" / "Main").mkdir(parents=True)
    with pytest.raises(DatasetError, match="VOC"):
        read_object_records(tmp_path)

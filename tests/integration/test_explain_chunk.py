"""ExplainConfig.max_explain_chunk reaches the model's explainer and bounds its work without changing maps."""

from __future__ import annotations

import numpy as np

from conftest import TrainedRun
from otx_xai import Engine, ExplainConfig


def test_chunk_bound_is_applied_and_maps_are_unchanged(trained_run: TrainedRun, tmp_path) -> None:
    engine = Engine(model=str(trained_run.recipe), data_root=trained_run.data_root, work_dir=tmp_path / "ws",
                    checkpoint=trained_run.checkpoint)
    whole = engine.explain(explain_config=ExplainConfig())
    assert engine.model.explainer.max_chunk == ExplainConfig().max_explain_chunk
    chunked = engine.explain(explain_config=ExplainConfig(max_explain_chunk=3))
    assert engine.model.explainer.max_chunk == 3
    assert [r.info.image_id for r in whole] == [r.info.image_id for r in chunked]
    for a, b in zip(whole, chunked, strict=True):
        np.testing.assert_array_equal(a.raw_saliency_map, b.raw_saliency_map)

"""Structured Attention Graphs on the trained shapes resnet18: every root keeps ≥ 90 % of the full score when
the model is re-run on an image built by hand (the root's patches copied onto zeros), losing any one of its
patches drops it below, the shown roots respect the overlap limit and are as many as the limit allows, the
graph's children are the roots minus one patch; the method's outputs hold what the dump writes."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from conftest import TrainedRun
from otx_xai import Engine
from otx_xai.explain.black_box.presets import BlackBoxConfig
from otx_xai.explain.black_box.runners import torch_runner
from otx_xai.explain.config import ExplainConfig
from otx_xai.explain.entity import ModelInfo
from otx_xai.explain.methods.perturbation.sag import SAG
from otx_xai.explain.methods.perturbation.sag_graph import GRAPH_SIZE
from otx_xai.explain.methods.perturbation.sag_search import SagSettings, patch_order, structured_attention_graph

GRID = 7


@pytest.fixture(scope="module")
def model_and_images(trained_run: TrainedRun) -> tuple[torch.nn.Module, np.ndarray]:
    engine = Engine(work_dir=trained_run.work_dir)
    model = engine.model.eval()
    images = next(iter(engine.datamodule.predict_dataloader()))["images"]
    with torch.no_grad():
        confidence = torch.softmax(model(images), -1).max(-1).values
    return model, images[torch.argsort(-confidence)[:2]].numpy()  # the most confident: small roots, fast


def _score(model: torch.nn.Module, image: np.ndarray, target: int) -> float:
    with torch.no_grad():
        return float(torch.softmax(model(torch.from_numpy(image[None])), -1)[0, target])


def _shown_by_hand(image: np.ndarray, patches: set[int]) -> np.ndarray:
    """The image with only ``patches`` of the 7×7 grid, the rest zero (the mean grey)."""
    out = np.zeros_like(image)
    rows = np.round(np.linspace(0, image.shape[1], GRID + 1)).astype(int)
    cols = np.round(np.linspace(0, image.shape[2], GRID + 1)).astype(int)
    for patch in patches:
        r, c = divmod(patch, GRID)
        out[:, rows[r] : rows[r + 1], cols[c] : cols[c + 1]] = image[:, rows[r] : rows[r + 1], cols[c] : cols[c + 1]]
    return out


def test_roots_keep_the_score_are_minimal_and_respect_the_overlap(model_and_images) -> None:
    model, images = model_and_images
    settings = SagSettings(beam_width=2, successors=8, max_roots=3)  # small, for the test's budget
    found = 0
    for image in images:
        target = int(np.argmax([_score(model, image, k) for k in range(3)]))
        with torch.no_grad():
            prior = model.forward_explain(torch.from_numpy(image[None]))["saliency_map"][0, target].float().numpy()
        prior = np.kron(prior, np.ones((image.shape[1] // prior.shape[0], image.shape[2] // prior.shape[1])))

        def score_fn(batch: np.ndarray, target: int = target) -> np.ndarray:
            with torch.no_grad():
                return torch.softmax(model(torch.from_numpy(batch)), -1)[:, target].numpy()

        result = structured_attention_graph(image, score_fn, patch_order(prior, GRID), settings)
        full = _score(model, image, target)
        assert result.full_score == pytest.approx(full, abs=1e-5)
        threshold = 0.9 * full
        assert 0 < len(result.roots) <= settings.max_roots
        found += len(result.roots)
        for root in result.roots:
            assert _score(model, _shown_by_hand(image, set(root.patches)), target) >= threshold - 1e-6
            for patch in root.patches:
                assert _score(model, _shown_by_hand(image, set(root.patches) - {patch}), target) < threshold
        assert len({root.patches for root in result.roots}) == len(result.roots)  # no duplicates
        for first, second in itertools.combinations(result.shown, 2):
            assert len(first.patches & second.patches) <= settings.overlap
        largest = max(size for size in range(1, len(result.roots) + 1)
                      for combo in itertools.combinations(result.roots, size)
                      if all(len(a.patches & b.patches) <= settings.overlap
                             for a, b in itertools.combinations(combo, 2)))
        assert len(result.shown) == min(settings.shown_roots, largest)
        assert len(result.edges) == sum(len(root.patches) for root in result.shown)
        for parent, child in result.edges:
            assert len(parent - child) == 1 and child < parent and result.nodes[child] < threshold
    assert found >= len(images)


def test_sag_outputs_what_the_dump_writes(model_and_images) -> None:
    model, images = model_and_images
    info = ModelInfo("classification", ["circle", "square", "triangle"], False, "SAG")
    config = BlackBoxConfig(batch_size=64, beam_width=2, successors=6, max_roots=2)
    outputs = SAG(config).explain(images[:1], torch_runner(model, 64), info, ExplainConfig())
    assert outputs["saliency_map"].shape == (1, 3, *images.shape[-2:]) and outputs["saliency_map"].dtype == np.uint8
    assert outputs["sag_graph"].shape == (1, *GRAPH_SIZE, 3) and outputs["sag_graph"].std() > 10
    for index in range(1):
        found = ~np.isnan(outputs["sag_root_scores"][index])
        assert found.any() and (outputs["sag_root_masks"][index][found].reshape(found.sum(), -1).sum(1) > 0).all()
        assert not outputs["sag_root_masks"][index][~found].any()
        target = int(outputs["sag_class"][index])
        assert (outputs["sag_root_scores"][index][found] >= 0.9 * outputs["sag_full_score"][index] - 1e-6).all()
        # the map's peak lies in a patch of a shown root
        peak = np.unravel_index(np.argmax(outputs["saliency_map"][index, target]), images.shape[-2:])
        cell = (peak[0] * GRID // images.shape[-2], peak[1] * GRID // images.shape[-1])
        assert outputs["sag_root_masks"][index][found][:, cell[0], cell[1]].any()

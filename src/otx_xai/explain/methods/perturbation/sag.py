"""SAG as an explain method: Structured Attention Graphs (``sag_search``) over any model a ModelRunner runs
(a checkpoint, an otx_xai IR or a foreign IR: forward passes only).

Per explained class the patch order comes from a forward-only map: the model's own Recipro-CAM (or ViT
Recipro-CAM) map when the runner is a checkpoint whose model has one, else RISE (``prior_masks`` masks,
the run's RISE grid and seed). The returned ``saliency_map`` is ``sag_search.sag_saliency``: the shown
roots weighted by their relative scores, plus the prior scaled to a tenth. For the top explained class of
each image the outputs also hold what the dump writes: ``sag_root_masks`` uint8 (B, R, grid, grid) (1: the
root shows the patch; all zero past the roots found), ``sag_root_scores`` float32 (B, R) (NaN past them),
``sag_full_score`` float32 (B,), ``sag_class`` int64 (B,) and ``sag_graph`` uint8 (B, 600, 900, 3), the
graph's picture.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import cv2
import numpy as np
import torch

from otx_xai.explain.black_box.classification import class_scores, explained_classes, to_uint8_maps
from otx_xai.explain.black_box.masks import rise_masks
from otx_xai.explain.black_box.presets import BlackBoxConfig, Preset
from otx_xai.explain.black_box.rise import rise_saliency
from otx_xai.explain.black_box.runners import ModelRunner, runner_batch, stream_outputs
from otx_xai.explain.config import ExplainConfig
from otx_xai.explain.entity import ModelInfo
from otx_xai.explain.methods.perturbation.sag_graph import GRAPH_SIZE, draw_sag
from otx_xai.explain.methods.perturbation.sag_search import (
    SagResult,
    SagSettings,
    patch_order,
    sag_saliency,
    structured_attention_graph,
)

OWN_FORWARD_MAPS = ("ReciproCAM", "ViTReciproCAM")  # class-specific, forward-only white-box maps
PRIOR_MASKS = {Preset.SPEED: 250, Preset.BALANCE: 500, Preset.QUALITY: 1000}
BEAM = {Preset.SPEED: (2, 10), Preset.BALANCE: (3, 15), Preset.QUALITY: (5, 20)}  # beam width, successors


class SAG:
    """Structured Attention Graphs, per explained class; the graph of each image's top class is drawn."""

    name = "SAG"

    def __init__(self, config: BlackBoxConfig) -> None:
        self.config = config

    @property
    def search(self) -> SagSettings:
        c = self.config
        beam_width, successors = BEAM[Preset(c.preset)]
        return SagSettings(grid=c.patches, keep=c.keep, beam_width=c.beam_width or beam_width,
                           successors=c.successors or successors, max_roots=c.max_roots,
                           shown_roots=c.shown_roots, overlap=c.overlap)

    @property
    def prior_masks(self) -> int:
        return int(self.config.num_masks or PRIOR_MASKS[Preset(self.config.preset)])

    def settings(self) -> dict[str, Any]:
        s = self.search
        return {"method": self.name, "preset": self.config.preset, "patches": s.grid, "keep": s.keep,
                "beam_width": s.beam_width, "successors": s.successors, "max_roots": s.max_roots,
                "shown_roots": s.shown_roots, "overlap": s.overlap, "batch_size": self.config.batch_size,
                "prior": f"own {' or '.join(OWN_FORWARD_MAPS)} map, else RISE ({self.prior_masks} masks, "
                         f"{self.config.num_cells} cells, seed {self.config.seed})",
                "inferences_per_target": "1 + prior + ≤ beam_width × successors per level + minimizing + children"}

    def explain(self, images: np.ndarray, run: ModelRunner, model: ModelInfo, config: ExplainConfig,
                targets: list[list[int]] | None = None) -> dict[str, np.ndarray]:
        outputs = run(images)
        scores = class_scores(outputs["logits"], model.multilabel)
        search = self.search
        size = (int(images.shape[-2]), int(images.shape[-1]))
        maps = np.zeros((len(images), scores.shape[1], *size), dtype=np.float64)
        shown = search.shown_roots
        artifacts = {"sag_root_masks": np.zeros((len(images), shown, search.grid, search.grid), dtype=np.uint8),
                     "sag_root_scores": np.full((len(images), shown), np.nan, dtype=np.float32),
                     "sag_full_score": np.zeros(len(images), dtype=np.float32),
                     "sag_class": np.zeros(len(images), dtype=np.int64),
                     "sag_graph": np.zeros((len(images), *GRAPH_SIZE, 3), dtype=np.uint8)}
        priors = self._priors(images, run, model)
        for index, image in enumerate(images):
            classes = targets[index] if targets is not None else explained_classes(scores[index], model, config)
            class_priors = priors(index, classes)
            for rank, target in enumerate(classes):
                prior = class_priors[target]

                def score_fn(perturbed: np.ndarray, target: int = target) -> np.ndarray:
                    return class_scores(run(perturbed)["logits"], model.multilabel)[:, target]

                result = structured_attention_graph(image, score_fn, patch_order(prior, search.grid), search)
                maps[index, target] = sag_saliency(result, prior, search.grid)
                if rank == 0:
                    self._record(artifacts, index, target, result, image, model)
        return {**outputs, "saliency_map": to_uint8_maps(maps), **artifacts}

    def _record(self, artifacts: dict[str, np.ndarray], index: int, target: int, result: SagResult,
                image: np.ndarray, model: ModelInfo) -> None:
        grid = self.search.grid
        for k, root in enumerate(result.shown):
            artifacts["sag_root_masks"][index, k].flat[sorted(root.patches)] = 1
            artifacts["sag_root_scores"][index, k] = root.score
        artifacts["sag_full_score"][index] = result.full_score
        artifacts["sag_class"][index] = target
        label = model.label_names[target] if target < len(model.label_names) else str(target)
        title = (f"SAG of '{label}': {len(result.shown)} of {len(result.roots)} roots keeping "
                 f"≥ {self.search.keep:.0%} of {result.full_score:.3f}; {result.inferences} inferences")
        artifacts["sag_graph"][index] = draw_sag(result, image, grid, title)

    def _priors(self, images: np.ndarray, run: ModelRunner, model: ModelInfo):
        """``prior(image index, classes)``: per class the forward-only map (H, W) float the patch order
        comes from."""
        size = (int(images.shape[-2]), int(images.shape[-1]))
        network = getattr(run, "model", None)
        if network is not None and getattr(network, "explain_method", None) in OWN_FORWARD_MAPS:
            with torch.inference_mode():
                own = network.forward_explain(torch.from_numpy(np.ascontiguousarray(images)))["saliency_map"]
            own = own.cpu().numpy().astype(np.float32)
            return lambda index, classes: {c: cv2.resize(own[index, c], (size[1], size[0]),
                                                         interpolation=cv2.INTER_LINEAR) for c in classes}
        masks = rise_masks(self.prior_masks, size, self.config.num_cells, self.config.prob, self.config.seed)

        def rise(index: int, classes: list[int]) -> dict[int, np.ndarray]:
            def score_stream(batches: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
                for outputs in stream_outputs(run, batches):
                    yield class_scores(outputs["logits"], model.multilabel)[:, classes]

            maps = rise_saliency(images[index], score_stream, masks, runner_batch(run, self.config.batch_size))
            return dict(zip(classes, maps, strict=True))

        return rise

FOR_TASK = {"classification": SAG}

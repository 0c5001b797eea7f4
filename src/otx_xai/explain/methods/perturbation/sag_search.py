"""The search of Structured Attention Graphs (Shitole et al., NeurIPS 2021): small sets of image patches that
are each enough for the model's score, found by beam search, then a diverse few of them and their children.

The image is cut into a ``grid × grid`` patch grid; a patch set shows those patches and hides the rest
(multiplied by 0 in the preprocessed input: the preprocessing mean, a neutral grey, as RISE hides). With
``full`` the target's score on the whole image, a set *keeps* the score when its score is ≥ ``keep · full``.

1. Beam search from the empty set: each beam set grows by one of its ``successors`` best patches not yet in
   it (best by a forward-only map, ``order``); all grown sets of a level are scored in one call. Sets that
   keep the score are made minimal (``minimal``: no single patch can go) and become *roots* (duplicates
   dropped); of the rest the best ``beam_width`` form the next beam. The search stops at ``max_roots``
   roots, an empty beam or sets of ``max_root_size``.
2. The shown roots: the largest subset of roots in which every two share at most ``overlap`` patches
   (the first such subset in discovery order), its first ``shown_roots``.
3. The graph: every shown root and its children (the root minus one patch), each with its score; a child
   shared by two roots is one node. Every child of a root scores below ``keep · full``: that is what
   minimal means.

Every set is scored once (a cache); ``inferences`` counts the model's images.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np

ScoreFn = Callable[[np.ndarray], np.ndarray]
"""Images (N, 3, H, W) float32 → the target's scores (N,)."""
PatchSet = frozenset[int]


@dataclass(frozen=True)
class SagSettings:
    """The search's settings; the defaults are the SAG authors' (beam 3, 15 successors, 10 roots, 3 shown,
    at most 1 shared patch between shown roots, 90 % of the full score, a 7×7 grid)."""

    grid: int = 7
    keep: float = 0.9
    beam_width: int = 3
    successors: int = 15
    max_roots: int = 10
    shown_roots: int = 3
    overlap: int = 1
    max_root_size: int | None = None  # None: every patch


@dataclass(frozen=True)
class Root:
    """A minimal patch set that keeps the score, and its score."""

    patches: PatchSet
    score: float


@dataclass
class SagResult:
    """What one search found for one image and target."""

    full_score: float
    threshold: float
    roots: list[Root]  # every root found, in discovery order
    shown: list[Root]  # the diverse few the graph shows
    nodes: dict[PatchSet, float] = field(default_factory=dict)  # graph nodes (shown roots + children): score
    edges: list[tuple[PatchSet, PatchSet]] = field(default_factory=list)  # (root, child)
    inferences: int = 0


def patch_masks(grid: int, size: tuple[int, int]) -> np.ndarray:
    """(grid², H, W) float32 indicators of the patches, row-major; edges at round(i · side / grid)."""
    rows = np.round(np.linspace(0, size[0], grid + 1)).astype(int)
    cols = np.round(np.linspace(0, size[1], grid + 1)).astype(int)
    masks = np.zeros((grid * grid, *size), dtype=np.float32)
    for r, c in itertools.product(range(grid), range(grid)):
        masks[r * grid + c, rows[r] : rows[r + 1], cols[c] : cols[c + 1]] = 1.0
    return masks


def patch_order(saliency: np.ndarray, grid: int) -> list[int]:
    """Patches by their mean saliency (an (H, W) map at the input size), highest first; ties row-major."""
    means = np.tensordot(patch_masks(grid, saliency.shape), saliency, axes=2)
    means /= np.maximum(patch_masks(grid, saliency.shape).sum(axis=(1, 2)), 1)
    return [int(i) for i in np.argsort(-means, kind="stable")]


class PatchScorer:
    """Scores patch sets of one image, each set once."""

    def __init__(self, image: np.ndarray, score_fn: ScoreFn, grid: int) -> None:
        self.image = image
        self.score_fn = score_fn
        self.masks = patch_masks(grid, (int(image.shape[-2]), int(image.shape[-1])))
        self.cache: dict[PatchSet, float] = {}
        self.inferences = 0

    def image_of(self, patches: Iterable[int]) -> np.ndarray:
        """The image showing only ``patches``."""
        keep = self.masks[sorted(patches)].sum(axis=0) if patches else np.zeros(self.masks.shape[1:], np.float32)
        return self.image * keep[None]

    def scores(self, sets: list[PatchSet]) -> np.ndarray:
        """The target's score of every set (one model call for the sets not scored yet)."""
        new = list(dict.fromkeys(s for s in sets if s not in self.cache))
        if new:
            images = np.stack([self.image_of(s) for s in new]).astype(np.float32)
            values = np.asarray(self.score_fn(images), dtype=np.float64).reshape(-1)
            self.cache.update(zip(new, values.tolist(), strict=True))
            self.inferences += len(new)
        return np.array([self.cache[s] for s in sets], dtype=np.float64)


def minimal(patches: PatchSet, order: list[int], scorer: PatchScorer, threshold: float) -> PatchSet:
    """``patches`` without the patches it can lose while keeping the score; empty when even the image with
    every patch hidden keeps it.

    Patches are tried one at a time, the least salient (by ``order``) first, each dropped when the set
    without it still keeps the score; then every single removal of what is left is scored in one call,
    and the pass repeats while one of them keeps the score (so the result is minimal: about 2·n
    inferences for n patches instead of the n²/2 of removing the best patch each round)."""
    rank = {patch: i for i, patch in enumerate(order)}
    current = patches
    while current:
        for patch in sorted(current, key=lambda p: -rank.get(p, len(rank))):
            if len(current) > 1 and scorer.scores([current - {patch}])[0] >= threshold:
                current = current - {patch}
        removals = [current - {p} for p in sorted(current)]
        scores = scorer.scores(removals)
        best = int(np.argmax(scores))
        if scores[best] < threshold:
            return current
        current = removals[best]
    return current


def beam_search(scorer: PatchScorer, order: list[int], full: float, settings: SagSettings) -> list[Root]:
    """The roots found by the beam search, in discovery order."""
    threshold = settings.keep * full
    limit = settings.max_root_size or len(order)
    beam: list[PatchSet] = [frozenset()]
    roots: list[Root] = []
    for _ in range(limit):
        grown = [b | {p} for b in beam for p in [q for q in order if q not in b][: settings.successors]]
        grown = list(dict.fromkeys(grown))
        if not grown:
            break
        scores = scorer.scores(grown)
        beam = []
        for index in np.argsort(-scores, kind="stable"):
            if scores[index] >= threshold:
                root = minimal(grown[index], order, scorer, threshold)
                if root and all(root != r.patches for r in roots):
                    roots.append(Root(root, float(scorer.scores([root])[0])))
            elif len(beam) < settings.beam_width:
                beam.append(grown[index])
        if len(roots) >= settings.max_roots or not beam:
            break
    return roots[: settings.max_roots]


def diverse_roots(roots: list[Root], overlap: int, shown: int) -> list[Root]:
    """The first largest subset of ``roots`` whose members pairwise share ≤ ``overlap`` patches, cut to
    ``shown``."""
    for size in range(len(roots), 0, -1):
        for combo in itertools.combinations(range(len(roots)), size):
            if all(len(roots[i].patches & roots[j].patches) <= overlap for i, j in itertools.combinations(combo, 2)):
                return [roots[i] for i in combo][:shown]
    return []


def structured_attention_graph(image: np.ndarray, score_fn: ScoreFn, order: list[int],
                               settings: SagSettings) -> SagResult:
    """The SAG of one preprocessed image (3, H, W) for the target ``score_fn`` reads."""
    scorer = PatchScorer(image, score_fn, settings.grid)
    full = float(scorer.scores([frozenset(range(settings.grid**2))])[0])
    roots = beam_search(scorer, order, full, settings)
    shown = diverse_roots(roots, settings.overlap, settings.shown_roots)
    result = SagResult(full, settings.keep * full, roots, shown)
    children = [(root.patches, root.patches - {p}) for root in shown for p in sorted(root.patches)]
    child_scores = scorer.scores([child for _, child in children])
    result.nodes = {root.patches: root.score for root in shown}
    for (parent, child), score in zip(children, child_scores, strict=True):
        result.nodes.setdefault(child, float(score))
        result.edges.append((parent, child))
    result.inferences = scorer.inferences
    return result


def sag_saliency(result: SagResult, prior: np.ndarray, grid: int) -> np.ndarray:
    """The map the audit metrics read (H, W): the shown roots' patches, each root weighted by its score
    relative to the full score (a patch in two roots counts twice), plus the forward-only prior scaled to
    [0, 0.1], which ranks what no root holds (and orders pixels within a patch)."""
    masks = patch_masks(grid, prior.shape)
    saliency = np.zeros(prior.shape, dtype=np.float64)
    for root in result.shown:
        weight = root.score / result.full_score if result.full_score > 0 else 1.0
        saliency += weight * masks[sorted(root.patches)].sum(axis=0)
    low, high = float(prior.min()), float(prior.max())
    return saliency + (0.1 * (prior - low) / (high - low) if high > low else 0.0)

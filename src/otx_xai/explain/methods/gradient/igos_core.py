"""The mask optimization I-GOS (Qi et al., AAAI 2020) and I-GOS++ (Khorram et al., ACM-CHIL 2021) share.

A mask ``M`` (1, 1, m, m) in [0, 1] at a low resolution (28×28 at 224 px, scaled with the input) is upsampled
bilinearly to the input (``up``); ``M = 1`` keeps the image, ``M = 0`` shows the baseline, a heavily blurred
copy of the image (Gaussian kernel 51 px, sigma 50 at 224 px, scaled). With ``f`` the target's score
(softmax, or sigmoid for multilabel) and ``n`` integration steps ``a_k = k / n``:

    deletion score   D(M) = 1/n Σ_k f(image · a_k·up(M) + baseline · (1 − a_k·up(M)) + ε_k)
    insertion score  S(M) = 1/n Σ_k f(baseline · a_k·up(M) + image · (1 − a_k·up(M)) + ε_k)

(ε_k Gaussian noise of std ``noise``, one draw per iteration shared by its gradient and line search).
Their gradients along the straight path are integrated gradients.

**I-GOS** minimizes ``D(M) + L1·mean|1 − M| + TV·tv(M)`` (tv: mean squared differences of neighbouring
cells, both directions): the smallest, smoothest deletion that kills the score.
**I-GOS++** optimizes a deletion mask ``Md`` and an insertion mask ``Mi`` together; with ``Mc = Md·Mi`` its
loss is ``D(Md) − S(Mi) + D(Mc) − S(Mc) + L1·mean|1 − Mc| + TV·btv(Mc)``, btv the bilateral total variation
(half the low-resolution tv of ``Mc`` plus half the squared differences of ``up(Mc)`` weighted by
``exp(−mean_c(Δimage²) / 0.01)``: smooth where the image is smooth, free to jump at its edges); its descent
direction halves the four score terms' gradient, as the authors' code does.

Each iteration takes the gradient ``g`` and a backtracking (Armijo) line search: from ``step``, the step
shrinks by 0.2 until ``loss(clamp(M − α·g)) ≤ loss(M) − 1e-4 · α · ||g||²`` (or α < 1e-5); then
``M ← clamp(M − α·g, 0, 1)``. The saliency is ``1 − up(M)`` (``1 − up(Md·Mi)``): what must go for the
score to go.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

ScoreFn = Callable[[Tensor], Tensor]
"""Preprocessed images (N, 3, H, W) → scores (N, K), differentiable."""

MASK_CELLS_AT_224 = 28
BLUR_KSIZE_AT_224 = 51
ARMIJO_BETA = 1e-4
STEP_DECAY = 0.2
MIN_STEP = 1e-5
BILATERAL_SIGMA = 0.01


@dataclass(frozen=True)
class MaskOptimization:
    """Settings of one I-GOS / I-GOS++ run (the authors' defaults are the presets' ``balance``)."""

    iterations: int
    ig_steps: int
    step: float
    l1: float = 1.0
    tv: float = 20.0
    noise: float = 0.2
    seed: int = 0


def scaled(value_at_224: int, side: int) -> int:
    """A size given at 224 px, scaled to ``side`` (at least 1)."""
    return max(1, round(value_at_224 * side / 224))


def mask_cells(size: tuple[int, int]) -> tuple[int, int]:
    """The low-resolution mask's cells (rows, columns) for an input of ``size``: 28 per 224 px."""
    return scaled(MASK_CELLS_AT_224, size[0]), scaled(MASK_CELLS_AT_224, size[1])


def blurred_baseline(image: np.ndarray) -> np.ndarray:
    """The baseline of a preprocessed (3, H, W) image: Gaussian blur, kernel 51 px and sigma 50 at 224 px.

    Blurring commutes with the per-channel normalization (the kernel sums to 1), so blurring the
    preprocessed image equals preprocessing the blurred one.
    """
    height, width = image.shape[-2:]
    kh, kw = (scaled(BLUR_KSIZE_AT_224, side) | 1 for side in (height, width))  # odd kernels
    blurred = cv2.GaussianBlur(np.ascontiguousarray(image.transpose(1, 2, 0)), (kw, kh),
                               sigmaX=float(kw - 1), sigmaY=float(kh - 1))
    return np.ascontiguousarray(blurred.reshape(height, width, -1).transpose(2, 0, 1))


def upsample(masks: Tensor, size: tuple[int, int]) -> Tensor:
    """(P, 1, m, m) masks bilinearly to (P, 1, H, W), corners aligned (the authors' UpsamplingBilinear2d)."""
    return F.interpolate(masks, size=size, mode="bilinear", align_corners=True)


def path_score(score_fn: ScoreFn, start: Tensor, end: Tensor, up_masks: Tensor, target: int,
               noise: Tensor | None) -> Tensor:
    """(P,) mean target score along ``end·(1 − a·up) + start·a·up`` for a = 1/n … 1 (n = len(noise) steps).

    ``start`` is what ``up = 1`` shows at the path's end: the image for the deletion score, the baseline
    for the insertion score.
    """
    steps = len(noise)
    fractions = torch.arange(1, steps + 1, dtype=up_masks.dtype) / steps
    weights = up_masks[:, None] * fractions.view(1, steps, 1, 1, 1)  # (P, n, 1, H, W)
    images = start * weights + end * (1.0 - weights) + noise[None]
    scores = score_fn(images.reshape(-1, *images.shape[2:]))[:, target]
    return scores.view(len(up_masks), steps).mean(dim=1)


def tv_norm(masks: Tensor) -> Tensor:
    """(P,) mean squared difference of vertically plus horizontally neighbouring cells."""
    vertical = (masks[..., 1:, :] - masks[..., :-1, :]).pow(2).flatten(1).mean(dim=1)
    horizontal = (masks[..., :, 1:] - masks[..., :, :-1]).pow(2).flatten(1).mean(dim=1)
    return vertical + horizontal


def bilateral_tv_norm(masks: Tensor, up_masks: Tensor, image: Tensor) -> Tensor:
    """(P,) half the low-resolution tv plus half the upsampled masks' image-edge-weighted tv."""
    weight_v = torch.exp(-(image[:, 1:, :] - image[:, :-1, :]).pow(2).mean(dim=0) / BILATERAL_SIGMA)
    weight_h = torch.exp(-(image[:, :, 1:] - image[:, :, :-1]).pow(2).mean(dim=0) / BILATERAL_SIGMA)
    vertical = (weight_v * (up_masks[..., 1:, :] - up_masks[..., :-1, :]).pow(2)).flatten(1).mean(dim=1)
    horizontal = (weight_h * (up_masks[..., :, 1:] - up_masks[..., :, :-1]).pow(2)).flatten(1).mean(dim=1)
    return 0.5 * (tv_norm(masks) + vertical + horizontal)


def line_search(loss_fn: Callable[[Tensor], Tensor], masks: Tensor, direction: Tensor, step: float) -> float:
    """The Armijo step for ``masks − α·direction`` (clamped to [0, 1]), backtracking from ``step``."""
    with torch.no_grad():
        base = float(loss_fn(masks))
        slope = ARMIJO_BETA * float(direction.pow(2).sum())
        alpha = step
        while True:
            loss = float(loss_fn((masks - alpha * direction).clamp(0.0, 1.0)))
            if loss <= base - alpha * slope or alpha < MIN_STEP:
                return alpha
            alpha *= STEP_DECAY


class MaskProblem:
    """One image and target: the tensors every loss evaluation reads."""

    def __init__(self, score_fn: ScoreFn, image: np.ndarray, target: int, settings: MaskOptimization) -> None:
        self.score_fn = score_fn
        self.target = target
        self.settings = settings
        self.image = torch.from_numpy(np.ascontiguousarray(image))
        self.baseline = torch.from_numpy(blurred_baseline(image)).to(self.image.dtype)
        self.size = (int(image.shape[-2]), int(image.shape[-1]))
        self.cells = mask_cells(self.size)
        self._generator = torch.Generator().manual_seed(settings.seed)

    def noise(self) -> Tensor:
        """One iteration's noise (n, 3, H, W), shared by its gradient and its line search."""
        shape = (self.settings.ig_steps, *self.image.shape)
        if self.settings.noise == 0:
            return torch.zeros(shape, dtype=self.image.dtype)
        return torch.randn(shape, generator=self._generator, dtype=self.image.dtype) * self.settings.noise

    def deletion(self, up_masks: Tensor, noise: Tensor) -> Tensor:
        return path_score(self.score_fn, self.image, self.baseline, up_masks, self.target, noise)

    def insertion(self, up_masks: Tensor, noise: Tensor) -> Tensor:
        return path_score(self.score_fn, self.baseline, self.image, up_masks, self.target, noise)

    def start(self, count: int) -> Tensor:
        """``count`` masks of ones (everything kept), the authors' initialization."""
        return torch.ones((count, 1, *self.cells), dtype=self.image.dtype)


def igos_loss(problem: MaskProblem, masks: Tensor, noise: Tensor) -> Tensor:
    """I-GOS: deletion score + L1·mean|1 − M| + TV·tv(M), for one mask (1, 1, m, m)."""
    s = problem.settings
    up = upsample(masks, problem.size)
    regular = s.l1 * (1.0 - masks).abs().flatten(1).mean(dim=1) + s.tv * tv_norm(masks)
    return (problem.deletion(up, noise) + regular).sum()


def igos_pp_terms(problem: MaskProblem, masks: Tensor, noise: Tensor) -> tuple[Tensor, Tensor]:
    """I-GOS++ on (2, 1, m, m) = (deletion mask, insertion mask): the four score terms and the regularizer."""
    s = problem.settings
    up = upsample(masks, problem.size)
    combined_up = up[:1] * up[1:]
    scores = (problem.deletion(torch.cat([up[:1], combined_up]), noise).sum()
              - problem.insertion(torch.cat([up[1:], combined_up]), noise).sum())
    combined = masks[:1] * masks[1:]
    smoothness = bilateral_tv_norm(combined, upsample(combined, problem.size), problem.image)
    regular = s.l1 * (1.0 - combined).abs().mean() + s.tv * smoothness
    return scores, regular.sum()


def igos_step(problem: MaskProblem, masks: Tensor, noise: Tensor) -> Tensor:
    """One I-GOS iteration: the new mask after the gradient and the line search."""
    variable = masks.detach().requires_grad_(True)
    (gradient,) = torch.autograd.grad(igos_loss(problem, variable, noise), variable)
    alpha = line_search(lambda m: igos_loss(problem, m, noise), masks, gradient, problem.settings.step)
    return (masks - alpha * gradient).clamp(0.0, 1.0).detach()


def igos_pp_step(problem: MaskProblem, masks: Tensor, noise: Tensor) -> Tensor:
    """One I-GOS++ iteration on the (deletion, insertion) mask pair."""
    variable = masks.detach().requires_grad_(True)
    scores, regular = igos_pp_terms(problem, variable, noise)
    (gradient,) = torch.autograd.grad(0.5 * scores + regular, variable)

    def loss(candidate: Tensor) -> Tensor:
        return sum(igos_pp_terms(problem, candidate, noise))

    alpha = line_search(loss, masks, gradient, problem.settings.step)
    return (masks - alpha * gradient).clamp(0.0, 1.0).detach()


def optimize_mask(score_fn: ScoreFn, image: np.ndarray, target: int, settings: MaskOptimization,
                  plus_plus: bool) -> np.ndarray:
    """The saliency (H, W) float64 of ``target`` for one preprocessed image (3, H, W): ``1 − up(mask)``."""
    problem = MaskProblem(score_fn, image, target, settings)
    masks = problem.start(2 if plus_plus else 1)
    step = igos_pp_step if plus_plus else igos_step
    for _ in range(settings.iterations):
        masks = step(problem, masks, problem.noise())
    final = masks[:1] * masks[1:] if plus_plus else masks
    with torch.no_grad():
        return (1.0 - upsample(final, problem.size))[0, 0].double().numpy()

"""I-GOS and I-GOS++: one optimizer step of ``igos_core`` against a direct form (loops over the integration
steps and the mask cells, bilinear upsampling written out, gradients by central finite differences, the
Armijo backtracking spelled out), in float64 on a tiny conv net; and an IR runner is a one-line error."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from otx_xai.errors import UserError
from otx_xai.explain.methods.gradient.igos import gradient_model
from otx_xai.explain.methods.gradient.igos_core import (
    MaskOptimization,
    MaskProblem,
    blurred_baseline,
    igos_pp_step,
    igos_pp_terms,
    igos_step,
    mask_cells,
)

SIZE = 32  # 4×4 mask cells (28 per 224 px), blur kernel 7 px
TARGET = 1


def _net() -> nn.Module:
    torch.manual_seed(3)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.Tanh(), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
                        nn.Linear(16, 3))
    return net.double().eval()


def _score_fn(net: nn.Module):
    return lambda images: torch.softmax(net(images), dim=-1)


def _image() -> np.ndarray:
    """Smooth shading, a sharp vertical edge and a little noise: the bilateral weights exp(−Δ²/0.01) are
    near 1 on the shading and near 0 across the edge, so both matter (on pure noise they all vanish)."""
    ys, xs = np.mgrid[0:SIZE, 0:SIZE] / SIZE
    shading = np.stack([np.sin(3 * xs + 2 * ys), np.cos(2 * xs - ys), xs * ys])
    edge = np.where(xs > 0.5, 1.5, -1.5)[None]
    return shading + edge + 0.01 * np.random.default_rng(0).normal(size=(3, SIZE, SIZE))


def _upsample_matrix(cells: int, size: int) -> np.ndarray:
    """(size, cells) weights of bilinear interpolation with aligned corners, one output pixel at a time."""
    matrix = np.zeros((size, cells))
    for i in range(size):
        source = i * (cells - 1) / (size - 1)
        low = min(int(np.floor(source)), cells - 2)
        frac = source - low
        matrix[i, low] += 1 - frac
        matrix[i, low + 1] += frac
    return matrix


class Direct:
    """The losses of both methods written out the slow way."""

    def __init__(self, net: nn.Module, image: np.ndarray, settings: MaskOptimization) -> None:
        self.net, self.image, self.s = net, image, settings
        self.baseline = blurred_baseline(image)
        self.up = _upsample_matrix(4, SIZE)

    def upsample(self, mask: np.ndarray) -> np.ndarray:
        return self.up @ mask @ self.up.T

    def score(self, image: np.ndarray) -> float:
        with torch.no_grad():
            return float(torch.softmax(self.net(torch.from_numpy(image[None])), dim=-1)[0, TARGET])

    def path(self, start: np.ndarray, end: np.ndarray, mask: np.ndarray) -> float:
        total = 0.0
        up = self.upsample(mask)
        for k in range(1, self.s.ig_steps + 1):
            a = k / self.s.ig_steps
            total += self.score(start * a * up + end * (1 - a * up))
        return total / self.s.ig_steps

    @staticmethod
    def tv(mask: np.ndarray) -> float:
        rows, cols = mask.shape
        vertical = sum((mask[i + 1, j] - mask[i, j]) ** 2 for i in range(rows - 1) for j in range(cols))
        horizontal = sum((mask[i, j + 1] - mask[i, j]) ** 2 for i in range(rows) for j in range(cols - 1))
        return vertical / ((rows - 1) * cols) + horizontal / (rows * (cols - 1))

    def bilateral_tv(self, mask: np.ndarray) -> float:
        up, image = self.upsample(mask), self.image
        vertical = horizontal = 0.0
        for i in range(SIZE):
            for j in range(SIZE):
                if i + 1 < SIZE:
                    weight = np.exp(-np.mean((image[:, i + 1, j] - image[:, i, j]) ** 2) / 0.01)
                    vertical += weight * (up[i + 1, j] - up[i, j]) ** 2
                if j + 1 < SIZE:
                    weight = np.exp(-np.mean((image[:, i, j + 1] - image[:, i, j]) ** 2) / 0.01)
                    horizontal += weight * (up[i, j + 1] - up[i, j]) ** 2
        count = (SIZE - 1) * SIZE
        return 0.5 * (self.tv(mask) + vertical / count + horizontal / count)

    def igos(self, masks: np.ndarray) -> float:
        mask = masks[0]
        return (self.path(self.image, self.baseline, mask) + self.s.l1 * np.mean(np.abs(1 - mask))
                + self.s.tv * self.tv(mask))

    def igos_pp_parts(self, masks: np.ndarray) -> tuple[float, float]:
        deletion, insertion = masks
        up_combined = self.upsample(deletion) * self.upsample(insertion)
        steps = self.s.ig_steps

        def combined_path(start: np.ndarray, end: np.ndarray) -> float:
            return sum(self.score(start * (k / steps) * up_combined + end * (1 - (k / steps) * up_combined))
                       for k in range(1, steps + 1)) / steps

        scores = (self.path(self.image, self.baseline, deletion) - self.path(self.baseline, self.image, insertion)
                  + combined_path(self.image, self.baseline) - combined_path(self.baseline, self.image))
        combined = deletion * insertion
        # the bilateral term of the product of the low-resolution masks is taken on its own upsampling
        regular = self.s.l1 * np.mean(np.abs(1 - combined)) + self.s.tv * self.bilateral_tv(combined)
        return scores, regular


def _finite_gradient(loss, masks: np.ndarray, h: float = 1e-6) -> np.ndarray:
    gradient = np.zeros_like(masks)
    for index in np.ndindex(masks.shape):
        up, down = masks.copy(), masks.copy()
        up[index] += h
        down[index] -= h
        gradient[index] = (loss(up) - loss(down)) / (2 * h)
    return gradient


def _armijo_step(loss, masks: np.ndarray, gradient: np.ndarray, step: float) -> np.ndarray:
    base, alpha = loss(masks), step
    while True:
        candidate = np.clip(masks - alpha * gradient, 0, 1)
        if loss(candidate) <= base - 1e-4 * alpha * np.sum(gradient**2) or alpha < 1e-5:
            return candidate
        alpha *= 0.2


def _problem(net: nn.Module, image: np.ndarray, settings: MaskOptimization) -> MaskProblem:
    problem = MaskProblem(_score_fn(net), image, TARGET, settings)
    assert problem.cells == mask_cells((SIZE, SIZE)) == (4, 4)
    return problem


def test_one_igos_step_equals_the_direct_form() -> None:
    net, image = _net(), _image()
    settings = MaskOptimization(iterations=1, ig_steps=5, step=400.0, noise=0.0)
    masks = np.random.default_rng(1).uniform(0.2, 0.8, size=(1, 4, 4))
    direct = Direct(net, image, settings)
    gradient = _finite_gradient(direct.igos, masks)
    expected = _armijo_step(direct.igos, masks, gradient, settings.step)
    problem = _problem(net, image, settings)
    got = igos_step(problem, torch.from_numpy(masks[:, None]), problem.noise())[:, 0].numpy()
    assert not np.allclose(expected, masks, atol=1e-3)  # the step moved the mask
    np.testing.assert_allclose(got, expected, atol=1e-7)


def test_one_igos_plus_plus_step_equals_the_direct_form() -> None:
    net, image = _net(), _image()
    settings = MaskOptimization(iterations=1, ig_steps=3, step=1000.0, noise=0.0)
    masks = np.random.default_rng(2).uniform(0.2, 0.9, size=(2, 4, 4))
    direct = Direct(net, image, settings)

    def descent_objective(m: np.ndarray) -> float:  # half the score terms: the authors' direction
        scores, regular = direct.igos_pp_parts(m)
        return 0.5 * scores + regular

    gradient = _finite_gradient(descent_objective, masks)
    expected = _armijo_step(lambda m: sum(direct.igos_pp_parts(m)), masks, gradient, settings.step)
    problem = _problem(net, image, settings)
    scores, regular = igos_pp_terms(problem, torch.from_numpy(masks[:, None]), problem.noise())
    assert (float(scores.detach()), float(regular.detach())) == pytest.approx(direct.igos_pp_parts(masks), abs=1e-10)
    got = igos_pp_step(problem, torch.from_numpy(masks[:, None]), problem.noise())[:, 0].numpy()
    assert not np.allclose(expected, masks, atol=1e-3)
    np.testing.assert_allclose(got, expected, atol=1e-7)


def test_an_ir_runner_is_a_one_line_error_naming_the_forward_only_methods() -> None:
    def ir_run(images: np.ndarray) -> dict[str, np.ndarray]:  # what ir_runner returns: no torch module
        return {"logits": np.zeros((len(images), 3))}

    with pytest.raises(UserError) as error:
        gradient_model(ir_run, "IGOS")
    message = str(error.value)
    assert "\n" not in message and "IGOS needs gradients" in message and "RISE" in message and ".ckpt" in message

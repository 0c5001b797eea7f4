"""LIME's surrogate model (lime_base.LimeBase with lime_image's defaults), in closed form.

Samples z ∈ {0, 1}^F (superpixel kept or hidden; the first sample keeps all) are weighted by the kernel
π(z) = sqrt(exp(−d(z)² / width²)), d the cosine distance of z to the all-ones sample (1 − sqrt(|z| / F);
1 for an empty z), width 0.25. Per explained class, the ridge regression lime fits (sklearn's
``Ridge(alpha=1, fit_intercept=True)`` with sample weights π) is

    β = (X̃ᵀ Π X̃ + α I)⁻¹ X̃ᵀ Π ỹ,   intercept = ȳ − x̄ · β

with x̄, ȳ the π-weighted means and X̃, ỹ the data centred on them: one F × F system whose right-hand
sides are every explained class at once (scikit-learn is not needed at run time).
"""

from __future__ import annotations

import numpy as np

KERNEL_WIDTH = 0.25  # lime_image.LimeImageExplainer's default
RIDGE_ALPHA = 1.0  # lime_base.LimeBase's Ridge(alpha=1)


def lime_samples(num_samples: int, num_features: int, seed: int) -> np.ndarray:
    """Binary samples (num_samples, num_features) uint8, uniformly random but the first, which keeps all.

    Drawn as lime draws them (``RandomState(seed).randint(0, 2, N·F)``), so lime's LimeImageExplainer with
    ``random_state=seed`` (and an explicit ``random_seed``) hides the same superpixels in the same samples."""
    samples = np.random.RandomState(seed).randint(0, 2, num_samples * num_features).astype(np.uint8)
    samples = samples.reshape(num_samples, num_features)
    samples[0] = 1
    return samples


def cosine_distances(samples: np.ndarray) -> np.ndarray:
    """Cosine distance (N,) of each binary sample to the all-ones one (1 for an empty sample)."""
    kept = samples.sum(axis=1, dtype=np.float64)
    return 1.0 - np.sqrt(kept / samples.shape[1])


def kernel_weights(samples: np.ndarray, width: float = KERNEL_WIDTH) -> np.ndarray:
    """lime's exponential kernel of the cosine distances: sqrt(exp(−d² / width²))."""
    return np.sqrt(np.exp(-(cosine_distances(samples) ** 2) / width**2))


def weighted_ridge(features: np.ndarray, targets: np.ndarray, weights: np.ndarray,
                   alpha: float = RIDGE_ALPHA) -> tuple[np.ndarray, np.ndarray]:
    """Coefficients (T, F) and intercepts (T,) of the weighted ridge regression of ``targets`` (N, T) on
    ``features`` (N, F), with an unpenalized intercept (sklearn's Ridge with sample_weight)."""
    x = np.asarray(features, dtype=np.float64)
    y = np.asarray(targets, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    x_mean = w @ x / w.sum()
    y_mean = w @ y / w.sum()
    xc, yc = x - x_mean, y - y_mean
    weighted = xc * w[:, None]
    gram = weighted.T @ xc
    gram[np.diag_indices_from(gram)] += alpha
    coef = np.linalg.solve(gram, weighted.T @ yc).T
    return coef, y_mean - coef @ x_mean


def lime_coefficients(samples: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per class column of ``scores`` (N, T): the superpixel weights (T, F) and intercepts (T,) lime reports."""
    return weighted_ridge(samples, scores, kernel_weights(samples))

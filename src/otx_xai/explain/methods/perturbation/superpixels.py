"""LIME's superpixels: scikit-image's quickshift with lime's defaults (kernel_size 4, max_dist 200, ratio
0.2) or SLIC (scikit-image's defaults: about 100 segments, compactness 10), on the image as RGB in [0, 1]
(the model's input with its normalization undone), labelled 0 … n−1."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from otx_xai.data.transforms import IMAGENET_MEAN, IMAGENET_STD

QUICKSHIFT = {"kernel_size": 4, "max_dist": 200, "ratio": 0.2}  # lime_image.LimeImageExplainer's defaults
SLIC = {"n_segments": 100, "compactness": 10.0, "start_label": 0}


def to_rgb(image: np.ndarray, mean: Sequence[float] = IMAGENET_MEAN,
           std: Sequence[float] = IMAGENET_STD) -> np.ndarray:
    """A preprocessed image (3, h, w) back as RGB (h, w, 3) float64 in [0, 1]; mean and std in 0..255 units."""
    pixels = image.astype(np.float64) * np.asarray(std)[:, None, None] + np.asarray(mean)[:, None, None]
    return np.clip(pixels / 255.0, 0.0, 1.0).transpose(1, 2, 0)


def superpixels(rgb: np.ndarray, method: str = "quickshift") -> np.ndarray:
    """Segment labels (h, w) int64, 0 … n−1 with every label used, of an RGB image (h, w, 3) in [0, 1].

    quickshift runs with scikit-image's own tie-breaking seed, as under lime (whose ``random_seed`` never
    reaches it), so both cut the same superpixels."""
    from skimage.segmentation import quickshift, slic  # scikit-image is imported only when LIME runs

    if method == "quickshift":
        labels = quickshift(rgb, **QUICKSHIFT)
    elif method == "slic":
        labels = slic(rgb, **SLIC)
    else:
        raise ValueError(f"unknown segmentation {method!r}: use quickshift or slic")
    return np.unique(labels, return_inverse=True)[1].reshape(labels.shape).astype(np.int64)

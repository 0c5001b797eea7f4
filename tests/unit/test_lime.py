"""LIME against lime 0.2.0.1 (LimeImageExplainer, its Ridge and kernel) on the same model, superpixels and
sample matrix; scikit-image's superpixels as lime cuts them; the classes it paints."""

from __future__ import annotations

import numpy as np
import pytest
import skimage.data
import skimage.transform
import torch
from lime.lime_image import LimeImageExplainer
from lime.wrappers.scikit_image import SegmentationAlgorithm
from sklearn.linear_model import Ridge
from sklearn.metrics import pairwise_distances

from foreign_irs import calibrated_torchvision
from otx_xai.errors import UserError
from otx_xai.explain.black_box.classification import class_scores
from otx_xai.explain.black_box.presets import BlackBoxConfig
from otx_xai.explain.black_box.protocol import black_box_method
from otx_xai.explain.black_box.runners import torch_runner
from otx_xai.explain.config import ExplainConfig, TargetExplainGroup
from otx_xai.explain.entity import ModelInfo
from otx_xai.explain.methods.base import normalize_map
from otx_xai.explain.methods.perturbation.lime import LimeImage, lime_scores, superpixel_fill
from otx_xai.explain.methods.perturbation.lime_regression import (
    kernel_weights,
    lime_coefficients,
    lime_samples,
    weighted_ridge,
)
from otx_xai.explain.methods.perturbation.superpixels import superpixels, to_rgb

SIZE = 48
CLASSES = 4
INFO = ModelInfo("classification", [f"c{i}" for i in range(CLASSES)])
MEAN, STD = [123.675, 116.28, 103.53], [58.395, 57.12, 57.375]


@pytest.fixture(scope="module")
def net() -> torch.nn.Module:
    """resnet18 with calibrated batch norm, its classifier scaled so the softmax is not saturated."""
    model = calibrated_torchvision("resnet18", CLASSES, size=SIZE)
    with torch.no_grad():
        [m for m in model.modules() if isinstance(m, torch.nn.Linear)][-1].weight.mul_(0.02)
    return model


def _photo(index: int) -> np.ndarray:
    """A real photo (scikit-image's sample data) as the model's preprocessed input (3, SIZE, SIZE)."""
    rgb = skimage.transform.resize([skimage.data.astronaut(), skimage.data.chelsea()][index], (SIZE, SIZE))
    return ((rgb * 255.0 - MEAN) / STD).transpose(2, 0, 1).astype(np.float32)


def test_weighted_ridge_and_kernel_are_lime_bases() -> None:
    rng = np.random.default_rng(0)
    samples = rng.integers(0, 2, (300, 25)).astype(np.uint8)
    samples[0], samples[5] = 1, 0  # the all-kept sample, and an empty one (cosine distance 1)
    targets = rng.random((300, 3))
    distances = pairwise_distances(samples, samples[:1], metric="cosine").ravel()
    weights = np.sqrt(np.exp(-(distances**2) / 0.25**2))  # lime_image's default kernel, width 0.25
    np.testing.assert_allclose(kernel_weights(samples), weights, rtol=1e-12, atol=1e-14)
    coef, intercept = weighted_ridge(samples, targets, weights)
    for t in range(3):
        ridge = Ridge(alpha=1, fit_intercept=True).fit(samples, targets[:, t], sample_weight=weights)
        np.testing.assert_allclose(coef[t], ridge.coef_, rtol=1e-9, atol=1e-12)
        assert intercept[t] == pytest.approx(ridge.intercept_, rel=1e-9)


def test_superpixels_are_limes_quickshift() -> None:
    rgb = to_rgb(_photo(0), MEAN, STD)
    ours = superpixels(rgb)
    theirs = SegmentationAlgorithm("quickshift", kernel_size=4, max_dist=200, ratio=0.2, random_seed=0)(rgb)
    assert ours.max() + 1 == len(np.unique(theirs)) >= 3
    assert np.array_equal(ours, np.unique(theirs, return_inverse=True)[1].reshape(theirs.shape))
    slic = superpixels(rgb, "slic")
    assert slic.min() == 0 and np.array_equal(np.unique(slic), np.arange(slic.max() + 1)) and slic.max() >= 10


@pytest.mark.parametrize("index", [0, 1])
def test_lime_coefficients_equal_limes(net: torch.nn.Module, index: int) -> None:
    """The same superpixels and sample matrix: lime's LimeImageExplainer.explain_instance (mean-colour fill,
    cosine kernel 0.25, Ridge(alpha=1) per label) gives our coefficients and intercepts."""
    image = _photo(index)
    segments = superpixels(to_rgb(image, MEAN, STD), "slic")  # more superpixels than quickshift at 48 px
    features, num_samples, seed = int(segments.max()) + 1, 300, 11
    samples = lime_samples(num_samples, features, seed)  # what lime draws from RandomState(seed)
    theirs = np.random.RandomState(seed).randint(0, 2, num_samples * features).reshape(num_samples, features)
    assert np.array_equal(samples[1:], theirs[1:]) and samples[0].all()
    run = torch_runner(net, 32)

    def classify(batch: np.ndarray) -> np.ndarray:  # lime hands over (N, h, w, 3)
        return class_scores(run(np.ascontiguousarray(batch.transpose(0, 3, 1, 2)))["logits"], False)

    explainer = LimeImageExplainer(random_state=np.random.RandomState(seed))
    labels = (0, 1, 3)
    explanation = explainer.explain_instance(image.transpose(1, 2, 0).copy(), classify, labels=labels,
                                             top_labels=None, num_samples=num_samples, batch_size=32,
                                             segmentation_fn=lambda _: segments, random_seed=0)

    lime_input = LimeImage(image, segments, num_samples, seed=seed)  # draws the samples as lime does
    scores = lime_scores([lime_input], run, lambda outputs: class_scores(outputs["logits"], False), 64)[0]
    coef, intercept = lime_coefficients(lime_input.samples, scores[:, labels])
    for row, label in enumerate(labels):
        theirs = np.zeros(features)
        for feature, weight in explanation.local_exp[label]:
            theirs[feature] = weight
        assert np.abs(theirs).max() > 1e-3  # real weights
        np.testing.assert_allclose(coef[row], theirs, rtol=0, atol=1e-6)
        assert intercept[row] == pytest.approx(explanation.intercept[label], abs=1e-6)


def test_mean_fill_is_limes_fudged_image() -> None:
    image = _photo(1)
    segments = superpixels(to_rgb(image, MEAN, STD), "slic")
    hwc = image.transpose(1, 2, 0)
    fudged = hwc.copy()
    for x in np.unique(segments):  # lime_image.explain_instance with hide_color=None
        fudged[segments == x] = [np.mean(hwc[segments == x][:, c]) for c in range(3)]
    np.testing.assert_allclose(superpixel_fill(image, segments).transpose(1, 2, 0), fudged, rtol=1e-6, atol=1e-6)
    assert not superpixel_fill(image, segments, "baseline").any()


def test_the_method_paints_superpixels_with_the_asked_classes_weights(net: torch.nn.Module) -> None:
    images = np.stack([_photo(0), _photo(1)])
    config = BlackBoxConfig(num_samples=120, segmentation="slic", seed=4, batch_size=16)
    method = black_box_method("classification", "LIME", config)
    method.use_preprocess(MEAN, STD)
    run = torch_runner(net, 16)
    outputs = method.explain(images, run, INFO, ExplainConfig(target_explain_group=TargetExplainGroup.PREDICTIONS))
    top = outputs["logits"].argmax(axis=1)
    for index in range(2):
        assert [c for c in range(CLASSES) if outputs["saliency_map"][index, c].any()] == [top[index]]
        # the obvious form: the image's own samples hidden one by one, scored, regressed, painted
        segments = superpixels(to_rgb(images[index], MEAN, STD), "slic")
        lime_input = LimeImage(images[index], segments, 120, seed=4)
        fill = superpixel_fill(images[index], segments)
        perturbed = [np.where(sample[segments][None].astype(bool), images[index], fill)
                     for sample in lime_input.samples]
        scores = class_scores(run(np.stack(perturbed))["logits"], False)
        coef, _ = lime_coefficients(lime_input.samples, scores[:, [top[index]]])
        expected = normalize_map(torch.from_numpy(coef[0][segments].astype(np.float32))[None, None])[0, 0].numpy()
        assert np.abs(outputs["saliency_map"][index, top[index]].astype(int) - expected).max() <= 1
        for segment in range(segments.max() + 1):  # one grey level per superpixel
            assert len(np.unique(outputs["saliency_map"][index, top[index]][segments == segment])) == 1
    asked = method.explain(images, run, INFO, ExplainConfig(), targets=[[1, 2], [3]])
    assert [c for c in range(CLASSES) if asked["saliency_map"][0, c].any()] == [1, 2]
    settings = method.settings()
    assert (settings["num_samples"], settings["segmentation"], settings["inferences_per_image"]) == (120, "slic", 120)


def test_lime_settings_are_checked() -> None:
    assert BlackBoxConfig().lime_samples == 1000 and BlackBoxConfig(preset="speed").lime_samples == 500
    with pytest.raises(UserError, match=r"unknown black_box.segmentation 'felzenszwalb': use one of quickshift, slic"):
        BlackBoxConfig(segmentation="felzenszwalb")
    with pytest.raises(UserError, match=r"unknown black_box.fill 'grey': use one of mean, baseline"):
        BlackBoxConfig(fill="grey")

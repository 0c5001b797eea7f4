"""Recipro-CAM of the CNN classifiers == a slow, direct reference; shapes and dtypes of the explain forward."""

from __future__ import annotations

import copy
import functools
import warnings

import numpy as np
import pytest
import torch

from batchnorm import calibrate_batchnorm
from otx_xai.explain.methods.forward.recipro_cam import ReciproCAM, pointwise_layers
from otx_xai.models.classification import ImageClassifier

LABELS = ["circle", "square", "triangle"]
BACKBONES = ["resnet18", "mobilenet_v3_small", "efficientnet_b0"]


@functools.cache
def make_classifier(backbone: str, multilabel: bool, trained: bool, head: str = "torchvision") -> ImageClassifier:
    """A random classifier in eval mode, or a copy of it after two real AdamW steps (cached: read-only).

    BatchNorm statistics are measured on random images, so activations have a realistic scale (with
    torchvision's initial statistics, mobilenet's and efficientnet's features vanish to ~1e-10).
    """
    generator = torch.Generator().manual_seed(0)
    if trained:
        model = copy.deepcopy(make_classifier(backbone, multilabel, trained=False, head=head))
        train_steps_(model, generator)
    elif multilabel:  # the same random network read with sigmoid scores
        model = copy.deepcopy(make_classifier(backbone, multilabel=False, trained=False, head=head))
        model.multilabel = True
    else:
        torch.manual_seed(0)
        model = ImageClassifier(LABELS, backbone=backbone, multilabel=False, head=head)
        calibrate_batchnorm(model, torch.randn(4, 3, 64, 64, generator=generator))
    return model.eval()


def train_steps_(model: ImageClassifier, generator: torch.Generator, steps: int = 2) -> None:
    """A couple of optimizer steps of the model's own training_step."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model.train()
    for _ in range(steps):
        images = torch.randn(2, 3, 64, 64, generator=generator)
        if model.multilabel:
            labels = torch.randint(0, 2, (2, len(LABELS)), generator=generator)
        else:
            labels = torch.randint(0, len(LABELS), (2,), generator=generator)
        optimizer.zero_grad()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # self.log without a Trainer
            batch = {"images": images, "labels": labels, "infos": [None] * 2}
            model.training_step(batch, 0).backward()
        optimizer.step()


def images(batch: int = 2, size: int = 96, seed: int = 1) -> torch.Tensor:
    return torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(seed))


def reference_saliency(model: ImageClassifier, feature_map: torch.Tensor) -> np.ndarray:
    """Recipro-CAM by its definition, one masked copy at a time, normalized here with numpy.

    For each image and position k: a copy of the feature map keeping only position k, pooled and
    run through the real head, then softmax (multiclass) or sigmoid (multilabel).
    """
    batch, _, height, width = feature_map.shape
    scores = np.zeros((batch, len(LABELS), height, width), dtype=np.float64)
    with torch.no_grad():
        for b in range(batch):
            for i in range(height):
                for j in range(width):
                    copy = torch.zeros_like(feature_map[b : b + 1])
                    copy[:, :, i, j] = feature_map[b, :, i, j]
                    logits = model.head(copy.mean(dim=(2, 3)))
                    probs = torch.sigmoid(logits) if model.multilabel else torch.softmax(logits, dim=-1)
                    scores[b, :, i, j] = probs[0].double().numpy()
    low = scores.min(axis=(2, 3), keepdims=True)
    high = scores.max(axis=(2, 3), keepdims=True)
    return (scores - low) / np.maximum(high - low, 1e-12) * 255.0


def max_grey_difference(saliency: torch.Tensor, reference: np.ndarray) -> float:
    return float(np.abs(saliency.numpy().astype(np.float64) - reference).max())


@pytest.mark.parametrize("trained", [False, True], ids=["random", "trained"])
@pytest.mark.parametrize("multilabel", [False, True], ids=["multiclass", "multilabel"])
@pytest.mark.parametrize("backbone", BACKBONES)
def test_forward_explain_matches_direct_reference(backbone: str, multilabel: bool, trained: bool) -> None:
    model = make_classifier(backbone, multilabel, trained)
    batch = images()
    with torch.no_grad():
        outputs = model.forward_explain(batch)
        feature_map = model.backbone(batch)
    reference = reference_saliency(model, feature_map)
    assert reference.std() > 1.0, "degenerate maps would make the comparison meaningless"
    assert max_grey_difference(outputs["saliency_map"], reference) <= 1.0


def recipro(model: ImageClassifier, fast: bool, max_chunk: int = 4096) -> ReciproCAM:
    """ReciproCAM over the model's head: the GAP fast form, or (head_on_pooled=None) real masked copies."""
    return ReciproCAM(model._head_on_feature_map, model._scores,
                      head_on_pooled=model._head_on_pooled if fast else None, max_chunk=max_chunk)


@pytest.mark.parametrize("multilabel", [False, True], ids=["multiclass", "multilabel"])
@pytest.mark.parametrize("backbone", ["resnet18", "mobilenet_v3_small"])
def test_masked_copy_path_equals_gap_fast_form(backbone: str, multilabel: bool) -> None:
    model = make_classifier(backbone, multilabel, trained=True)
    direct, fast = recipro(model, fast=False), recipro(model, fast=True)
    with torch.no_grad():
        feature_map = model.backbone(images(size=128))
        torch.testing.assert_close(direct.saliency(feature_map), fast.saliency(feature_map), rtol=1e-5, atol=1e-6)
        assert (direct(feature_map).int() - fast(feature_map).int()).abs().max() <= 1
        assert (fast(feature_map).int() - model.explainer(feature_map).int()).abs().max() <= 1


@pytest.mark.parametrize("fast", [False, True], ids=["masked_copies", "gap_fast_form"])
def test_chunking_gives_identical_maps(fast: bool) -> None:
    model = make_classifier("resnet18", multilabel=False, trained=True)
    whole, chunked = recipro(model, fast), recipro(model, fast, max_chunk=3)
    with torch.no_grad():
        feature_map = model.backbone(images(batch=3, size=128))  # 3 images × 16 positions, chunks of 3
        torch.testing.assert_close(chunked.saliency(feature_map), whole.saliency(feature_map), rtol=1e-6, atol=1e-7)
        assert torch.equal(chunked(feature_map), whole(feature_map))


@pytest.mark.parametrize(("max_chunk", "chunk_sizes"), [(2, [2] * 24), (20, [18, 18, 12]), (4096, [48])])
def test_masked_copies_never_exceed_max_chunk_even_with_more_images(max_chunk: int, chunk_sizes: list[int]) -> None:
    """3 images × 16 positions: more images than max_chunk are split too, so no chunk grows with the batch."""
    model = make_classifier("resnet18", multilabel=False, trained=True)
    seen: list[int] = []

    def head(copies: torch.Tensor) -> torch.Tensor:
        seen.append(copies.shape[0])
        return model._head_on_feature_map(copies)

    chunked = ReciproCAM(head_on_feature_map=head, score_fn=model._scores, max_chunk=max_chunk)
    with torch.no_grad():
        feature_map = model.backbone(images(batch=3, size=128))
        torch.testing.assert_close(chunked.saliency(feature_map), recipro(model, fast=False).saliency(feature_map),
                                   rtol=1e-6, atol=1e-7)
    assert seen == chunk_sizes


@pytest.mark.parametrize("size", [64, 96, 128])
@pytest.mark.parametrize("backbone", BACKBONES)
def test_explain_outputs_shapes_and_dtypes(backbone: str, size: int) -> None:
    model = make_classifier(backbone, multilabel=False, trained=False)
    batch = images(batch=2, size=size)
    with torch.no_grad():
        outputs = model.forward_explain(batch)
        logits = model(batch)
    grid = size // 32
    saliency, vector, feature_map = outputs["saliency_map"], outputs["feature_vector"], outputs["feature_map"]
    assert saliency.dtype == torch.uint8 and saliency.shape == (2, len(LABELS), grid, grid)
    assert feature_map.dtype == torch.float32 and feature_map.shape[0] == 2
    assert feature_map.shape[2:] == (grid, grid) and feature_map.shape[1] > 1
    assert vector.dtype == torch.float32 and vector.shape == feature_map.shape[:2]
    torch.testing.assert_close(vector, feature_map.mean(dim=(2, 3)))
    assert torch.equal(outputs["logits"], logits), "explain must not change the prediction"
    flat = saliency.flatten(2)
    assert (flat.min(-1).values == 0).all() and (flat.max(-1).values == 255).all(), "each map spans 0..255"


def test_predict_step_switches_on_explain_mode() -> None:
    model = make_classifier("resnet18", multilabel=False, trained=False)
    batch = {"images": images(batch=2, size=64)}
    with torch.no_grad():
        plain = model.predict_step(batch, 0)
        model.explain_mode = True
        explained = model.predict_step(batch, 0)
    assert set(plain) == {"logits"}
    assert {"logits", "saliency_map", "feature_vector", "feature_map"} <= set(explained)
    assert torch.equal(plain["logits"], explained["logits"])


@pytest.mark.parametrize("multilabel", [False, True], ids=["multiclass", "multilabel"])
@pytest.mark.parametrize("backbone", ["mobilenet_v3_small", "efficientnet_b0"])
def test_linear_head_matches_direct_reference(backbone: str, multilabel: bool) -> None:
    """head='linear': GAP + one Linear(C', K) on the last feature map; maps still equal the reference."""
    model = make_classifier(backbone, multilabel, trained=True, head="linear")
    batch = images()
    with torch.no_grad():
        outputs = model.forward_explain(batch)
        feature_map = model.backbone(batch)
        assert torch.equal(outputs["logits"], model(batch))
        torch.testing.assert_close(outputs["logits"], model.head(feature_map.mean(dim=(2, 3))))
    assert isinstance(model.head, torch.nn.Linear)
    assert model.head.in_features == feature_map.shape[1] and model.head.out_features == len(LABELS)
    assert not [key for key in model.state_dict() if key.startswith("neck_head.") and "classifier" in key]
    reference = reference_saliency(model, feature_map)
    assert reference.std() > 1.0
    assert max_grey_difference(outputs["saliency_map"], reference) <= 1.0


def test_head_choice_is_checked() -> None:
    with pytest.raises(ValueError, match="unknown head 'mlp': use 'torchvision' or 'linear'"):
        ImageClassifier(LABELS, backbone="resnet18", head="mlp")


POINTWISE_HEADS = [("resnet18", "torchvision"), ("efficientnet_b0", "torchvision"), ("mobilenet_v3_small", "linear"),
                   ("mobilenet_v3_small", "torchvision")]


@pytest.mark.parametrize(("backbone", "head"), POINTWISE_HEADS)
@pytest.mark.parametrize("max_chunk", [4096, 20], ids=["whole", "chunked"])
def test_pointwise_head_convolution_form_equals_the_pooled_vector_form(backbone: str, head: str,
                                                                        max_chunk: int) -> None:
    """A head of linear layers and activations run on all positions as 1×1 convolutions == the head on each
    pooled vector (a linear head; mobilenet_v3's Linear-Hardswish-Dropout-Linear MLP)."""
    model = copy.deepcopy(make_classifier(backbone, multilabel=False, trained=True, head=head)).double()
    own_layers = pointwise_layers(model.head)
    assert len(model.explainer._pointwise_layers) == len(own_layers) and all(
        mine is own for mine, own in zip(model.explainer._pointwise_layers, own_layers, strict=True)
    ), "the model's own head takes the conv form"
    model.explainer.max_chunk = max_chunk  # 20 < 16 positions × 2 images: one image at a time
    with torch.no_grad():
        feature_map = model.backbone(images(size=128).double())
        conv_form = model.explainer.saliency(feature_map)
        vector_form = recipro(model, fast=True).saliency(feature_map)
    torch.testing.assert_close(conv_form, vector_form, rtol=0, atol=1e-12)


def test_conv_form_is_skipped_while_head_dropout_is_active() -> None:
    """efficientnet's head is Dropout + Linear: in training mode the dropout must act, so the vector form runs."""
    model = copy.deepcopy(make_classifier("efficientnet_b0", multilabel=False, trained=False))
    with torch.no_grad():
        feature_map = model.backbone.eval()(images(size=64))
        model.train()
        torch.manual_seed(0)
        trained_mode = model.explainer.saliency(feature_map)
        torch.manual_seed(0)
        vector_form = recipro(model, fast=True).saliency(feature_map)
    torch.testing.assert_close(trained_mode, vector_form)


def test_pointwise_layers_accepts_linear_layers_and_elementwise_modules_only() -> None:
    linear, hidden = torch.nn.Linear(4, 2), torch.nn.Linear(4, 4)
    assert pointwise_layers(linear) == [linear]
    assert pointwise_layers(torch.nn.Sequential(torch.nn.Dropout(0.2), linear)) is not None
    assert pointwise_layers(torch.nn.Sequential(hidden, torch.nn.Hardswish(), torch.nn.Dropout(), linear)) is not None
    assert pointwise_layers(torch.nn.Sequential(linear, torch.nn.Dropout(0.2))) is None, "must end in a Linear"
    assert pointwise_layers(torch.nn.Sequential(hidden, torch.nn.BatchNorm1d(4), linear)) is None, "not element-wise"
    with pytest.raises(ValueError, match="pointwise_head must be Linear layers"):
        ReciproCAM(lambda x: x, torch.sigmoid, pointwise_head=torch.nn.Sequential(hidden, torch.nn.ReLU()))

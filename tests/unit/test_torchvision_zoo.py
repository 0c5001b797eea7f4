"""Every torchvision classification model (under a size cap) explains through ImageClassifier with a real
per-class method: its own head kept exactly (logits == the untouched torchvision model's), the explain
outputs' contract, and maps == the one-copy-at-a-time reference."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import openvino as ov
import pytest
import torch
import torchvision
from torchvision.models import list_models

from batchnorm import calibrate_batchnorm, random_batch
from otx_xai.data.datamodule import DataConfig
from otx_xai.explain.methods.forward.vit_recipro_cam import ViTReciproCAMDirect
from otx_xai.models.classification import ImageClassifier
from otx_xai.openvino.export import export_ir

# The giants are left out: with this cap the whole file runs in about 3 minutes on 2 cores (see the
# README's zoo table for every model, giants included).
MAX_PARAMS = 30_000_000
IMAGENET = list(torchvision.models.ResNet18_Weights.DEFAULT.meta["categories"])
LABELS = ["circle", "square", "triangle"]
# the smallest input each model takes with a feature map of at least 2×2 (64 for the others)
INPUT_SIZE = {"alexnet": 96, "inception_v3": 128, "maxvit_t": 224}
CALIBRATION_SIZE = {"inception_v3": 299}  # its auxiliary classifier (run in train mode) needs the full size


def num_params(name: str) -> int:
    """Parameters of a torchvision model, from its weights' metadata (installed code, nothing built)."""
    return torchvision.models.get_model_weights(name).DEFAULT.meta["num_params"]


ALWAYS = {"vit_b_32"}  # the smallest torchvision ViT (88 M parameters, but only 7×7 patches to explain)
ZOO = sorted(name for name in list_models(module=torchvision.models)
             if num_params(name) <= MAX_PARAMS or name in ALWAYS)


def input_size(name: str) -> int:
    return 224 if name.startswith("vit_") else INPUT_SIZE.get(name, 64)


def calibrated_torchvision(name: str, size: int) -> torch.nn.Module:
    """The untouched torchvision model (1000 classes, random weights), its BatchNorm statistics measured on
    random images so activations have a realistic scale; in eval mode."""
    torch.manual_seed(0)
    net = torchvision.models.get_model(name, weights=None)
    if name.startswith("vit_"):  # torchvision zero-initializes the ViT head: every map would be constant
        torch.nn.init.normal_(net.heads.head.weight, std=0.02)
    return calibrate_batchnorm(net, random_batch(2, CALIBRATION_SIZE.get(name, size), seed=2))


def load_torchvision_state_(model: ImageClassifier, net: torch.nn.Module) -> set[str]:
    """Copy ``net``'s tensors into ``model`` by name (the cut keeps torchvision's module names under
    ``backbone.`` / ``neck_head.`` / ``_pooled_head.`` / ``vit.``); returns the keys of ``model`` not found."""
    source = net.state_dict()
    found, missing = {}, set()
    for key, value in model.state_dict().items():
        name = key.partition(".")[2]
        if name in source and source[name].shape == value.shape:
            found[key] = source[name]
        else:
            missing.add(key)
    model.load_state_dict(found, strict=False)
    return missing


def normalized(scores: np.ndarray) -> np.ndarray:
    """Min-max over each (h, w) map to 0..255, as floats."""
    low = scores.min(axis=(-2, -1), keepdims=True)
    high = scores.max(axis=(-2, -1), keepdims=True)
    return (scores - low) / np.maximum(high - low, 1e-30) * 255.0


def one_copy_at_a_time(model: ImageClassifier, feature_map: torch.Tensor) -> np.ndarray:
    """Recipro-CAM by its definition: for each image and position k, the feature map with every position
    but k zeroed, through the model's own pooling + head (``neck_head``), softmax; min-max normalized."""
    batch, _, height, width = feature_map.shape
    scores = np.zeros((batch, len(model.label_names), height, width))
    for image in range(batch):
        for y in range(height):
            for x in range(width):
                copy = torch.zeros_like(feature_map[image : image + 1])
                copy[..., y, x] = feature_map[image, :, y, x]
                scores[image, :, y, x] = torch.softmax(model.neck_head(copy), -1)[0].double().numpy()
    return normalized(scores)


def vit_reference(model: ImageClassifier, images: torch.Tensor) -> np.ndarray:
    """ViT Recipro-CAM by its definition: every masked token sequence through the real last block."""
    from otx_xai.models.vit_forward import tokens_before_last_block

    direct = ViTReciproCAMDirect.from_vit(model.vit, model._scores)
    return normalized(direct.saliency(tokens_before_last_block(model.vit, images)).double().numpy())


@pytest.mark.parametrize("head", ["torchvision", "linear"])
@pytest.mark.parametrize("name", ZOO)
def test_every_torchvision_classifier_explains_with_its_own_head(name: str, head: str) -> None:
    size = input_size(name)
    net = calibrated_torchvision(name, size)
    labels = IMAGENET if head == "torchvision" else LABELS
    model = ImageClassifier(labels, backbone=name, head=head).eval()
    missing = load_torchvision_state_(model, net)
    if head == "torchvision":
        assert not missing, f"the cut must keep every module of the network under its own name: {missing}"
    else:
        assert all(".weight" in key or ".bias" in key for key in missing) and len(missing) <= 4, missing
    assert model.explain_method == ("ViTReciproCAM" if name.startswith("vit_") else "ReciproCAM")
    images = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(1))
    if head == "linear":  # a fresh head scaled to the features, so that its softmax does not saturate
        with torch.no_grad():
            features = model.forward_explain(images)["feature_vector"]
        last = [module for module in model.head.modules() if isinstance(module, torch.nn.Linear)][-1]
        torch.nn.init.normal_(last.weight, std=0.3 / float(features.pow(2).sum(1).mean().sqrt()))
    with torch.no_grad():
        outputs = model.forward_explain(images)
        logits = model(images)
        own = net(images)
        reference = (vit_reference(model, images) if name.startswith("vit_")
                     else one_copy_at_a_time(model, outputs["feature_map"]))

    saliency, vector, feature_map = outputs["saliency_map"], outputs["feature_vector"], outputs["feature_map"]
    assert torch.equal(outputs["logits"], logits), "explain must not change the prediction"
    assert logits.dtype == torch.float32 and logits.shape == (2, len(labels))
    if head == "torchvision":
        torch.testing.assert_close(logits, own, rtol=1e-4, atol=1e-5 * float(own.abs().max()) + 1e-6)
    grid = feature_map.shape[2:]
    assert saliency.dtype == torch.uint8 and saliency.shape == (2, len(labels), *grid) and min(grid) >= 2
    assert feature_map.dtype == torch.float32 and feature_map.shape[:2] == (2, feature_map.shape[1])
    assert vector.dtype == torch.float32 and vector.shape[0] == 2
    assert reference.std() > 1.0, "degenerate maps would make the comparison meaningless"
    assert np.abs(saliency.numpy().astype(np.float64) - reference).max() <= 1.0


@pytest.mark.parametrize("name", ["mobilenet_v2", "googlenet", "swin_t"])
def test_the_traced_cut_exports_to_an_ir_with_the_same_maps(name: str, tmp_path: Path) -> None:
    """Networks the child-name cut could not explain (pooling in ``forward``, eval-only branches, a token
    grid after a permute): the IR of the traced parts gives torch's logits and maps."""
    net = calibrated_torchvision(name, 96)
    model = ImageClassifier(LABELS, backbone=name).eval()
    load_torchvision_state_(model, net)
    last = [module for module in model.head.modules() if isinstance(module, torch.nn.Linear)][-1]
    torch.nn.init.normal_(last.weight, std=0.05)  # scores that are not near-uniform
    images = torch.randn(2, 3, 96, 96, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = model.forward_explain(images)
    xml = export_ir(model, DataConfig(input_size=(96, 96)), tmp_path, explain=True)
    compiled = ov.Core().compile_model(str(xml), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    got = compiled(images.numpy())
    np.testing.assert_allclose(got[compiled.output("logits")], expected["logits"].numpy(), rtol=1e-4, atol=1e-4)
    maps = got[compiled.output("saliency_map")].astype(int)
    assert maps.shape == (2, 3, 3, 3) and len(np.unique(maps)) > 2
    assert np.abs(maps - expected["saliency_map"].numpy().astype(int)).max() <= 1

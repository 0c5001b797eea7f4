"""Score-CAM against the slow, obvious form of the official code: one channel at a time, float64."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision
from torchvision.models.feature_extraction import create_feature_extractor

from batchnorm import calibrate_batchnorm, random_batch
from otx_xai.errors import UserError
from otx_xai.explain.black_box.inference_copy import InferenceCopies
from otx_xai.explain.black_box.presets import BlackBoxConfig
from otx_xai.explain.config import ExplainConfig
from otx_xai.explain.entity import ModelInfo
from otx_xai.explain.methods.perturbation.score_cam import ScoreCAM
from otx_xai.explain.methods.perturbation.score_cam_core import score_cam_weights
from otx_xai.models.classification import ImageClassifier

LABELS = ["a", "b", "c", "d"]
SIZE = 64  # mobilenet_v3_small: a 2×2 feature map of 576 channels


def calibrated(model: ImageClassifier, size: int = SIZE) -> ImageClassifier:
    """BatchNorm statistics of random images (realistic feature scales) and a unit-variance classifier."""
    calibrate_batchnorm(model, random_batch(4, size, seed=5))
    with torch.no_grad():
        last = [m for m in model.modules() if isinstance(m, torch.nn.Linear)][-1]
        last.weight.normal_(0.0, 0.3, generator=torch.Generator().manual_seed(6))
    return model.eval()


def reference_score_cam(model: ImageClassifier, image: torch.Tensor, activations: torch.Tensor | None = None
                        ) -> np.ndarray:
    """The official code's loop, per channel, in float64; maps (K, H, W) uint8 (min-max to 0..255, rounded).
    ``activations``: the layer's (C, h, w) map; default the model's feature map."""
    size = tuple(image.shape[-2:])
    with torch.no_grad():
        if activations is None:
            activations = model.forward_explain(image[None])["feature_map"][0]
        activations = activations.double()
        total = torch.zeros(len(LABELS), *size, dtype=torch.float64)
        for channel in activations:
            up = F.interpolate(channel[None, None], size=size, mode="bilinear", align_corners=False)[0, 0]
            if up.max() == up.min():
                continue
            mask = (up - up.min()) / (up.max() - up.min())
            probs = torch.softmax(model((image * mask).float()[None]).double(), dim=-1)[0]
            total += probs[:, None, None] * up
    total = total.relu().numpy()
    low, high = total.min(axis=(1, 2), keepdims=True), total.max(axis=(1, 2), keepdims=True)
    return np.floor((total - low) / np.maximum(high - low, 1e-300) * 255.0 + 0.5).astype(np.uint8)


def explain(model: ImageClassifier, images: torch.Tensor, chunk: int = 4096, batch_size: int = 32,
            layer: str | None = None) -> np.ndarray:
    method = ScoreCAM(BlackBoxConfig(batch_size=batch_size), layer=layer)
    info = ModelInfo("classification", LABELS, False, "ScoreCAM")
    run = method.torch_runner(model, batch_size)
    return method.explain(images.numpy(), run, info, ExplainConfig(max_explain_chunk=chunk))["saliency_map"]


def grey_difference(first: np.ndarray, second: np.ndarray) -> int:
    return int(np.abs(first.astype(np.int16) - second.astype(np.int16)).max())


def test_score_cam_equals_the_one_channel_at_a_time_reference() -> None:
    torch.manual_seed(0)
    model = calibrated(ImageClassifier(LABELS, "mobilenet_v3_small"))
    image = torch.randn(1, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(1))
    maps = explain(model, image)
    assert maps.dtype == np.uint8 and maps.shape == (1, len(LABELS), SIZE, SIZE)
    reference = reference_score_cam(model, image[0])
    assert len({m.tobytes() for m in reference}) == len(LABELS), "each class its own map"
    assert grey_difference(maps[0], reference) <= 1


class TinyClassifier(torch.nn.Module):
    """Two convolutions and a linear head: a 6-channel 4×4 feature map, cheap enough to explain many times."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(3)
        self.features = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, stride=2, padding=1), torch.nn.ReLU(),
                                            torch.nn.Conv2d(8, 6, 3, stride=2, padding=1), torch.nn.ReLU())
        self.head = torch.nn.Linear(6, len(LABELS))

    def run(self, images: np.ndarray) -> dict[str, np.ndarray]:
        with torch.no_grad():
            feature_map = self.features(torch.from_numpy(images))
            return {"logits": self.head(feature_map.mean(dim=(2, 3))).numpy() * 4.0,
                    "feature_map": feature_map.numpy()}


def test_batch_invariance_and_chunk_parity() -> None:
    net = TinyClassifier()
    images = torch.randn(8, 3, 16, 16, generator=torch.Generator().manual_seed(2)).numpy()
    info = ModelInfo("classification", LABELS, False, "ScoreCAM")

    def explain_tiny(batch: np.ndarray, chunk: int) -> np.ndarray:
        method = ScoreCAM(BlackBoxConfig(batch_size=2))
        return method.explain(batch, net.run, info, ExplainConfig(max_explain_chunk=chunk))["saliency_map"]

    whole = explain_tiny(images, 4096)
    assert whole.shape == (8, len(LABELS), 16, 16) and whole.reshape(8, len(LABELS), -1).max(-1).min() == 255
    assert grey_difference(whole, explain_tiny(images, 3)) <= 1
    assert grey_difference(whole, np.concatenate([explain_tiny(images[i : i + 1], 4096) for i in range(8)])) <= 1


def test_constant_channels_are_skipped_without_nan() -> None:
    """Constant channels get no mask and no forward (weight 0); a map of only constant channels is zeros."""
    feature_maps = torch.zeros(1, 3, 2, 2)
    feature_maps[0, 1] = torch.tensor([[0.0, 1.0], [2.0, 3.0]])
    feature_maps[0, 2] = 7.0
    images = torch.ones(1, 3, 8, 8)
    calls: list[int] = []

    def score_fn(masked: torch.Tensor) -> torch.Tensor:
        calls.append(len(masked))
        assert torch.isfinite(masked).all() and masked.min() == 0.0 and masked.max() == 1.0
        return torch.tensor([[0.25, 0.75]]).expand(len(masked), 2)

    weights = score_cam_weights(images, feature_maps, score_fn, 2, chunk=16)
    assert calls == [1]
    assert torch.equal(weights[0], torch.tensor([[0.0, 0.25, 0.0], [0.0, 0.75, 0.0]]))


def test_vit_score_cam_masks_the_patch_token_grid() -> None:
    """A torchvision ViT: the feature map is the patch tokens entering the last block as a grid (no CLS)."""
    torch.manual_seed(0)
    model = ImageClassifier(LABELS, "vit_b_16", head="linear").eval()
    images = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        logits, feature_map = model.logits_and_feature_map(images)
        assert torch.allclose(logits, model(images), atol=1e-5)
    assert feature_map.shape == (1, 768, 14, 14)


def test_the_inference_copy_folds_batch_norms_and_follows_weight_changes() -> None:
    torch.manual_seed(0)
    net = torch.fx.symbolic_trace(torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8), torch.nn.ReLU(), torch.nn.Conv2d(8, 4, 3),
        torch.nn.BatchNorm2d(4)))
    for module in net.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            torch.nn.init.uniform_(module.running_mean, -1, 1)
            torch.nn.init.uniform_(module.running_var, 0.5, 2)
            torch.nn.init.uniform_(module.weight, 0.5, 2)
    net.eval()
    copies = InferenceCopies()
    copy = copies.of(net)
    assert copies.of(net) is copy, "kept while the weights stay"
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in copy.modules()), "folded into the convolutions"
    images = torch.randn(2, 3, 12, 12, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        torch.testing.assert_close(copy(images.contiguous(memory_format=torch.channels_last)), net(images),
                                   rtol=1e-5, atol=1e-5)
        net.get_submodule("3").weight.mul_(2.0)  # an optimizer step, in place
        remade = copies.of(net)
        assert remade is not copy
        torch.testing.assert_close(remade(images), net(images), rtol=1e-5, atol=1e-5)


def test_a_plain_torchvision_classifier_is_traced_and_folded_in_its_inference_copy() -> None:
    """A torchvision resnet18 handed over as it is (no traced graph inside) gets its batch norms folded too;
    its copy computes the same logits."""
    torch.manual_seed(0)
    net = torchvision.models.resnet18(num_classes=5).eval()
    for module in net.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            torch.nn.init.uniform_(module.running_mean, -0.5, 0.5)
            torch.nn.init.uniform_(module.running_var, 0.5, 2)
    copy = InferenceCopies().of(net)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in copy.modules()), "folded into the convolutions"
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules()), "the model itself is untouched"
    images = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        torch.testing.assert_close(copy(images.contiguous(memory_format=torch.channels_last)), net(images),
                                   rtol=1e-4, atol=1e-4)


def test_explain_layer_masks_with_the_named_layers_channels() -> None:
    """``--explain_layer layer3`` on resnet18: the masks are layer3's 256 channels (a 4×4 map at 64 px),
    checked against the reference fed torchvision's own layer3 output for the same weights."""
    torch.manual_seed(0)
    model = calibrated(ImageClassifier(LABELS, "resnet18"))
    net = torchvision.models.resnet18(num_classes=len(LABELS)).eval()
    net.load_state_dict(model.backbone.state_dict(), strict=False)
    image = torch.randn(1, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        layer3 = create_feature_extractor(net, ["layer3"])(image)["layer3"][0]
    assert layer3.shape == (256, 4, 4)
    maps = explain(model, image, layer="layer3")
    reference = reference_score_cam(model, image[0], layer3)
    assert grey_difference(maps[0], reference) <= 1
    assert ScoreCAM(layer="layer3").settings()["layer"] == "layer3"
    with pytest.raises(UserError, match="'layer9' is not a layer") as error:
        ScoreCAM(layer="layer9").check_layer(model)
    assert "layer4" in str(error.value) and "\n" not in str(error.value)


def test_a_swin_stage_by_name_is_masked_channels_last_as_the_network_reads_it() -> None:
    """Swin's ``norm`` gives (B, h, w, C), the token grid the traced cut moves to (B, C, h, w): Score-CAM at
    ``--explain_layer norm`` masks with the same channels as at the cut, so the maps are the same."""
    torch.manual_seed(0)
    model = calibrated(ImageClassifier(LABELS, "swin_t"))
    image = torch.randn(1, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(1))
    assert grey_difference(explain(model, image, layer="norm"), explain(model, image)) == 0

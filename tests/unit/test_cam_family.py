"""The CAM family against its peers on the same model and layer: Grad-CAM, Grad-CAM++, XGrad-CAM and LayerCAM
== pytorch-grad-cam 1.5.7 (≤ 1 grey level) on resnet18 (linear head), mobilenet_v3_small (MLP head) and swin_t
(its token grid); CAM == torchcam 0.5.0; Grad-CAM == CAM on a GAP + Linear head; batch invariance, chunk
parity, PREDICTIONS computing only the predicted classes; explain_layer; no IR export of a gradient method."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torchcam.methods as torchcam_methods
import torchvision
from pytorch_grad_cam import GradCAM as PeerGradCAM
from pytorch_grad_cam import GradCAMPlusPlus as PeerGradCAMPlusPlus
from pytorch_grad_cam import LayerCAM as PeerLayerCAM
from pytorch_grad_cam import XGradCAM as PeerXGradCAM
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

from batchnorm import calibrate_batchnorm, random_batch
from otx_xai.data.datamodule import DataConfig
from otx_xai.errors import UserError
from otx_xai.explain.methods.base import normalize_map
from otx_xai.models.classification import ImageClassifier
from otx_xai.models.gradient_explain import gradient_explainer
from otx_xai.models.vit import VisionTransformerClassifier
from otx_xai.openvino.export import export_ir

LABELS = ["a", "b", "c"]
SIZE = 96
PEERS = {"GradCAM": PeerGradCAM, "GradCAMPlusPlus": PeerGradCAMPlusPlus, "XGradCAM": PeerXGradCAM,
         "LayerCAM": PeerLayerCAM}


def calibrated(model: torch.nn.Module, size: int = SIZE) -> torch.nn.Module:
    """BatchNorm statistics of random images, so the feature maps have a realistic scale; eval mode."""
    return calibrate_batchnorm(model, random_batch(4, size, seed=5))


def images(count: int, seed: int = 1, size: int = SIZE) -> torch.Tensor:
    return torch.randn(count, 3, size, size, generator=torch.Generator().manual_seed(seed))


def torchvision_twin(model: ImageClassifier, backbone: str) -> torch.nn.Module:
    """The torchvision network with the model's weights (its cut keeps torchvision's module names)."""
    net = torchvision.models.get_model(backbone, num_classes=len(LABELS))
    state = {key.partition(".")[2]: value for key, value in model.state_dict().items()
             if key.startswith(("backbone.", "neck_head."))}
    net.load_state_dict(state)
    return net.eval()


class AtFeatureResolution:
    """A pytorch-grad-cam method whose maps stay at the layer's resolution (no resize to the input)."""

    def get_target_width_height(self, input_tensor: torch.Tensor) -> None:
        return None


def peer_maps(peer: type, net: torch.nn.Module, layer: torch.nn.Module, x: torch.Tensor, classes: int,
              reshape=None) -> np.ndarray:
    """pytorch-grad-cam's maps (B, K, h, w) in grey levels: one call per class, the whole batch each."""
    method = type("Peer", (AtFeatureResolution, peer), {})
    with method(net, [layer], reshape_transform=reshape) as cam:
        return np.stack([cam(x, [ClassifierOutputTarget(c)] * len(x)) for c in range(classes)], axis=1) * 255.0


LAYERS = {  # the peer's layer for the cut otx_xai finds by tracing (and the reshape the peer needs there)
    "resnet18": (lambda net: net.layer4, None),
    "mobilenet_v3_small": (lambda net: net.features, None),
    "swin_t": (lambda net: net.norm, lambda tensor: tensor.permute(0, 3, 1, 2)),  # (B, h, w, C) token grid
}


@pytest.fixture(scope="module", params=list(LAYERS))
def network(request: pytest.FixtureRequest) -> tuple[str, ImageClassifier, torch.nn.Module]:
    torch.manual_seed(0)
    model = calibrated(ImageClassifier(LABELS, request.param))
    return request.param, model, torchvision_twin(model, request.param)


@pytest.mark.parametrize("method", list(PEERS))
def test_gradient_maps_equal_pytorch_grad_cam(network: tuple, method: str) -> None:
    backbone, model, net = network
    layer, reshape = LAYERS[backbone]
    x = images(2)
    model.explainer = gradient_explainer(method, model._head_on_feature_map, multilabel=False)  # no re-trace
    with torch.no_grad():
        out = model.forward_explain(x)
        assert torch.equal(out["logits"], model(x)), "explain == predict"
    expected = peer_maps(PEERS[method], net, layer(net), x, len(LABELS), reshape)
    saliency = out["saliency_map"]
    assert saliency.dtype == torch.uint8 and saliency.shape == expected.shape
    assert expected.std() > 10, "the reference maps are not flat"
    assert np.abs(saliency.numpy().astype(float) - expected).max() <= 1.0


def torchcam_maps(net: torch.nn.Module, x: torch.Tensor, classes: int) -> np.ndarray:
    with torchcam_methods.CAM(net, "layer4", "fc", input_shape=tuple(x.shape[1:])) as cam:
        with torch.no_grad():
            net(x)
        return np.stack([cam([c] * len(x))[0].numpy() for c in range(classes)], axis=1) * 255.0


def test_cam_equals_torchcam_and_grad_cam_is_cam_on_a_gap_linear_head() -> None:
    torch.manual_seed(0)
    model = calibrated(ImageClassifier(LABELS, "resnet18", explain_method="CAM"))
    net = torchvision_twin(model, "resnet18")
    x = images(3)
    with torch.no_grad():
        cam = model.forward_explain(x)
    assert np.abs(cam["saliency_map"].numpy().astype(float) - torchcam_maps(net, x, len(LABELS))).max() <= 1.0
    grad_cam = ImageClassifier(LABELS, "resnet18", explain_method="GradCAM")
    grad_cam.load_state_dict(model.state_dict())
    grad = grad_cam.eval().explainer.saliency(cam["feature_map"], cam["logits"])
    raw_cam = model.explainer.saliency(cam["feature_map"])
    height, width = raw_cam.shape[-2:]
    torch.testing.assert_close(grad * (height * width), raw_cam.relu(), rtol=1e-4, atol=1e-5)
    assert (raw_cam < 0).any(), "a signed CAM: the ReLU of Grad-CAM matters here"
    assert (normalize_map(grad).int() - normalize_map(raw_cam.relu()).int()).abs().max() <= 1


def test_cam_needs_a_gap_linear_head() -> None:
    with pytest.raises(UserError, match="GradCAM"):
        ImageClassifier(LABELS, "mobilenet_v3_small", explain_method="CAM")


def test_batch_invariance_chunk_parity_and_predictions_only() -> None:
    torch.manual_seed(0)
    model = calibrated(ImageClassifier(LABELS, "mobilenet_v3_small", explain_method="GradCAMPlusPlus"))
    x = images(8, seed=3)
    with torch.no_grad():
        whole = model.forward_explain(x)["saliency_map"]
        one_by_one = torch.cat([model.forward_explain(x[i:i + 1])["saliency_map"] for i in range(8)])
        model.explainer.configure("ALL", 0.3, max_chunk=3)  # 3 maps at a time: one class row of one image
        chunked = model.forward_explain(x)["saliency_map"]
        model.explainer.configure("PREDICTIONS", 0.3, max_chunk=4096)
        out = model.forward_explain(x)
    assert (whole.int() - one_by_one.int()).abs().max() <= 1
    assert torch.equal(whole, chunked)
    top = out["logits"].argmax(-1)
    for index, label in enumerate(top.tolist()):
        assert torch.equal(out["saliency_map"][index, label], whole[index, label])
        others = [k for k in range(len(LABELS)) if k != label]
        assert int(out["saliency_map"][index, others].max()) == 0, "only the predicted class is computed"


def test_multilabel_predictions_are_every_class_over_the_threshold() -> None:
    torch.manual_seed(0)
    model = calibrated(ImageClassifier(LABELS, "resnet18", multilabel=True, explain_method="LayerCAM"))
    x = images(4, seed=4)
    with torch.no_grad():
        whole = model.forward_explain(x)["saliency_map"]
        scores = torch.sigmoid(model(x))
        threshold = float(scores.median())
        model.explainer.configure("PREDICTIONS", threshold, 4096)
        chosen = model.forward_explain(x)["saliency_map"]
    picked = scores > threshold
    assert picked.any() and not picked.all()
    assert torch.equal(chosen[picked], whole[picked])
    assert int(chosen[~picked].max()) == 0


def test_explain_layer_by_name_equals_the_peer_at_that_layer() -> None:
    torch.manual_seed(0)
    model = calibrated(ImageClassifier(LABELS, "resnet18", explain_method="XGradCAM", explain_layer="layer3"))
    net = torchvision_twin(model, "resnet18")
    x = images(2)
    with torch.no_grad():
        out = model.forward_explain(x)
        assert torch.equal(out["logits"], model(x))
    expected = peer_maps(PeerXGradCAM, net, net.layer3, x, len(LABELS))
    assert out["saliency_map"].shape == expected.shape == (2, 3, 6, 6)
    assert np.abs(out["saliency_map"].numpy().astype(float) - expected).max() <= 1.0
    assert model.explain_settings()["layer"] == "layer3"


def test_a_swin_stage_by_name_is_read_channels_last_as_the_network_reads_it() -> None:
    """Swin's stages give (B, h, w, C); the traced graph's permute(0, 3, 1, 2) says so, and the maps equal
    pytorch-grad-cam's at that stage with its documented reshape_transform; ``norm`` (the cut's own
    layer) gives the default maps exactly."""
    torch.manual_seed(0)
    model = calibrated(ImageClassifier(LABELS, "swin_t", explain_method="GradCAM", explain_layer="features.5"))
    net = torchvision_twin(model, "swin_t")
    x = images(2)
    with torch.no_grad():
        out = model.forward_explain(x)
    expected = peer_maps(PeerGradCAM, net, net.features[5], x, len(LABELS), lambda t: t.permute(0, 3, 1, 2))
    assert out["saliency_map"].shape == expected.shape == (2, 3, 6, 6) and expected.std() > 10
    assert np.abs(out["saliency_map"].numpy().astype(float) - expected).max() <= 1.0
    at_norm = ImageClassifier(LABELS, "swin_t", explain_method="GradCAM", explain_layer="norm")
    at_norm.load_state_dict(model.state_dict())
    default = ImageClassifier(LABELS, "swin_t", explain_method="GradCAM")
    default.load_state_dict(model.state_dict())
    with torch.no_grad():
        first = at_norm.eval().forward_explain(x)["saliency_map"].numpy().astype(int)
        second = default.eval().forward_explain(x)["saliency_map"].numpy().astype(int)
    assert np.abs(first - second).max() <= 1 and second.std() > 10


def test_a_wrong_layer_name_lists_the_nearest_names() -> None:
    with pytest.raises(UserError, match="layer4") as error:
        ImageClassifier(LABELS, "resnet18", explain_method="GradCAM", explain_layer="layr4")
    assert "\n" not in str(error.value)
    with pytest.raises(UserError, match="gradient methods"):
        ImageClassifier(LABELS, "resnet18", explain_method="ReciproCAM", explain_layer="layer4")


def test_vit_grad_cam_on_the_patch_grid_equals_the_peer() -> None:
    small = {"image_size": 32, "patch_size": 8, "num_layers": 2, "num_heads": 2, "hidden_dim": 16, "mlp_dim": 32}
    torch.manual_seed(0)
    model = VisionTransformerClassifier(LABELS, explain_method="GradCAM", **small).eval()
    torch.nn.init.normal_(model.vit.heads.head.weight, std=0.5)
    x = images(2, size=32)
    with torch.no_grad():
        out = model.forward_explain(x)

    def drop_cls(tensor: torch.Tensor) -> torch.Tensor:
        return tensor[:, 1:].transpose(1, 2).unflatten(-1, (4, 4))

    expected = peer_maps(PeerGradCAM, model.vit, model.vit.encoder.layers[-2], x, len(LABELS), drop_cls)
    assert expected.std() > 10
    assert np.abs(out["saliency_map"].numpy().astype(float) - expected).max() <= 1.0


def test_gradient_methods_do_not_export(tmp_path: Path) -> None:
    grad = ImageClassifier(LABELS, "resnet18", explain_method="GradCAM")
    with pytest.raises(UserError, match=r"CAM or ReciproCAM \(auto\), or export and explain the IR with ScoreCAM"):
        export_ir(grad, DataConfig(input_size=(64, 64)), tmp_path, explain=True)
    assert not list(tmp_path.iterdir()), "nothing half-written"

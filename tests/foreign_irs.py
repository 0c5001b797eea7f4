"""Building IRs that otx_xai did not write, and otx_xai's own export of the same weights, for the tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import openvino as ov
import torch
import torchvision
from torch import nn

from batchnorm import calibrate_batchnorm
from otx_xai.data.datamodule import DataConfig
from otx_xai.models.classification import ImageClassifier
from otx_xai.openvino.export import export_ir

SIZE = 96  # a 3×3 feature map for the stride-32 torchvision models


def random_images(count: int = 3, seed: int = 0, size: int = SIZE) -> np.ndarray:
    """A (count, 3, size, size) float32 batch of standard normal noise."""
    return np.random.default_rng(seed).normal(size=(count, 3, size, size)).astype(np.float32)


def save_plain_ir(net: nn.Module, xml: Path, static_input: bool = False, size: int = SIZE) -> Path:
    """What a team brings: ``ov.convert_model`` of its torch model (dynamic input unless ``static_input``:
    batch 1), saved with f32 weights."""
    example = torch.zeros(1, 3, size, size)
    shape = {"input": [ov.PartialShape([1, 3, size, size])]} if static_input else {}
    with torch.no_grad():
        model = ov.convert_model(net.eval(), example_input=example, **shape)
    xml.parent.mkdir(parents=True, exist_ok=True)
    ov.save_model(model, str(xml), compress_to_fp16=False)
    return xml


def calibrated_torchvision(name: str, num_classes: int, size: int = SIZE) -> nn.Module:
    """A random-weight torchvision classifier whose maps are not flat: batch-norm statistics of random images
    (at torchvision's initial statistics a deep random net's features fade to ~1e-8, e.g. mobilenet_v3) and
    a classifier of unit-variance weights (torchvision's tiny init gives near-uniform scores)."""
    torch.manual_seed(0)
    net = torchvision.models.get_model(name, weights=None, num_classes=num_classes)
    calibrate_batchnorm(net, torch.from_numpy(random_images(count=8, seed=9, size=size)))
    last = [m for m in net.modules() if isinstance(m, nn.Linear)][-1]
    nn.init.normal_(last.weight, std=1.0)
    return net.eval()


def own_export_of(name: str, net: nn.Module, labels: list[str], root: Path, size: int = SIZE) -> Path:
    """The same weights in otx_xai's ImageClassifier (head "torchvision"), exported by ``export_ir`` with the
    default (ImageNet) mean and std."""
    weights = root / f"{name}.pt"
    root.mkdir(parents=True, exist_ok=True)
    torch.save(net.state_dict(), weights)
    model = ImageClassifier(labels, backbone=name, weights=str(weights), head="torchvision").eval()
    own_last = [m for m in model.modules() if isinstance(m, nn.Linear)][-1]
    net_last = [m for m in net.modules() if isinstance(m, nn.Linear)][-1]
    own_last.load_state_dict(net_last.state_dict())  # the classifier, whether or not `weights` kept it
    return export_ir(model, DataConfig(input_size=(size, size)), root / f"{name}_own", explain=True)

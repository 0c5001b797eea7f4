"""Score-CAM through the OpenVINO runtime equals Score-CAM through torch: on otx_xai's explain export and
on a plain IR otx_xai did not write (its feature map exposed by the insertion), the masked inputs going
through the IR's asynchronous request queue."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from foreign_irs import SIZE, calibrated_torchvision, own_export_of, random_images, save_plain_ir
from otx_xai.engine.explain_choice import check_ir_outputs
from otx_xai.errors import UserError
from otx_xai.explain.black_box.presets import BlackBoxConfig
from otx_xai.explain.black_box.runners import ir_runner
from otx_xai.explain.config import ExplainConfig
from otx_xai.explain.entity import ModelInfo
from otx_xai.explain.methods.perturbation.score_cam import ScoreCAM
from otx_xai.models.classification import ImageClassifier
from otx_xai.openvino.foreign_metadata import ForeignIROptions
from otx_xai.openvino.inference import IRModel

LABELS = ["a", "b", "c"]
FLAGS = ForeignIROptions(labels="a,b,c", mean=[0, 0, 0], std=[1, 1, 1], input_size=[SIZE, SIZE])
NAME = "mobilenet_v3_small"  # a 3×3 feature map of 576 channels at 96 px
INFO = ModelInfo("classification", LABELS, False, "ScoreCAM")
CONFIG = BlackBoxConfig(batch_size=16)


def _torch_model(net: nn.Module, root: Path) -> ImageClassifier:
    """The net's weights in ImageClassifier, as ``own_export_of`` builds it."""
    model = ImageClassifier(LABELS, backbone=NAME, weights=str(root / f"{NAME}.pt"), head="torchvision").eval()
    own_last = [m for m in model.modules() if isinstance(m, nn.Linear)][-1]
    own_last.load_state_dict([m for m in net.modules() if isinstance(m, nn.Linear)][-1].state_dict())
    return model


def test_ir_score_cam_equals_torch_score_cam(tmp_path: Path) -> None:
    net = calibrated_torchvision(NAME, len(LABELS))
    plain, own = save_plain_ir(net, tmp_path / "plain.xml"), own_export_of(NAME, net, LABELS, tmp_path)
    images = random_images(count=1)
    method = ScoreCAM(CONFIG)
    model = _torch_model(net, tmp_path)
    torch_maps = method.explain(images, method.torch_runner(model, CONFIG.batch_size), INFO, ExplainConfig())
    assert torch_maps["saliency_map"].shape == (1, 3, SIZE, SIZE)
    assert len({m.tobytes() for m in torch_maps["saliency_map"][0]}) == 3, "each class its own map"
    skip = {"saliency_map", "feature_vector"}
    for ir in (IRModel(own, skip_outputs=skip), IRModel(plain, foreign=FLAGS, skip_outputs=skip)):
        assert ir.output_names == ["logits", "feature_map"]
        ir_maps = method.explain(images, ir_runner(ir, CONFIG.batch_size), INFO, ExplainConfig())
        assert set(ir_maps) == {"logits", "saliency_map"}
        np.testing.assert_allclose(ir_maps["logits"], torch_maps["logits"], rtol=1e-4, atol=1e-4)
        difference = np.abs(ir_maps["saliency_map"].astype(int) - torch_maps["saliency_map"].astype(int)).max()
        assert difference <= 1, difference


def test_an_ir_without_a_feature_map_is_a_one_line_error(tmp_path: Path) -> None:
    torch.manual_seed(0)  # global max pooling, no average: the insertion finds no cut, so no feature_map
    net = nn.Sequential(nn.Conv2d(3, 8, 3, stride=8), nn.ReLU(), nn.AdaptiveMaxPool2d(1), nn.Flatten(),
                        nn.Linear(8, len(LABELS)))
    ir = IRModel(save_plain_ir(net, tmp_path / "max_pool.xml"), foreign=FLAGS)
    assert ir.explain_unavailable is not None
    with pytest.raises(UserError, match=r"has no feature_map output .*which ScoreCAM needs") as error:
        check_ir_outputs(ir, "ScoreCAM", set(ScoreCAM.outputs))
    assert "\n" not in str(error.value)
    with pytest.raises(UserError, match="needs the model's feature_map"):
        ScoreCAM(CONFIG).explain(random_images(count=1), ir_runner(ir, 4), INFO, ExplainConfig())

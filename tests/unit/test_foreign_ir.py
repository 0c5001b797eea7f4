"""An IR otx_xai did not export: Recipro-CAM inserted into its graph gives the maps of otx_xai's own export.

Plain ``ov.convert_model`` IRs of torchvision classifiers (random weights, 3 labels) against the same weights
in ImageClassifier exported by ``export_ir``; small hand-made nets against the slow masked-copy form of
Recipro-CAM; labels and preprocessing from flags or from OTX-style rt_info; the one-line errors.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import openvino as ov
import openvino.opset13 as ops
import pytest
import torch
from torch import Tensor, nn

from foreign_irs import SIZE, calibrated_torchvision, own_export_of, random_images, save_plain_ir
from otx_xai.explain.methods.base import normalize_map
from otx_xai.openvino.foreign_metadata import ForeignIROptions
from otx_xai.openvino.inference import IRError, IRModel
from otx_xai.openvino.recipro_cam_insertion import insert_recipro_cam

LABELS = ["a", "b", "c"]
FLAGS = ForeignIROptions(labels="a,b,c", mean=[0, 0, 0], std=[1, 1, 1], input_size=[SIZE, SIZE])
ZOO = ["resnet18", "mobilenet_v3_small", "efficientnet_b0"]  # linear head, MLP head, dropout + linear head


@pytest.fixture(scope="module")
def zoo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[nn.Module, Path, Path]]:
    """Per torchvision model: the net, its plain IR and otx_xai's own export of the same weights."""
    root = tmp_path_factory.mktemp("foreign")
    built = {}
    for name in ZOO:
        net = calibrated_torchvision(name, len(LABELS))
        built[name] = (net, save_plain_ir(net, root / f"{name}.xml"), own_export_of(name, net, LABELS, root))
    return built


@pytest.mark.parametrize("name", ZOO)
def test_plain_ir_maps_equal_the_own_export(zoo: dict, name: str) -> None:
    net, plain, own = zoo[name]
    foreign, exported = IRModel(plain, foreign=FLAGS), IRModel(own)
    assert foreign.explain_unavailable is None and foreign.has_xai_outputs
    assert foreign.output_names == ["logits", "feature_vector", "saliency_map", "feature_map"]
    assert foreign.model_info.explain_method == "ReciproCAM" and foreign.model_info.label_names == LABELS
    batch = random_images()
    got, expected = foreign.infer(batch), exported.infer(batch)
    with torch.no_grad():
        torch_logits = net(torch.from_numpy(batch)).numpy()
    np.testing.assert_allclose(got["logits"], torch_logits, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(got["logits"], expected["logits"], rtol=1e-5, atol=1e-6)
    assert got["saliency_map"].dtype == np.uint8 and got["saliency_map"].shape == (3, 3, 3, 3)
    difference = np.abs(got["saliency_map"].astype(int) - expected["saliency_map"].astype(int)).max()
    assert difference <= 1, difference
    assert len(np.unique(got["saliency_map"])) > 2  # real maps, not all 0/255
    np.testing.assert_allclose(got["feature_vector"], expected["feature_vector"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got["feature_map"], expected["feature_map"], rtol=1e-5, atol=1e-6)


class TinyNet(nn.Module):
    """Two convolutions (a 6×6 map at 96×96) and a head built in one of the ways traced IRs show."""

    def __init__(self, pooling: str) -> None:
        super().__init__()
        self.pooling = pooling
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3, stride=4, padding=1), nn.ReLU(),
                                      nn.Conv2d(8, 16, 3, stride=4, padding=1), nn.ReLU())
        self.head = nn.Sequential(nn.Linear(16 * 6 * 6 if pooling == "flatten" else 16, 12), nn.ReLU(),
                                  nn.Linear(12, len(LABELS)))

    def tail(self, feature_map: Tensor, batch: int) -> Tensor:
        """Pooling + head of a feature map (the part Recipro-CAM re-runs)."""
        if self.pooling == "mean_view_batch":  # keepdim mean, then a Reshape computed from the image batch
            pooled = feature_map.mean(dim=(2, 3), keepdim=True).view(batch, -1)
        elif self.pooling == "mean_flat":  # a (B, C) ReduceMean straight into the head
            pooled = feature_map.mean(dim=(2, 3))
        elif self.pooling == "avgpool":  # a global AvgPool with a fixed kernel
            pooled = torch.flatten(nn.functional.avg_pool2d(feature_map, 6), 1)  # the 6×6 map at 96×96
        elif self.pooling == "corner_avgpool":  # a 1×1 output that averages only a 3×3 corner: not global
            pooled = torch.flatten(nn.functional.avg_pool2d(feature_map, 3, stride=6), 1)
        else:  # the whole map flattened into the head: no global pooling
            pooled = feature_map.flatten(1)
        return self.head(pooled)

    def forward(self, images: Tensor) -> Tensor:
        return self.tail(self.features(images), images.shape[0])


def masked_copy_reference(net: TinyNet, batch: np.ndarray, multilabel: bool) -> np.ndarray:
    """Recipro-CAM's slow form: the whole tail on every single-position copy of the feature map."""
    with torch.no_grad():
        feature_map = net.features(torch.from_numpy(batch))
        count, _, height, width = feature_map.shape
        scores = []
        for position in range(height * width):
            mask = torch.zeros(height * width)
            mask[position] = 1
            logits = net.tail(feature_map * mask.view(1, 1, height, width), count)
            scores.append(torch.sigmoid(logits) if multilabel else torch.softmax(logits, -1))
        saliency = torch.stack(scores, dim=2).view(count, -1, height, width)
        return normalize_map(saliency).numpy()


@pytest.mark.parametrize(("pooling", "multilabel"), [("mean_view_batch", False), ("mean_flat", True),
                                                     ("avgpool", False)])
def test_head_structures_against_the_masked_copy_form(tmp_path: Path, pooling: str, multilabel: bool) -> None:
    torch.manual_seed(1)
    net = TinyNet(pooling).eval()
    xml = save_plain_ir(net, tmp_path / f"{pooling}.xml")
    flags = ForeignIROptions(labels=LABELS, mean=[0, 0, 0], std=[1, 1, 1], input_size=[SIZE, SIZE],
                             multilabel=multilabel)
    ir = IRModel(xml, foreign=flags)
    assert ir.explain_unavailable is None and ir.model_info.multilabel is multilabel
    batch = random_images(count=2, seed=3)
    outputs = ir.infer(batch)
    with torch.no_grad():
        np.testing.assert_allclose(outputs["logits"], net(torch.from_numpy(batch)).numpy(), rtol=1e-5, atol=1e-6)
    expected = masked_copy_reference(net, batch, multilabel)
    assert outputs["saliency_map"].shape == expected.shape == (2, 3, 6, 6)
    assert np.abs(outputs["saliency_map"].astype(int) - expected.astype(int)).max() <= 1


@pytest.mark.parametrize("pooling", ["flatten", "corner_avgpool"])
def test_no_global_pooling_is_refused_but_still_predicts(tmp_path: Path, pooling: str) -> None:
    torch.manual_seed(1)
    net = TinyNet(pooling).eval()
    ir = IRModel(save_plain_ir(net, tmp_path / f"{pooling}.xml"), foreign=FLAGS)
    assert not ir.has_xai_outputs and "no global average pooling" in (ir.explain_unavailable or "")
    with pytest.raises(IRError, match="cannot be explained with Recipro-CAM: no global average pooling"):
        ir.require_xai_outputs()
    batch = random_images(count=2)
    with torch.no_grad():  # a black-box method can still run it: its logits come out as "logits"
        np.testing.assert_allclose(ir.infer(batch)["logits"], net(torch.from_numpy(batch)).numpy(), rtol=1e-5,
                                   atol=1e-6)


def test_otx_rt_info_gives_labels_and_preprocessing(zoo: dict, tmp_path: Path) -> None:
    """An OTX / Model API IR: static batch-1 input, model_info labels, mean_values, scale_values; no flags."""
    net, plain, _ = zoo["resnet18"]
    model = ov.Core().read_model(str(save_plain_ir(net, tmp_path / "static.xml", static_input=True)))
    for key, value in {"labels": "cat dog bird", "mean_values": "1 2 3", "scale_values": "255",
                       "model_type": "Classification", "task_type": "classification"}.items():
        model.set_rt_info(value, ["model_info", key])
    xml = tmp_path / "otx.xml"
    ov.save_model(model, str(xml), compress_to_fp16=False)
    ir = IRModel(xml)
    assert ir.model_info.label_names == ["cat", "dog", "bird"] and not ir.model_info.multilabel
    data = ir.data_config()
    assert data.input_size == (SIZE, SIZE) and data.mean == [1, 2, 3] and data.std == [255, 255, 255]
    batch = random_images(count=2)  # batch 2 although the IR was batch 1
    np.testing.assert_allclose(ir.infer(batch)["logits"], IRModel(plain, foreign=FLAGS).infer(batch)["logits"],
                               rtol=1e-5, atol=1e-6)
    flipped = IRModel(xml, foreign=ForeignIROptions(reverse_input_channels=True))
    assert flipped.data_config().mean == [3, 2, 1]  # rt_info's values are in the IR's (BGR) order
    with torch.no_grad():
        expected = net(torch.from_numpy(np.ascontiguousarray(batch[:, ::-1]))).numpy()
    np.testing.assert_allclose(flipped.infer(batch)["logits"], expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(("key", "value", "words"), [("task_type", "detection", "'detection' IR"),
                                                     ("hierarchical", "True", "hierarchical classifier")])
def test_rt_info_of_another_kind_of_model_is_refused(zoo: dict, tmp_path: Path, key: str, value: str,
                                                     words: str) -> None:
    model = ov.Core().read_model(str(zoo["resnet18"][1]))
    model.set_rt_info(value, ["model_info", key])
    xml = tmp_path / f"{key}.xml"
    ov.save_model(model, str(xml), compress_to_fp16=False)
    with pytest.raises(IRError, match=words):
        IRModel(xml, foreign=FLAGS)


def test_a_final_softmax_is_taken_off_the_logits(zoo: dict, tmp_path: Path) -> None:
    net = zoo["resnet18"][0]
    ir = IRModel(save_plain_ir(nn.Sequential(net, nn.Softmax(dim=-1)), tmp_path / "softmax.xml"), foreign=FLAGS)
    batch = random_images(count=2)
    with torch.no_grad():
        np.testing.assert_allclose(ir.infer(batch)["logits"], net(torch.from_numpy(batch)).numpy(), rtol=1e-4,
                                   atol=1e-5)


@pytest.mark.parametrize(("flags", "words"), [
    (ForeignIROptions(mean=[0, 0, 0], std=[1, 1, 1], input_size=[SIZE, SIZE]), "--ir.labels"),
    (ForeignIROptions(labels="a,b,c", input_size=[SIZE, SIZE]), "--ir.mean and --ir.std"),
    (ForeignIROptions(labels="a,b,c", mean=[0, 0, 0], std=[1, 1, 1]), "--ir.input_size"),
    (ForeignIROptions(labels="a,b", mean=[0, 0, 0], std=[1, 1, 1], input_size=[SIZE, SIZE]), "3 class logits"),
])
def test_missing_settings_name_the_flag(zoo: dict, flags: ForeignIROptions, words: str) -> None:
    with pytest.raises(IRError, match=words) as error:
        IRModel(zoo["resnet18"][1], foreign=flags)
    assert "\n" not in str(error.value)


def test_flags_are_refused_for_an_ir_otx_xai_exported(zoo: dict) -> None:
    with pytest.raises(IRError, match="drop the --ir"):
        IRModel(zoo["resnet18"][2], foreign=FLAGS)
    with pytest.raises(ValueError, match=r"--ir\.mean"):
        ForeignIROptions(mean="1,2")


def test_a_reshape_computed_from_the_image_batch_is_made_constant(zoo: dict) -> None:
    """resnet18's flatten re-targeted to [ShapeOf(images)[0], -1], as some exporters write it: the cloned
    head must not reshape its B·h·w rows to B rows. (Built after the input is fixed, since ``model.reshape``
    itself rewrites such a target: ``insert_recipro_cam`` directly.)"""
    _, plain, own = zoo["resnet18"]
    model = ov.Core().read_model(str(plain))
    model.reshape({model.input(0): ov.PartialShape([-1, 3, SIZE, SIZE])})
    flatten = next(op for op in model.get_ordered_ops() if op.get_type_name() == "Reshape"
                   and op.input_value(0).get_node().get_type_name() == "ReduceMean")
    batch = ops.gather(ops.shape_of(model.get_parameters()[0]), ops.constant(np.array([0])), ops.constant(0))
    flatten.input(1).replace_source_output(ops.concat([batch, ops.constant(np.array([-1]))], 0).output(0))
    insert_recipro_cam(model, model.output(0).get_node().input_value(0), multilabel=False)
    assert flatten.input_value(1).get_node().get_type_name() == "Concat"  # the IR's own head is untouched
    compiled = ov.Core().compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    batch_images = random_images()
    got = compiled(batch_images)[compiled.output("saliency_map")]
    expected = IRModel(own).infer(batch_images)["saliency_map"]
    assert np.abs(got.astype(int) - expected.astype(int)).max() <= 1


def test_an_openvino_xai_saliency_output_is_replaced(zoo: dict, tmp_path: Path) -> None:
    """An IR openvino_xai already gave a ``saliency_map`` output (no otx_xai metadata): ours replace it."""
    _, plain, own = zoo["resnet18"]
    model = ov.Core().read_model(str(plain))
    pool = next(op for op in model.get_ordered_ops() if op.get_type_name() == "ReduceMean")
    theirs = ops.result(ops.reduce_mean(pool.input_value(0), ops.constant(np.array([1])), keep_dims=True))
    theirs.output(0).get_tensor().set_names({"saliency_map"})
    model.add_results([theirs])
    model.set_rt_info("123.675 116.28 103.53", ["model_info", "mean_values"])
    model.set_rt_info([58.395, 57.12, 57.375], ["model_info", "scale_values"])  # a list, as some exporters write
    xml = tmp_path / "xai.xml"
    ov.save_model(model, str(xml), compress_to_fp16=False)
    ir = IRModel(xml, foreign=ForeignIROptions(labels=LABELS, input_size=[SIZE, SIZE]))
    assert ir.output_names == ["logits", "feature_vector", "saliency_map", "feature_map"]
    assert ir.data_config().std == [58.395, 57.12, 57.375]
    batch = random_images()
    got, expected = ir.infer(batch), IRModel(own).infer(batch)
    assert got["saliency_map"].shape == expected["saliency_map"].shape
    assert np.abs(got["saliency_map"].astype(int) - expected["saliency_map"].astype(int)).max() <= 1


def test_densenet_plain_ir_against_the_torch_fast_form(tmp_path: Path) -> None:
    """densenet121 pools inside ``forward`` (ReLU, pooling, flatten, no avgpool module): the IR's maps against
    Recipro-CAM's fast form computed with the network's own modules."""
    net = calibrated_torchvision("densenet121", len(LABELS))
    ir = IRModel(save_plain_ir(net, tmp_path / "densenet121.xml"), foreign=FLAGS)
    batch = random_images(count=2)
    with torch.no_grad():
        feature_map = torch.relu(net.features(torch.from_numpy(batch)))
        count, channels, height, width = feature_map.shape
        rows = feature_map.flatten(2).transpose(1, 2).reshape(-1, channels) / (height * width)
        scores = torch.softmax(net.classifier(rows), -1).view(count, height * width, -1)
        expected = normalize_map(scores.transpose(1, 2).reshape(count, -1, height, width)).numpy()
        logits = net(torch.from_numpy(batch)).numpy()
    outputs = ir.infer(batch)
    np.testing.assert_allclose(outputs["logits"], logits, rtol=1e-4, atol=5e-4)  # logits ~25 after 121 layers
    assert outputs["saliency_map"].shape == expected.shape == (2, 3, 3, 3)
    assert np.abs(outputs["saliency_map"].astype(int) - expected.astype(int)).max() <= 1
    assert len(np.unique(expected)) > 2

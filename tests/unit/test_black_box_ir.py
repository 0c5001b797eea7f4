"""Black-box methods on an IR otx_xai did not export (``ov.convert_model`` of a net with no global pooling,
so no white-box method fits it): RISE through the IR's async requests equals RISE through torch on the same
weights, and ``auto`` explains it with AISE."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import openvino as ov
import pytest
import torch
from torch import nn

from otx_xai import Engine, IROptions, MethodOptions
from otx_xai.data.shapes import SHAPE_CLASSES, make_classification_shapes
from otx_xai.explain.black_box.presets import BlackBoxConfig
from otx_xai.explain.black_box.protocol import black_box_method
from otx_xai.explain.black_box.runners import ir_runner, torch_runner
from otx_xai.explain.config import ExplainConfig
from otx_xai.explain.entity import ModelInfo
from otx_xai.openvino.foreign_metadata import ForeignIROptions
from otx_xai.openvino.inference import IRModel

SIZE = 32
FLAGS = ForeignIROptions(labels=list(SHAPE_CLASSES), mean=[0, 0, 0], std=[1, 1, 1], input_size=[SIZE, SIZE])


def _flatten_net() -> nn.Module:
    """Two strided convolutions and a linear layer on the flattened map: nothing Recipro-CAM can cut."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, stride=2, padding=1),
                         nn.ReLU(), nn.Flatten(), nn.Linear(8 * 8 * 8, len(SHAPE_CLASSES))).eval()


@pytest.fixture(scope="module")
def foreign_ir(tmp_path_factory: pytest.TempPathFactory) -> tuple[nn.Module, Path]:
    net = _flatten_net()
    with torch.no_grad():
        model = ov.convert_model(net, example_input=torch.zeros(1, 3, SIZE, SIZE))
    xml = tmp_path_factory.mktemp("foreign") / "model.xml"
    ov.save_model(model, str(xml), compress_to_fp16=False)
    return net, xml


def test_rise_through_the_ir_queue_equals_rise_through_torch(foreign_ir: tuple[nn.Module, Path]) -> None:
    net, xml = foreign_ir
    ir = IRModel(xml, foreign=FLAGS)
    assert ir.explain_unavailable is not None and ir.num_requests >= 1
    images = np.random.default_rng(0).normal(size=(3, 3, SIZE, SIZE)).astype(np.float32)
    method = black_box_method("classification", "RISE", BlackBoxConfig(num_masks=40, num_cells=4, batch_size=8))
    info = ModelInfo("classification", list(SHAPE_CLASSES))
    from_ir = method.explain(images, ir_runner(ir, 8), info, ExplainConfig())
    from_torch = method.explain(images, torch_runner(net, 8), info, ExplainConfig())
    np.testing.assert_allclose(from_ir["logits"], from_torch["logits"], rtol=1e-4, atol=1e-5)
    assert np.abs(from_ir["saliency_map"].astype(int) - from_torch["saliency_map"].astype(int)).max() <= 2
    assert len(np.unique(from_ir["saliency_map"])) > 10  # real maps


def test_ir_runner_keeps_every_request_busy_and_streams_in_order(foreign_ir: tuple[nn.Module, Path]) -> None:
    """A call of a few images (an AISE round) is split over the IR's requests; streamed batches come back in
    order; both give what torch gives on the same weights."""
    net, xml = foreign_ir
    ir = IRModel(xml, foreign=FLAGS, num_requests=2)
    assert ir.num_streams == 2  # the THROUGHPUT hint on this 2-core machine
    images = np.random.default_rng(1).normal(size=(7, 3, SIZE, SIZE)).astype(np.float32)
    with torch.no_grad():
        expected = net(torch.from_numpy(images)).numpy()
    run = ir_runner(ir, batch_size=32)
    np.testing.assert_allclose(run(images)["logits"], expected, rtol=1e-4, atol=1e-5)
    assert ir.forms.static_batches == [3, 4]  # 7 images on the two streams, not one batch of 7 on one
    taken: list[int] = []

    def batches():
        for start, stop in ((0, 3), (2, 5), (5, 7)):
            taken.append(start)
            yield images[start:stop]

    streamed = []
    for outputs in run.stream(batches()):
        streamed.append(outputs["logits"])
        if len(streamed) == 1:
            assert len(taken) >= 2  # the second batch was in flight before the first one's outputs were read
    np.testing.assert_allclose(np.concatenate(streamed), expected[[0, 1, 2, 2, 3, 4, 5, 6]], rtol=1e-4, atol=1e-5)


def test_auto_explains_it_with_aise(foreign_ir: tuple[nn.Module, Path], tmp_path: Path,
                                    caplog: pytest.LogCaptureFixture) -> None:
    _, xml = foreign_ir
    data = make_classification_shapes(tmp_path / "data", 2, 40, seed=0)
    engine = Engine(data_root=data, work_dir=tmp_path / "ws", checkpoint=xml)
    with caplog.at_level(logging.WARNING):
        results = engine.explain(ir=IROptions(foreign=FLAGS), dump=True,
                                 method=MethodOptions(black_box=BlackBoxConfig(iterations=4, kernel_widths=[0.25])))
    assert "model.xml has no white-box explain method: explaining with AISE" in caplog.text
    assert results and all(r.raw_saliency_map.shape == (3, SIZE, SIZE) for r in results)
    assert all(r.raw_saliency_map[r.predicted[0]].any() for r in results)


def test_aise_searches_run_side_by_side_on_the_ir_and_give_the_lockstep_maps(
        foreign_ir: tuple[nn.Module, Path]) -> None:
    """All images' AISE searches share the IR's requests, each asking its next round as soon as its own is
    scored (the queue is handed ``None`` while every search waits); the maps are exactly those of each image
    searched alone, in lockstep rounds, through synchronous calls of the same IR."""
    from otx_xai.explain.black_box.aise import aise_saliency
    from otx_xai.explain.black_box.classification import class_scores, to_uint8_maps

    _, xml = foreign_ir
    ir = IRModel(xml, foreign=FLAGS, num_requests=4)
    images = np.random.default_rng(2).normal(size=(3, 3, SIZE, SIZE)).astype(np.float32)
    config = BlackBoxConfig(iterations=12, kernel_widths=[0.15, 0.3], batch_size=4)
    method = black_box_method("classification", "AISE", config)
    run = ir_runner(ir, config.batch_size)
    batch_sizes: list[int] = []
    handed_none = []

    def recording(batches):
        def seen():
            for batch in batches:
                handed_none.append(batch is None)
                if batch is not None:
                    batch_sizes.append(len(batch))
                yield batch
        return ir.infer_batches(seen())

    run.batch_outputs = recording
    out = method.explain(images, run, ModelInfo("classification", list(SHAPE_CLASSES)), ExplainConfig())
    assert any(handed_none) and max(batch_sizes) <= 4
    classes = len(SHAPE_CLASSES)  # the ALL target group: every class of every image
    assert sum(batch_sizes) == 3 + 3 * classes * 2 * 12 * 2  # predict + images × classes × widths × evals × 2
    for index, image in enumerate(images):
        alone = aise_saliency(image, lambda x: class_scores(ir.infer(x)["logits"], False), classes,
                              iterations=12, kernel_widths=[0.15, 0.3], max_images=64)
        np.testing.assert_array_equal(out["saliency_map"][index], to_uint8_maps(alone[None])[0])


def test_a_few_searches_share_the_streams_in_small_batches(foreign_ir: tuple[nn.Module, Path]) -> None:
    """Six AISE searches on an IR with two streams go in batches of at most three (each stream gets about
    one batch per search round, so no core waits while a big batch's rounds come back together); many
    searches, or a synchronous runner, keep the full batch."""
    from otx_xai.explain.black_box.job_scheduler import jobs_batch_size

    assert jobs_batch_size(6, 6, 2) == 3 and jobs_batch_size(48, 6, 2) == 6 and jobs_batch_size(1, 6, 2) == 1
    assert jobs_batch_size(6, 32, 1) == 32 and jobs_batch_size(7, 32, 2) == 4
    _, xml = foreign_ir
    ir = IRModel(xml, foreign=FLAGS)
    run = ir_runner(ir, 64)
    assert run.batch_size == 64 and run.in_flight == 2
    sizes: list[int] = []

    def recording(batches):
        def seen():
            for batch in batches:
                sizes.append(0 if batch is None else len(batch))
                yield batch
        return ir.infer_batches(seen())

    run.batch_outputs = recording
    method = black_box_method("classification", "AISE", BlackBoxConfig(iterations=12, kernel_widths=[0.15, 0.3]))
    image = np.random.default_rng(3).normal(size=(1, 3, SIZE, SIZE)).astype(np.float32)
    method.explain(image, run, ModelInfo("classification", list(SHAPE_CLASSES)), ExplainConfig(), targets=[[0, 1, 2]])
    searched = [size for size in sizes[1:] if size]  # after the image's own prediction
    assert max(searched) == 3 and sum(searched) == 3 * 2 * 12 * 2  # classes × widths × evaluations × 2


def test_an_ir_streams_perturbed_images_in_batches_sized_by_the_input(foreign_ir: tuple[nn.Module, Path]) -> None:
    """Two 224-px images per request (the CPU plugin's per-image time grows with larger batches there),
    more for smaller inputs, never above the configured batch nor below two (one would compile for latency);
    the black-box methods take the runner's batch, torch keeps the configured one."""
    from otx_xai.explain.black_box.runners import ir_stream_batch, runner_batch

    assert ir_stream_batch(32, (224, 224)) == 2 and ir_stream_batch(32, (128, 128)) == 6
    assert ir_stream_batch(32, (512, 512)) == 2 and ir_stream_batch(4, (32, 32)) == 4
    assert ir_stream_batch(1, (8, 8)) == 1
    net, xml = foreign_ir
    run = ir_runner(IRModel(xml, foreign=FLAGS), 64)
    assert run.batch_size == 64  # 64 images of 32 × 32 px are fewer pixels than two at 224
    assert runner_batch(run, 7) == run.batch_size and runner_batch(lambda images: {}, 7) == 7
    assert runner_batch(torch_runner(net, 5), 7) == 5

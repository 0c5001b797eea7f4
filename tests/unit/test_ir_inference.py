"""IR inference: batches in flight concurrently give the synchronous results, in order; IR errors are one line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from otx_xai.data.datamodule import DataConfig
from otx_xai.explain.entity import ImageInfo
from otx_xai.models.classification import ImageClassifier
from otx_xai.openvino.export import export_ir
from otx_xai.openvino.inference import IRError, IRModel

LABELS = ["circle", "square", "triangle"]
SIZE = (64, 64)
BATCH_SIZES = [2, 1, 0, 3, 2, 0, 0, 1, 2]  # more batches than requests; 0 = every image unreadable


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[bool, Path]:
    """A tiny resnet18 classifier exported with and without XAI outputs."""
    torch.manual_seed(0)
    model = ImageClassifier(LABELS, backbone="resnet18").eval()
    root = tmp_path_factory.mktemp("ir")
    data = DataConfig(input_size=SIZE)
    return {explain: export_ir(model, data, root / f"explain_{explain}", explain=explain) for explain in (True, False)}


def make_batches() -> list[dict]:
    generator = torch.Generator().manual_seed(1)
    batches = []
    for index, size in enumerate(BATCH_SIZES):
        infos = [ImageInfo(f"img_{index}_{i}", f"{index}_{i}.png", SIZE, SIZE, SIZE) for i in range(size)]
        images = torch.randn(size, 3, *SIZE, generator=generator) if size else torch.zeros(0)
        batches.append({"images": images, "infos": infos, "failed": [f"bad_{index}"] if not size else []})
    return batches


@pytest.mark.parametrize("num_requests", [None, 1, 3])
def test_async_predict_equals_sync_in_order(exported: dict[bool, Path], num_requests: int | None) -> None:
    ir = IRModel(exported[True], num_requests=num_requests)
    batches = make_batches()
    results = list(ir.predict(batches))
    assert len(results) == len(batches)
    for batch, (prediction, failed) in zip(batches, results, strict=True):
        assert failed == batch["failed"]
        if not batch["infos"]:
            assert prediction is None
            continue
        assert [info.image_id for info in prediction.infos] == [info.image_id for info in batch["infos"]]
        expected = ir.infer(batch["images"].numpy())
        np.testing.assert_array_equal(prediction.saliency_map, expected["saliency_map"])
        np.testing.assert_array_equal(prediction.feature_vector, expected["feature_vector"])
        np.testing.assert_array_equal(prediction.feature_map, expected["feature_map"])
        logits = expected["logits"]
        scores = np.exp(logits - logits.max(-1, keepdims=True))
        np.testing.assert_allclose(prediction.scores, scores / scores.sum(-1, keepdims=True), rtol=1e-6)


def test_results_survive_request_reuse(exported: dict[bool, Path]) -> None:
    """Outputs are copies: a later batch on the same request does not overwrite an earlier result."""
    ir = IRModel(exported[True], num_requests=1)
    arrays = [batch["images"].numpy() for batch in make_batches() if batch["infos"]]
    outputs = list(ir.infer_batches(arrays))
    for images, result in zip(arrays, outputs, strict=True):
        np.testing.assert_array_equal(result["saliency_map"], ir.infer(images)["saliency_map"])


def test_precision_is_explicit_and_recorded(exported: dict[bool, Path]) -> None:
    ir = IRModel(exported[True])
    assert ir.precision == "f32"
    info = ir.runtime_info
    assert info["precision"] == info["compiled_precision"] == "f32"
    assert info["num_requests"] >= 2 and info["performance_hint"] == "auto"
    with pytest.raises(IRError, match="unknown IR precision 'f16'"):
        IRModel(exported[True], precision="f16")


def _plugin_hints(ir: IRModel, batches: list[int]) -> dict[str, str]:
    """PERFORMANCE_HINT and NUM_STREAMS as the CPU plugin reports them for each batch size's compiled form."""
    return {str(batch): (str(ir.forms.for_batch(batch).compiled.get_property("PERFORMANCE_HINT")),
                         int(ir.forms.for_batch(batch).compiled.get_property("NUM_STREAMS"))) for batch in batches}


def test_auto_hint_compiles_one_image_for_latency_and_batches_for_throughput(exported: dict[bool, Path]) -> None:
    ir = IRModel(exported[True])
    reported = _plugin_hints(ir, [1, 4])
    assert reported["1"] == ("LATENCY", 1)  # one stream: both cores on the one image
    assert reported["4"][0] == "THROUGHPUT" and reported["4"][1] >= 1
    assert str(ir.compiled.get_property("PERFORMANCE_HINT")) == "THROUGHPUT"  # the dynamic form: any batch
    assert ir.runtime_info["compiled_hints"] == {"dynamic": "THROUGHPUT", "1": "LATENCY", "4": "THROUGHPUT"}
    image = make_batches()[1]["images"].numpy()
    np.testing.assert_allclose(ir.infer(image)["logits"],  # the same logits on either form
                               IRModel(exported[True], performance_hint="throughput").infer(image)["logits"],
                               rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("hint", ["latency", "throughput"])
def test_hint_override_compiles_every_form_so(exported: dict[bool, Path], hint: str) -> None:
    ir = IRModel(exported[True], performance_hint=hint)
    reported = _plugin_hints(ir, [1, 4])
    assert {name: value[0] for name, value in reported.items()} == {"1": hint.upper(), "4": hint.upper()}
    assert ir.runtime_info["performance_hint"] == hint
    assert set(ir.runtime_info["compiled_hints"].values()) == {hint.upper()}
    if hint == "latency":
        assert all(streams == 1 for _, streams in reported.values())


def test_unknown_hint_is_one_line(exported: dict[bool, Path]) -> None:
    with pytest.raises(IRError, match="unknown IR performance hint 'fast': use one of auto, latency, throughput"):
        IRModel(exported[True], performance_hint="fast")


def test_ir_without_xai_outputs_raises_one_line(exported: dict[bool, Path]) -> None:
    ir = IRModel(exported[False])
    assert not ir.has_xai_outputs
    with pytest.raises(IRError) as error:
        ir.require_xai_outputs()
    message = str(error.value)
    assert "\n" not in message
    assert "saliency_map" in message and "--explain True" in message
    IRModel(exported[True]).require_xai_outputs()  # an explain IR passes


def test_sync_infer_leaves_later_pipelines_exact(exported: dict[bool, Path]) -> None:
    """infer() before a pipeline on the same IR: every output still equals a separate IR's (OpenVINO's
    zero-copy CompiledModel call made later concurrent requests read stale images: 0.2 off in logits)."""
    arrays = [batch["images"].numpy() for batch in make_batches() if batch["infos"]]
    references = list(IRModel(exported[True], num_requests=1).infer_batches(arrays))
    ir = IRModel(exported[True], num_requests=2)
    for images, reference in zip(arrays, references, strict=True):
        for name, value in ir.infer(images).items():
            np.testing.assert_array_equal(value, reference[name])
    for result, reference in zip(ir.infer_batches(arrays), references, strict=True):
        for name, value in result.items():
            np.testing.assert_array_equal(value, reference[name])


def test_requests_are_kept_between_pipelines_even_one_stopped_early(exported: dict[bool, Path]) -> None:
    """A pipeline hands its infer requests back when it ends or its consumer stops; the next one reuses them,
    and two pipelines at once (the second creating what it lacks, never more than 2 each) each give the
    synchronous results."""
    ir = IRModel(exported[True], num_requests=2)
    generator = torch.Generator().manual_seed(2)
    arrays = [torch.randn(2, 3, *SIZE, generator=generator).numpy() for _ in range(5)]  # one batch size
    expected = [ir.infer(images)["saliency_map"] for images in arrays]
    idle = ir.forms.for_batch(2).idle
    stopped = ir.infer_batches(arrays)
    np.testing.assert_array_equal(next(stopped)["saliency_map"], expected[0])
    stopped.close()  # requests still running are waited for, then kept
    kept = list(idle)
    assert len(kept) == 2
    first, second = ir.infer_batches(arrays), ir.infer_batches(arrays)
    for want in expected:
        np.testing.assert_array_equal(next(first)["saliency_map"], want)
        np.testing.assert_array_equal(next(second)["saliency_map"], want)
    assert next(first, None) is None and next(second, None) is None
    assert 2 < len(idle) <= 4 and all(any(r is k for r in idle) for k in kept)


def test_each_batch_size_runs_on_its_own_static_copy_up_to_the_bound(exported: dict[bool, Path]) -> None:
    """Sizes 1 and 2 get a copy compiled with that batch fixed, size 3 (over the bound of 2) the dynamic
    one; all give what the dynamic model alone gives, and the run record lists the static sizes."""
    ir = IRModel(exported[True], max_static_batches=2)
    dynamic = IRModel(exported[True], max_static_batches=0)
    generator = torch.Generator().manual_seed(3)
    arrays = [torch.randn(size, 3, *SIZE, generator=generator).numpy() for size in (1, 2, 3, 1)]
    for images, got, want in zip(arrays, ir.infer_batches(arrays), dynamic.infer_batches(arrays), strict=True):
        np.testing.assert_allclose(got["logits"], want["logits"], rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(got["feature_vector"], want["feature_vector"], rtol=1e-5, atol=1e-6)
        grey = np.abs(got["saliency_map"].astype(int) - want["saliency_map"].astype(int))
        assert grey.max() <= 1, f"batch of {len(images)}: maps differ by {grey.max()} grey levels"
    assert ir.forms.static_batches == [1, 2] and ir.runtime_info["static_batches"] == [1, 2]
    assert dynamic.forms.static_batches == [] and ir.forms.for_batch(3) is ir.forms.dynamic
    for size in (1, 2):
        shape = ir.forms.for_batch(size).compiled.inputs[0].get_partial_shape()
        assert shape.is_static and shape[0].get_length() == size
    assert not ir.forms.dynamic.compiled.inputs[0].get_partial_shape().is_static


def test_skipped_outputs_are_left_out_and_the_others_unchanged(exported: dict[bool, Path]) -> None:
    full = IRModel(exported[True])
    lean = IRModel(exported[True], skip_outputs={"feature_map", "no_such_output"})
    assert lean.output_names == ["logits", "feature_vector", "saliency_map"] and len(lean.compiled.outputs) == 3
    assert lean.ir_output_names == full.output_names and lean.has_xai_outputs  # the IR itself is unchanged
    batch = next(batch for batch in make_batches() if batch["infos"])
    got, expected = lean.infer(batch["images"].numpy()), full.infer(batch["images"].numpy())
    assert set(got) == set(lean.output_names)
    for name in lean.output_names:
        np.testing.assert_array_equal(got[name], expected[name])
    (prediction, _), *_ = lean.predict([batch])
    assert prediction.feature_map is None and prediction.saliency_map is not None
    with pytest.raises(IRError, match="nothing to compute"):
        IRModel(exported[True], skip_outputs=full.output_names)

"""normalize_map: every class map to 0..255 uint8, rounding half up, with the same integers in torch and the IR
(compiled as exported, and after IRModel's fusable-cast pass)."""

from __future__ import annotations

import numpy as np
import openvino as ov
import pytest
import torch

from otx_xai.explain.methods.base import normalize_map
from otx_xai.openvino.compile_passes import fuse_uint8_casts


class Normalize(torch.nn.Module):
    def forward(self, saliency: torch.Tensor) -> torch.Tensor:
        return normalize_map(saliency)


def reference(saliency: np.ndarray) -> np.ndarray:
    """The slow, obvious form: per map, (x - min) / (max - min) · 255 rounded half up (0 for a constant map)."""
    out = np.zeros(saliency.shape, np.uint8)
    for index in np.ndindex(*saliency.shape[:2]):
        values = saliency[index].astype(np.float32)
        spread = np.float32(values.max() - values.min())
        scaled = (values - values.min()) / max(spread, np.float32(1e-30)) * np.float32(255.0)
        out[index] = np.floor(scaled + np.float32(0.5))
    return out


def maps() -> dict[str, np.ndarray]:
    generator = np.random.default_rng(0)
    ramp = np.arange(2 * 3 * 23 * 23, dtype=np.float32).reshape(2, 3, 23, 23) % 511  # many exact x.5 ties
    tiny = 1.0 + generator.random((1, 2, 7, 7), dtype=np.float32) * 1e-6
    constant = np.full((1, 2, 7, 7), 0.3, np.float32)
    return {"random": generator.standard_normal((3, 4, 7, 7), dtype=np.float32), "ramp": ramp,
            "tiny range": tiny, "constant": constant}


def convert(module: torch.nn.Module) -> ov.Model:
    return ov.convert_model(module, example_input=torch.rand(1, 3, 7, 7), input=[ov.PartialShape([-1, -1, -1, -1])])


def compile_f32(model: ov.Model) -> ov.CompiledModel:
    return ov.Core().compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})


def layer_types(compiled: ov.CompiledModel) -> set[str]:
    return {op.get_rt_info()["layerType"].astype(str) for op in compiled.get_runtime_model().get_ops()}


@pytest.fixture(scope="module")
def compiled() -> dict[str, ov.CompiledModel]:
    """normalize_map's IR compiled as exported and after fuse_uint8_casts."""
    fused = convert(Normalize())
    assert fuse_uint8_casts(fused) == 1
    return {"as exported": compile_f32(convert(Normalize())), "cast fused": compile_f32(fused)}


@pytest.mark.parametrize("name", list(maps()))
@pytest.mark.parametrize("form", ["as exported", "cast fused"])
def test_torch_and_ir_give_the_reference_integers(compiled: dict[str, ov.CompiledModel], form: str,
                                                  name: str) -> None:
    saliency = maps()[name]
    expected = reference(saliency)
    got_torch = normalize_map(torch.from_numpy(saliency)).numpy()
    got_ir = compiled[form].create_infer_request().infer({0: saliency}, share_inputs=False)[0]
    assert got_torch.dtype == got_ir.dtype == np.uint8
    np.testing.assert_array_equal(got_torch, expected)
    np.testing.assert_array_equal(got_ir, expected)
    assert expected.max() == (0 if name == "constant" else 255)


def test_fused_cast_runs_in_the_elementwise_chain(compiled: dict[str, ov.CompiledModel]) -> None:
    """What the pass is for (OpenVINO 2026.4's CPU plugin): no lone Convert node is left to run."""
    assert "Convert" in layer_types(compiled["as exported"])
    assert "Convert" not in layer_types(compiled["cast fused"])


class CastWithoutFloor(torch.nn.Module):
    def forward(self, values: torch.Tensor) -> torch.Tensor:
        return values.clamp(0.0, 255.0).to(torch.uint8)


def test_other_casts_are_left_alone() -> None:
    """Only Clamp(Floor(x), 0, 255) is known to hold integers: a cast of anything else keeps its own rounding."""
    model = convert(CastWithoutFloor())
    assert fuse_uint8_casts(model) == 0
    assert "FakeQuantize" not in {op.get_type_name() for op in model.get_ops()}

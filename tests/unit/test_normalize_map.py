"""normalize_map: every class map to 0..255 uint8, rounding half up, with the same integers in torch and the IR."""

from __future__ import annotations

import numpy as np
import openvino as ov
import pytest
import torch

from otx_xai.explain.methods.base import normalize_map


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


@pytest.fixture(scope="module")
def compiled() -> ov.CompiledModel:
    model = ov.convert_model(Normalize(), example_input=torch.rand(1, 3, 7, 7),
                             input=[ov.PartialShape([-1, -1, -1, -1])])
    return ov.Core().compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})


@pytest.mark.parametrize("name", list(maps()))
def test_torch_and_ir_give_the_reference_integers(compiled: ov.CompiledModel, name: str) -> None:
    saliency = maps()[name]
    expected = reference(saliency)
    got_torch = normalize_map(torch.from_numpy(saliency)).numpy()
    request = compiled.create_infer_request()
    got_ir = request.infer({0: saliency}, share_inputs=False)[0]
    assert got_torch.dtype == got_ir.dtype == np.uint8
    np.testing.assert_array_equal(got_torch, expected)
    np.testing.assert_array_equal(got_ir, expected)
    assert expected.max() == (0 if name == "constant" else 255)

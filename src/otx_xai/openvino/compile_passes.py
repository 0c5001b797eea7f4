"""What IRModel does to a read IR before compiling it: drop unread outputs, make the uint8 cast fusable.

Both change only the model in memory; the IR file stays as exported.
"""

from __future__ import annotations

import openvino as ov
import openvino.opset13 as ops


def remove_outputs(model: ov.Model, names: set[str]) -> None:
    """Remove the Results of ``model`` whose output is named in ``names``."""
    for result, port in zip(list(model.get_results()), list(model.outputs), strict=True):
        if port.get_any_name() in names:
            model.remove_result(result)


def fuse_uint8_casts(model: ov.Model) -> int:
    """Put a FakeQuantize of scale 1 over 0..255 before every output cast Convert(u8, Clamp(Floor(x), 0, 255)),
    ``normalize_map``'s tail; returns how many.

    On the integers 0..255 that Clamp(Floor) yields, the FakeQuantize is the identity, so the maps are
    unchanged; the CPU plugin then fuses the cast into the element-wise chain, where a lone Convert runs a
    reference kernel (≈ 1 % of a mobilenet_v3_small at batch 1). Only in memory: an IR file holding a
    FakeQuantize counts as quantized, and ``ov.save_model(..., compress_to_fp16=True)`` then keeps f32 weights.
    """
    fused = 0
    for result in model.get_results():
        convert = result.input_value(0).get_node()
        if convert.get_type_name() != "Convert" or convert.get_output_element_type(0) != ov.Type.u8:
            continue
        clamp = convert.input_value(0).get_node()
        if (clamp.get_type_name() != "Clamp" or clamp.get_attributes() != {"min": 0.0, "max": 255.0}
                or clamp.input_value(0).get_node().get_type_name() != "Floor"):
            continue
        low, high = ops.constant(0.0, ov.Type.f32), ops.constant(255.0, ov.Type.f32)
        identity = ops.fake_quantize(clamp.output(0), low, high, low, high, 256)
        convert.input(0).replace_source_output(identity.output(0))
        fused += 1
    return fused

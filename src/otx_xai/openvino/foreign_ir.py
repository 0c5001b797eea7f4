"""Making a classification IR otx_xai did not export look like one it did, in memory.

``prepare_foreign_model`` fixes the input to (dynamic batch, 3, H, W), reverses its channels when the IR
expects BGR, names the class-logits output ``logits`` (taking the input of a final Softmax/Sigmoid, as
the pipeline applies the score function itself; an XAI output openvino_xai inserted is replaced) and
inserts Recipro-CAM (``recipro_cam_insertion``). The IR file is never changed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import openvino as ov
import openvino.opset13 as ops
from openvino.passes import ConstantFolding, Manager

from otx_xai.errors import UserError
from otx_xai.openvino.metadata import XAI_OUTPUTS
from otx_xai.openvino.recipro_cam_insertion import CutError, insert_recipro_cam

SCORE_OPS = ("Softmax", "Sigmoid", "LogSoftmax")


def _logits_output(model: ov.Model, path: Path) -> ov.Output:
    """The (B, K) class-logits output, replacing a final Softmax/Sigmoid output by its input. XAI outputs
    another tool inserted (openvino_xai's ``saliency_map``) are dropped: ours replace them."""
    for result, port in zip(list(model.get_results()), list(model.outputs), strict=True):
        if set(port.get_names()) & set(XAI_OUTPUTS):
            model.remove_result(result)
    outputs = list(model.outputs)
    named = [index for index, port in enumerate(outputs) if "logits" in port.get_names()]
    if len(outputs) != 1 and not named:
        raise UserError(f"{path} has {len(outputs)} outputs and none named 'logits': only a classifier with "
                         "one (B, num_classes) output can be explained")
    result = model.get_results()[named[0] if named else 0]
    producer = result.input_value(0)
    if producer.get_node().get_type_name() in SCORE_OPS:
        producer = producer.get_node().input_value(0)
    shape = producer.get_partial_shape()
    if shape.rank.is_dynamic or shape.rank.get_length() != 2 or shape[1].is_dynamic:
        raise UserError(f"{path} outputs {shape}, not (B, num_classes) logits: only classifiers can be explained")
    model.remove_result(result)
    logits = ops.result(producer)
    model.add_results([logits])
    logits.output(0).get_tensor().set_names({"logits"})
    return producer


def _reverse_channels(model: ov.Model) -> None:
    """Feed the graph the input's channels in reverse order (RGB images to an IR that expects BGR)."""
    image = model.get_parameters()[0]
    consumers = list(image.output(0).get_target_inputs())
    flipped = ops.gather(image.output(0), ops.constant(np.array([2, 1, 0], dtype=np.int64)),
                         ops.constant(np.int64(1)))
    for consumer in consumers:
        consumer.replace_source_output(flipped.output(0))


def _fold_constants(model: ov.Model) -> None:
    """Replace every subgraph computable without the input by its Constant (what compiling does anyway)."""
    manager = Manager()
    manager.register_pass(ConstantFolding())
    manager.run_passes(model)


def prepare_foreign_model(model: ov.Model, meta: dict[str, Any], path: str | Path) -> str | None:
    """Prepare ``model`` in place; returns why Recipro-CAM could not be inserted (None: it was)."""
    path = Path(path)
    if len(model.inputs) != 1:
        raise UserError(f"{path} has {len(model.inputs)} inputs: only a one-input (B, 3, H, W) classifier can "
                         "be explained")
    height, width = meta["input_size"]
    try:
        model.reshape({model.input(0): ov.PartialShape([-1, 3, height, width])})
    except RuntimeError as error:
        raise UserError(f"{path} cannot take a (B, 3, {height}, {width}) input "
                         f"({str(error).splitlines()[0][:100]}): pass another --ir.input_size") from None
    model.input(0).get_tensor().set_names({"images"})
    _fold_constants(model)  # e.g. an ONNX GlobalAveragePool's axes, computed as Range(2, rank): now a Constant
    if meta.get("reverse_input_channels"):
        _reverse_channels(model)
    logits = _logits_output(model, path)
    classes = logits.get_partial_shape()[1].get_length()
    if classes != len(meta["label_names"]):
        raise UserError(f"{path} gives {classes} class logits but {len(meta['label_names'])} labels were given: "
                         "pass one label per logit (--ir.labels / --ir.labels_file)")
    try:
        insert_recipro_cam(model, logits, bool(meta.get("multilabel")))
    except CutError as error:
        return str(error)
    meta["explain_method"] = "ReciproCAM"
    return None

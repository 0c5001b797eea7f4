"""Recipro-CAM inserted into a classification IR's graph, in memory, as openvino_xai does for IRs it did not write.

The cut is found by walking the graph back from the logits to the nearest global average pooling (a
ReduceMean over both spatial axes, an AvgPool whose kernel covers the whole map, or an AdaptiveAvgPool to
1×1): its input is the last spatial feature map f (B, C, h, w), its output the pooled vector. With global
average pooling, Recipro-CAM's copy k (f kept only at position k) pools exactly to f[:, :, k] / (h·w), so
the head — every op between the pooling and the logits — is run once on the B·h·w pooled vectors of
all positions: a clone of the head (from ``ov.Model.clone``) is re-wired to take those rows, in the
pooling output's own rank ((N, C, 1, 1) or (N, C)); a Reshape in the head whose target shape was
computed from the batch is given a constant one that keeps dim 0. The scores (softmax, or sigmoid for
multilabel) become (B, K, h, w), normalized exactly as ``explain.methods.base.normalize_map`` does (per map
min-max to 0..255, rounded, uint8), so the maps equal otx_xai's own export of the same weights.

Outputs added: ``saliency_map``, ``feature_vector`` (the pooled vector, (B, C)) and ``feature_map``. A graph
this cannot handle raises ``CutError`` with a one-line reason.
"""

from __future__ import annotations

from collections import deque

import numpy as np
import openvino as ov
import openvino.opset13 as ops

from otx_xai.errors import UserError

SPATIAL_AXES = {2, 3}


class CutError(UserError):
    """The IR has no global-average-pooling cut Recipro-CAM can use; the message says what is missing."""


def _constant_values(output: ov.Output) -> np.ndarray | None:
    node = output.get_node()
    return node.get_data() if node.get_type_name() == "Constant" else None


def _is_global_pool(node: ov.Node) -> bool:
    """Whether ``node`` averages a 4-D (B, C, h, w) input over all of (h, w)."""
    kind = node.get_type_name()
    if kind not in ("ReduceMean", "AvgPool", "AdaptiveAvgPool") or node.get_input_size() < 1:
        return False
    shape = node.get_input_partial_shape(0)
    if shape.rank.is_dynamic or shape.rank.get_length() != 4:
        return False
    if kind == "ReduceMean":
        axes = _constant_values(node.input_value(1))
        return axes is not None and {int(a) % 4 for a in np.ravel(axes)} == SPATIAL_AXES
    out = node.get_output_partial_shape(0)
    if out.rank.get_length() != 4 or not all(d.is_static and d.get_length() == 1 for d in list(out)[2:]):
        return False
    if kind == "AvgPool":  # a 1×1 output is not enough: the kernel must cover the whole map, unpadded
        attributes = node.get_attributes()
        spatial = [d.get_length() if d.is_static else -1 for d in list(shape)[2:]]
        return (list(attributes["kernel"]) == spatial and not any(attributes["pads_begin"])
                and not any(attributes["pads_end"]))
    return True


def find_global_pool(logits: ov.Output) -> ov.Node:
    """The global average pooling nearest the logits, walking the graph back (breadth first)."""
    seen: set[str] = set()
    queue = deque([logits.get_node()])
    while queue:
        node = queue.popleft()
        if node.get_name() in seen:
            continue
        seen.add(node.get_name())
        if _is_global_pool(node):
            return node
        queue.extend(value.get_node() for value in node.input_values()
                     if value.get_node().get_type_name() not in ("Constant", "Parameter"))
    raise CutError("no global average pooling (ReduceMean over H, W / global AvgPool) before the logits: "
                   "Recipro-CAM needs a last spatial feature map pooled into the head")


def _nodes_between(logits: ov.Output, stop: ov.Node) -> list[ov.Node]:
    """Every non-constant node ``logits`` depends on without passing through ``stop`` (excluded); by unique
    name (``get_name``), which a clone's nodes do not share with the original's."""
    found: dict[str, ov.Node] = {}
    queue = deque([logits.get_node()])
    while queue:
        node = queue.popleft()
        name = node.get_name()
        if name == stop.get_name() or name in found or node.get_type_name() == "Constant":
            continue
        found[name] = node
        queue.extend(value.get_node() for value in node.input_values())
    return list(found.values())


def _fix_batch_dependent_reshapes(head: list[ov.Node]) -> None:
    """Give a head Reshape whose target shape is computed (from the batch) a constant [0, d1, ...] target."""
    for node in head:
        if node.get_type_name() != "Reshape" or _constant_values(node.input_value(1)) is not None:
            continue
        out = node.get_output_partial_shape(0)
        rest = list(out)[1:]
        if out.rank.is_dynamic or not all(d.is_static for d in rest):
            raise CutError(f"the head's Reshape {node.get_friendly_name()} has a computed target shape "
                           f"{out}: cannot run the head on one row per position")
        target = ops.constant(np.array([0, *[d.get_length() for d in rest]], dtype=np.int64))
        replacement = ops.reshape(node.input_value(0), target, special_zero=True)
        for consumer in node.output(0).get_target_inputs():
            consumer.replace_source_output(replacement.output(0))


def _op_index(model: ov.Model, node: ov.Node) -> int:
    """The position of ``node`` in ``model``'s topological order (the same in ``model.clone()``)."""
    return next(i for i, op in enumerate(model.get_ordered_ops()) if op.get_name() == node.get_name())


def _normalize(saliency: ov.Output) -> ov.Node:
    """``normalize_map`` in OpenVINO ops: per-map min-max over (h, w) to 0..255, round, uint8."""
    axes = ops.constant(np.array([2, 3], dtype=np.int64))
    low = ops.reduce_min(saliency, axes, keep_dims=True)
    high = ops.reduce_max(saliency, axes, keep_dims=True)
    span = ops.maximum(ops.subtract(high, low), ops.constant(np.float32(1e-30)))
    scaled = ops.multiply(ops.divide(ops.subtract(saliency, low), span), ops.constant(np.float32(255.0)))
    rounded = ops.floor(ops.add(scaled, ops.constant(np.float32(0.5))))
    return ops.convert(ops.clamp(rounded, 0.0, 255.0), ov.Type.u8)


def insert_recipro_cam(model: ov.Model, logits: ov.Output, multilabel: bool) -> None:
    """Add ``saliency_map``, ``feature_vector`` and ``feature_map`` outputs to ``model`` (static H, W input,
    ``logits`` its (B, K) class logits); CutError when the graph has no usable cut."""
    pool = find_global_pool(logits)
    feature_map = pool.input_value(0)
    shape = feature_map.get_partial_shape()
    if not all(d.is_static for d in list(shape)[1:]):
        raise CutError(f"the feature map before the global pooling has a dynamic shape {shape}: pass the IR's "
                       "input size (--ir.input_size)")
    channels, height, width = (d.get_length() for d in list(shape)[1:])
    if height * width < 2:
        raise CutError(f"the feature map before the global pooling is {height}×{width}: no spatial map to "
                       "explain (use a larger --ir.input_size)")
    pooled_rank = pool.get_output_partial_shape(0).rank.get_length()
    num_classes = logits.get_partial_shape()[1].get_length()

    # the head's clone, fed the B·h·w pooled vectors of the single-position copies
    clone = model.clone()
    originals, copies = model.get_ordered_ops(), clone.get_ordered_ops()
    if [op.get_friendly_name() for op in originals] != [op.get_friendly_name() for op in copies]:
        raise CutError("the IR's clone lists its ops in another order: cannot match the head in it")
    clone_pool = copies[_op_index(model, pool)]
    clone_logits = copies[_op_index(model, logits.get_node())].output(logits.get_index())
    positions = height * width
    rows = ops.transpose(ops.reshape(feature_map, ops.constant(np.array([0, channels, positions])), True),
                         ops.constant(np.array([0, 2, 1])))  # (B, h·w, C)
    row_shape = [-1, channels, 1, 1] if pooled_rank == 4 else [-1, channels]
    rows = ops.divide(ops.reshape(rows, ops.constant(np.array(row_shape)), False),
                      ops.constant(np.float32(positions)))
    _fix_batch_dependent_reshapes(_nodes_between(clone_logits, clone_pool))
    for consumer in clone_pool.output(0).get_target_inputs():
        consumer.replace_source_output(rows.output(0))
    inputs = [n for n in _nodes_between(clone_logits, rows) if n.get_type_name() == "Parameter"]
    if inputs:
        raise CutError("the head after the global pooling reads the image input itself (not only the pooled "
                       "vector): it cannot be re-run on one pooled vector per position")
    position_logits = clone_logits
    out = position_logits.get_partial_shape()
    if out.rank.get_length() != 2 or out[1].is_dynamic or out[1].get_length() != num_classes:
        raise CutError(f"the head gives {out} on one row per position, not (N, {num_classes})")
    scores = ops.sigmoid(position_logits) if multilabel else ops.softmax(position_logits, -1)
    maps = ops.reshape(ops.transpose(ops.reshape(scores, ops.constant(np.array([-1, positions, num_classes])), False),
                                     ops.constant(np.array([0, 2, 1]))),
                       ops.constant(np.array([-1, num_classes, height, width])), False)
    vector = pool.output(0) if pooled_rank == 2 else ops.reshape(
        pool.output(0), ops.constant(np.array([0, channels])), True).output(0)
    results = []
    for value, name in ((vector, "feature_vector"), (_normalize(maps.output(0)).output(0), "saliency_map"),
                        (feature_map, "feature_map")):
        result = ops.result(value)
        result.output(0).get_tensor().set_names({name})
        results.append(result)
    model.add_results(results)
    try:
        model.validate_nodes_and_infer_types()
    except RuntimeError as error:
        for result in results:
            model.remove_result(result)
        raise CutError(f"the head after the global pooling cannot be re-run on the pooled vectors "
                       f"({str(error).splitlines()[0][:120]})") from None

"""Inference copies of a checkpoint's model, for the methods that run it hundreds of times per image
(Score-CAM, Occlusion, LIME, ...).

The copy has its batch norms folded into the convolutions before them (found in the traced graphs,
``torch.fx.experimental.optimization.fuse``) and weights and inputs in channels-last layout, which oneDNN
convolves fastest on a CPU. otx_xai's models hold traced graphs (their backbones); a plain module with
none (a torchvision classifier handed to ``torch_runner``-style runners) is traced whole first, and
kept as it is when it cannot be (data-dependent control flow): folding made a plain mobilenet_v2's
batches of 32 1.65× faster here (16.5 → 10.0 ms per image). The copy computes the same function to
float rounding (logits within ~1e-5) and is remade whenever the model's parameters change
(training-time probes, the sanity check's randomized head).
"""

from __future__ import annotations

import copy
import logging
from typing import Any

import numpy as np
import torch
from torch import fx
from torch.fx.experimental.optimization import fuse

from otx_xai.explain.black_box.runners import StreamingRunner

log = logging.getLogger(__name__)


def _fingerprint(model: torch.nn.Module) -> tuple[tuple[int, int], ...]:
    """Which tensors the model holds and how often each was changed in place (an optimizer step counts)."""
    return tuple((t.data_ptr(), t._version) for t in (*model.parameters(), *model.buffers()))


def inference_copy(model: torch.nn.Module) -> torch.nn.Module:
    """An eval copy of ``model`` with batch norms folded into the convolutions of its traced graphs and its
    weights channels-last (see the module docstring)."""
    clone = copy.deepcopy(model).eval()
    if not any(isinstance(module, fx.GraphModule) for module in clone.modules()):
        clone = _traced(clone)
    if isinstance(clone, fx.GraphModule):
        clone = _folded(clone)
    for name, graph_module in [(n, m) for n, m in clone.named_modules() if isinstance(m, fx.GraphModule) and n]:
        parent, _, attribute = name.rpartition(".")
        setattr(clone.get_submodule(parent), attribute, _folded(graph_module))
    return clone.to(memory_format=torch.channels_last)


def _traced(module: torch.nn.Module) -> torch.nn.Module:
    """``module`` traced whole (``torch.fx.symbolic_trace``) when it is a plain module whose forward is all it
    is asked for (one with ``export_outputs`` is otx_xai's and keeps its methods); itself otherwise."""
    if hasattr(module, "export_outputs"):
        return module
    try:
        return fx.symbolic_trace(module)
    except Exception as error:  # tracing arbitrary user code can raise anything: keep the module
        log.debug("inference copy: %s not traced (%s)", type(module).__name__, error)
        return module


def _folded(graph_module: fx.GraphModule) -> fx.GraphModule:
    """``graph_module`` with each batch norm that follows a convolution folded into it (itself on failure)."""
    try:
        return fuse(graph_module, inplace=False, no_trace=True)
    except (RuntimeError, TypeError, ValueError, AttributeError) as error:
        log.debug("inference copy: batch norms of %s not folded (%s)", type(graph_module).__name__, error)
        return graph_module


class InferenceCopies:
    """Inference copies of the last ``size`` models asked for (e.g. a model and the sanity check's
    randomized copy of it), each remade when its model's weights change."""

    def __init__(self, size: int = 2) -> None:
        self.size = size
        self._copies: dict[int, tuple[tuple[tuple[int, int], ...], torch.nn.Module]] = {}

    def of(self, model: torch.nn.Module) -> torch.nn.Module:
        fingerprint = _fingerprint(model)
        held = self._copies.pop(id(model), None)
        if held is None or held[0] != fingerprint:
            held = (fingerprint, inference_copy(model))
        self._copies[id(model)] = held  # the most recent last
        while len(self._copies) > self.size:
            self._copies.pop(next(iter(self._copies)))
        return held[1]


def copy_runner(copies: InferenceCopies, model: Any, batch_size: int) -> StreamingRunner:
    """``torch_runner``'s outputs (``export_outputs(..., explain=False)``, else ``logits``) of ``model``'s
    inference copy, batches in channels-last layout."""
    fast = copies.of(model)

    def one(batch: np.ndarray) -> dict[str, np.ndarray]:
        with torch.inference_mode():
            tensor = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32))
            tensor = tensor.contiguous(memory_format=torch.channels_last)
            outputs = (fast.export_outputs(tensor, explain=False) if hasattr(fast, "export_outputs")
                       else {"logits": fast(tensor)})
        return {name: value.detach().float().contiguous().cpu().numpy() for name, value in outputs.items()}

    return StreamingRunner(lambda batches: map(one, batches), batch_size, model=model)

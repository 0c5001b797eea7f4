"""The compiled forms of one IR: a static-shape one per batch size in use, the dynamic one for the rest.

An exported IR has a dynamic batch dimension. Compiled with it, the CPU plugin (2026.4) infers shapes
and prepares kernels on every inference, and a small model pays for that per node: measured here at
batch 1, 2 requests in flight, a static batch made predict 11 % (mobilenet_v3_small) to 27 %
(ssdlite320) faster, and explain, which adds a handful of small nodes, paid 10 % over predict with the
dynamic batch and 0-2 % with a static one. So each batch size gets its own compiled copy with that
batch fixed, compiled on first use (a fraction of a second for these models), up to a bound; any
further size, or one the model cannot be reshaped to, runs on the dynamic form.

Each form is compiled with the performance hint of its workload (``hint_for``): a batch of one image
is a latency job (one stream using every core: MobileNetV2 at 224 runs one image in 3.5 ms so, 5.3 ms
on one of the THROUGHPUT hint's two single-core streams), a larger batch (and the dynamic form) a
throughput job whose requests run side by side, one per stream. ``hint`` "latency" or "throughput"
compiles every form so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import openvino as ov

from otx_xai.errors import UserError

MAX_STATIC_BATCHES = 4  # batch sizes that get a static compiled copy: a dataset's batch, its last, a few more
PERFORMANCE_HINTS = ("auto", "latency", "throughput")  # "auto": latency for batch 1, throughput otherwise


def hint_for(hint: str, batch: int | None) -> str:
    """The CPU plugin's PERFORMANCE_HINT for a form of ``batch`` images (None: the dynamic form)."""
    if hint not in PERFORMANCE_HINTS:
        raise UserError(f"unknown performance hint {hint!r}: use one of {', '.join(PERFORMANCE_HINTS)}")
    if hint == "auto":
        return "LATENCY" if batch == 1 else "THROUGHPUT"
    return hint.upper()


@dataclass
class CompiledForm:
    """One compiled copy of the model (``batch`` fixed, or None: dynamic) and its idle infer requests."""

    compiled: ov.CompiledModel
    batch: int | None
    idle: list[ov.InferRequest] = field(default_factory=list)

    def take_request(self) -> ov.InferRequest:
        """An idle request, or a new one (its first inference allocates its buffers: reuse them)."""
        return self.idle.pop() if self.idle else self.compiled.create_infer_request()


class CompiledForms:
    """The dynamic compiled model (compiled at once: it checks the IR and gives the plugin's properties)
    and, per batch size asked for, up to ``max_static`` static ones, each with ``hint_for(hint, batch)``."""

    def __init__(self, core: ov.Core, model: ov.Model, device: str, config: dict[str, Any],
                 max_static: int = MAX_STATIC_BATCHES, hint: str = "auto") -> None:
        hint_for(hint, None)  # a bad hint fails here, before any compilation
        self._core, self._model, self._device, self._config, self.hint = core, model, device, config, hint
        self.dynamic = CompiledForm(core.compile_model(model, device, self._config_for(None)), None)
        self.max_static = max_static
        self._by_batch: dict[int, CompiledForm] = {}

    def for_batch(self, batch: int) -> CompiledForm:
        """The form that runs a batch of ``batch`` images: its static copy (compiled now if new and under
        the bound), else the dynamic one."""
        form = self._by_batch.get(batch)
        if form is None:
            if len(self._by_batch) >= self.max_static:
                return self.dynamic
            form = self._by_batch[batch] = self._compile_static(batch)
        return form

    @property
    def static_batches(self) -> list[int]:
        """The batch sizes that run on a static compiled copy."""
        return sorted(batch for batch, form in self._by_batch.items() if form.batch is not None)

    def _compile_static(self, batch: int) -> CompiledForm:
        static = self._model.clone()
        shape = ov.PartialShape([ov.Dimension(batch), *list(static.input(0).get_partial_shape())[1:]])
        try:
            static.reshape({static.input(0): shape})
            return CompiledForm(self._core.compile_model(static, self._device, self._config_for(batch)), batch)
        except RuntimeError:  # a graph that only works with its batch dynamic: keep to that form
            return self.dynamic

    def _config_for(self, batch: int | None) -> dict[str, Any]:
        return {**self._config, "PERFORMANCE_HINT": hint_for(self.hint, batch)}

    def compiled_hints(self) -> dict[str, str]:
        """What each form was compiled with, as the plugin reports it: {"dynamic": .., "1": .., "8": ..}."""
        forms = {"dynamic": self.dynamic, **{str(b): f for b, f in sorted(self._by_batch.items()) if f.batch}}
        return {name: str(form.compiled.get_property("PERFORMANCE_HINT")).rsplit(".", 1)[-1]
                for name, form in forms.items()}

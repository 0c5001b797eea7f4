"""Running an exported IR with the OpenVINO runtime, yielding the same PredictionBatch as a checkpoint."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Collection, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import openvino as ov

from otx_xai.data.datamodule import DataConfig
from otx_xai.errors import UserError
from otx_xai.explain.batch_readers import build_prediction_batch
from otx_xai.explain.entity import ModelInfo, PredictionBatch
from otx_xai.openvino.compile_passes import fuse_uint8_casts, remove_outputs
from otx_xai.openvino.compiled_forms import MAX_STATIC_BATCHES, PERFORMANCE_HINTS, CompiledForm, CompiledForms
from otx_xai.openvino.foreign_ir import prepare_foreign_model
from otx_xai.openvino.foreign_metadata import ForeignIROptions, foreign_metadata
from otx_xai.openvino.ir_file import read_model
from otx_xai.openvino.metadata import XAI_OUTPUTS, read_metadata

PRECISIONS = ("f32", "bf16")  # values of the CPU plugin's INFERENCE_PRECISION_HINT we offer

# a batch in flight: its request and the compiled form that request belongs to (both None: nothing to infer)
Pending = tuple[ov.InferRequest | None, CompiledForm | None, dict[str, Any]]


class IRError(UserError):
    """An IR that cannot be used; the message names the problem and the fix."""


class IRModel:
    """An exported model compiled for the CPU, with the metadata it was exported with.

    ``precision`` is the CPU plugin's inference precision, chosen explicitly because the plugin's own
    default follows the processor (bf16 where it has bf16 instructions): "f32" (exact, the default) or
    "bf16" (faster where supported; maps may differ by several grey levels). ``performance_hint`` "auto"
    compiles a batch of one image with the LATENCY hint (one stream using every core) and larger batches
    with the THROUGHPUT hint (a stream per core or two); "latency" or "throughput" compiles every batch
    size so (``compiled_forms.hint_for``). ``predict`` keeps ``num_requests`` infer requests in flight
    (default: twice the throughput form's optimal number, i.e. two per stream, so a stream that finishes
    finds the next request queued while Python reads outputs and makes inputs), yielding results in
    input order.
    ``skip_outputs`` names outputs not to compute (names the IR lacks are ignored): they are left out of
    the compiled model, and so is whatever only they need, e.g. ``feature_map``'s reorder to NCHW (2-3 %
    of a mobilenet_v3_small at batch 1). ``ir_output_names`` still lists every output of the IR.
    Each batch size runs on a copy compiled with that batch fixed, up to ``max_static_batches`` sizes
    (``compiled_forms``): the dynamic batch costs 3-30 % per image on the benchmark models
    (``benchmarks/bench_ir_static_batch.py``).

    An IR otx_xai did not export (no otx_xai rt_info) is read as a classifier: its labels, normalization
    and input size come from ``foreign`` (the ``--ir.*`` flags) or its own rt_info (``foreign_metadata``),
    and Recipro-CAM is inserted into its graph in memory (``foreign_ir``); ``explain_unavailable`` then
    says why, if it could not be. ``infer`` always gives its ``logits``.
    """

    def __init__(
        self, xml_path: str | Path, precision: str = "f32", device: str = "CPU", num_requests: int | None = None,
        skip_outputs: Collection[str] = (), max_static_batches: int = MAX_STATIC_BATCHES,
        foreign: ForeignIROptions | None = None, performance_hint: str = "auto",
    ) -> None:
        if precision not in PRECISIONS:
            raise IRError(f"unknown IR precision {precision!r}: use one of {', '.join(PRECISIONS)}")
        if performance_hint not in PERFORMANCE_HINTS:
            raise IRError(f"unknown IR performance hint {performance_hint!r}: use one of "
                          f"{', '.join(PERFORMANCE_HINTS)}")
        if num_requests is not None and num_requests < 1:
            raise IRError(f"num_requests={num_requests} must be a positive integer (or None for the optimum)")
        self.path = Path(xml_path)
        core = ov.Core()
        model = read_model(core, self.path)  # a missing, truncated or foreign file: a one-line UserError
        self.meta = read_metadata(model)
        self.explain_unavailable: str | None = None
        if self.meta and foreign is not None and foreign != ForeignIROptions():
            raise IRError(f"{self.path} carries its own otx_xai metadata (labels, preprocessing): drop the "
                          "--ir.* flags, they are for IRs otx_xai did not export")
        if not self.meta:  # not exported by otx_xai: labels and preprocessing from flags or its rt_info
            try:
                self.meta = foreign_metadata(model, foreign, self.path)
                self.explain_unavailable = prepare_foreign_model(model, self.meta, self.path)
            except ValueError as error:
                raise IRError(str(error)) from None
        self.ir_output_names = [port.get_any_name() for port in model.outputs]
        skip = set(skip_outputs)
        if set(self.ir_output_names) <= skip:
            raise IRError(f"skip_outputs {sorted(skip)} leaves {self.path} nothing to compute: keep one "
                          "of its outputs")
        remove_outputs(model, skip)
        fuse_uint8_casts(model)
        self.output_names = [port.get_any_name() for port in model.outputs]
        self.precision = precision
        self.device = device
        self.performance_hint = performance_hint
        self.forms = CompiledForms(core, model, device, {"INFERENCE_PRECISION_HINT": precision},
                                   max_static=max_static_batches, hint=performance_hint)
        self.compiled = self.forms.dynamic.compiled
        optimal = int(self.compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
        self.num_requests = num_requests or 2 * max(1, optimal)
        self.num_streams = int(self.compiled.get_property("NUM_STREAMS"))

    @property
    def runtime_info(self) -> dict[str, Any]:
        """How the IR runs, for run records: device, precision actually compiled, the hint asked for and
        the one each compiled form reports (``compiled_hints``: "dynamic" and each static batch size),
        requests, streams, the outputs it computes, the static batch sizes so far and their bound."""
        return {
            "device": self.device,
            "precision": self.precision,
            "compiled_precision": _type_name(self.compiled.get_property("INFERENCE_PRECISION_HINT")),
            "performance_hint": self.performance_hint,
            "compiled_hints": self.forms.compiled_hints(),
            "num_requests": self.num_requests,
            "num_streams": self.num_streams,
            "outputs": list(self.output_names),
            "static_batches": self.forms.static_batches,
            "max_static_batches": self.forms.max_static,
        }

    @property
    def has_xai_outputs(self) -> bool:
        """Whether the IR was exported with the explain outputs (whether or not they are all computed here)."""
        return all(name in self.ir_output_names for name in XAI_OUTPUTS)

    def require_xai_outputs(self) -> None:
        """A one-line error when the IR was exported without ``--explain`` (or, not exported by otx_xai,
        has no structure Recipro-CAM could be inserted into)."""
        if self.explain_unavailable is not None:
            raise IRError(f"{self.path} cannot be explained with Recipro-CAM: {self.explain_unavailable}; "
                          "explain it black-box (--explain_method AISE or RISE)")
        if not self.has_xai_outputs:
            raise IRError(f"{self.path} has no saliency_map output: re-export it with "
                          "`otx export --explain True` (or engine.export(explain=True)), or explain it "
                          "black-box (--explain_method AISE or RISE)")

    @property
    def model_info(self) -> ModelInfo:
        meta = self.meta
        return ModelInfo(task=meta["task"], label_names=list(meta["label_names"]),
                         multilabel=bool(meta.get("multilabel", False)),
                         explain_method=meta.get("explain_method", "none"))

    def data_config(self, batch_size: int = 8) -> DataConfig:
        """The input settings the model was exported with."""
        meta = self.meta
        return DataConfig(input_size=tuple(meta["input_size"]), mean=list(meta["mean"]), std=list(meta["std"]),
                          letterbox=bool(meta.get("letterbox", False)), batch_size=batch_size)

    def infer(self, images: np.ndarray) -> dict[str, np.ndarray]:
        """Outputs by name for a (B, 3, H, W) float32 batch, synchronously, on the IR's own requests.

        Never through ``CompiledModel.__call__``: its zero-copy input (share_inputs=True) makes the CPU
        plugin (2026.4) feed later concurrent requests of the same compiled model stale images.
        """
        (outputs,) = self.infer_batches([images])
        return outputs

    def infer_batches(self, batches: Iterable[np.ndarray]) -> Iterator[dict[str, np.ndarray]]:
        """``infer`` of each (B, 3, H, W) batch, in order, with up to ``num_requests`` batches in flight.

        A ``None`` in ``batches`` starts nothing: it hands over the oldest batch's outputs at once (a
        producer whose next batch depends on them, ``black_box/job_scheduler.py``).
        """
        for _, outputs in self._pipeline(None if images is None else {"images": images} for images in batches):
            if outputs is not None:  # never None: no batch is skipped
                yield outputs

    def predict(self, batches: Iterable[dict[str, Any]]) -> Iterator[tuple[PredictionBatch | None, list]]:
        """For each collated batch, in order: its PredictionBatch (None if no image was readable) and failures.

        Batches are inferred concurrently (``num_requests`` in flight); at most that many are held at once.
        """
        info = self.model_info
        for batch, outputs in self._pipeline(batches, skip=lambda batch: not batch["infos"]):
            if outputs is None:
                yield None, batch["failed"]
            else:
                yield build_prediction_batch(outputs, batch["infos"], info), batch["failed"]

    def _pipeline(
        self, batches: Iterable[dict[str, Any]], skip: Callable[[dict[str, Any]], bool] | None = None
    ) -> Iterator[tuple[dict[str, Any], dict[str, np.ndarray] | None]]:
        """(batch, outputs) in input order; outputs None for a batch ``skip`` says has nothing to infer.

        At most ``num_requests`` batches in flight, each on the compiled form for its size; requests are
        taken from that form's idle ones (new ones when another pipeline holds them) and handed back. A
        finished batch reaches the consumer only after the next batch was started, so the device works
        while the consumer does (a black-box method summing its maps).
        """
        pending: deque[Pending] = deque()
        running = 0
        try:
            for batch in batches:
                if batch is None:  # the producer waits for an output: the oldest batch's, now
                    if pending:
                        running -= pending[0][0] is not None
                        yield self._collect(pending.popleft())
                    continue
                ready = []  # finished batches, handed to the consumer once the next one is running
                request = form = None
                if skip is None or not skip(batch):
                    while running >= self.num_requests:
                        running -= pending[0][0] is not None
                        ready.append(self._collect(pending.popleft()))
                    images = np.ascontiguousarray(np.asarray(batch["images"], dtype=np.float32))
                    form = self.forms.for_batch(len(images))
                    request = form.take_request()
                    request.start_async({0: images}, share_inputs=False)
                    running += 1
                pending.append((request, form, batch))
                while pending and pending[0][0] is None:
                    ready.append(self._collect(pending.popleft()))
                yield from ready
            while pending:
                yield self._collect(pending.popleft())
        finally:  # the consumer stopped early, or an error: let no request run on past this call
            for request, form, _ in pending:
                if request is not None and form is not None:
                    request.wait()
                    form.idle.append(request)

    def _collect(self, entry: Pending) -> tuple[dict[str, Any], dict[str, np.ndarray] | None]:
        """Wait for a batch's request, copy its outputs out (the request is reused) and hand it back."""
        request, form, batch = entry
        if request is None or form is None:
            return batch, None
        request.wait()
        outputs = {name: request.get_output_tensor(index).data.copy()
                   for index, name in enumerate(self.output_names)}
        form.idle.append(request)
        return batch, outputs


def _type_name(value: Any) -> str:
    """"f32" for ``ov.Type.f32`` (whose ``str`` is "<Type: 'float32'>"); other values as strings."""
    return value.to_string() if hasattr(value, "to_string") else str(value)

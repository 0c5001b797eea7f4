"""A model as the black-box methods see it: preprocessed float32 images (N, 3, h, w) in, its plain
outputs out, named as in the IR (``logits``; ``bboxes``, ``labels``), for any N.

A runner is called with all N images (``run(images)``, split into ``batch_size`` batches), or streamed
(``stream_outputs(run, batches)``): it takes batches from an iterator as it has room and yields each
batch's outputs in order. Torch runs the batches one after the other; an IR keeps several batches in
flight on its asynchronous infer requests (``IRModel.infer_batches``), so a method that makes its
perturbed images lazily and sums its maps as outputs arrive keeps the device busy meanwhile. A streamed
iterator may yield ``None`` when it has nothing to start until it sees an output (``job_scheduler``): an
asynchronous stream then hands over its oldest batch's outputs; a synchronous one never meets it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import numpy as np
import torch

ModelRunner = Callable[[np.ndarray], dict[str, np.ndarray]]
BatchOutputs = Callable[[Iterable[np.ndarray]], Iterator[dict[str, np.ndarray]]]


def _batches(images: np.ndarray, batch_size: int, in_flight: int = 1) -> Iterator[np.ndarray]:
    """``images`` in batches of at most ``batch_size``, and in at least ``in_flight`` batches of nearly equal
    size when there are that many images: a call of a few dozen images (an AISE round) then keeps every
    stream (core) of the IR busy instead of one."""
    count = max(-(-len(images) // batch_size), min(in_flight, len(images)), 1)
    for part in np.array_split(np.arange(len(images)), count):
        if len(part):
            yield np.ascontiguousarray(images[part[0] : part[-1] + 1], dtype=np.float32)


def _concatenate(parts: Iterable[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    parts = list(parts)
    return {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}


class StreamingRunner:
    """A ModelRunner with ``stream``: ``batch_outputs`` maps batches to their outputs, in order; a call
    splits its images into batches of at most ``batch_size``, at least ``in_flight`` of them. ``model`` is
    the torch module behind a checkpoint's runner (the gradient methods, I-GOS, need it); None for an IR."""

    def __init__(self, batch_outputs: BatchOutputs, batch_size: int, in_flight: int = 1, model: Any = None) -> None:
        self.batch_outputs, self.batch_size, self.in_flight, self.model = batch_outputs, batch_size, in_flight, model

    def __call__(self, images: np.ndarray) -> dict[str, np.ndarray]:
        return _concatenate(self.stream(_batches(images, self.batch_size, self.in_flight)))

    def stream(self, batches: Iterable[np.ndarray]) -> Iterator[dict[str, np.ndarray]]:
        """Each batch's outputs, in order, batches taken from ``batches`` only as there is room for them."""
        return self.batch_outputs(batches)


def stream_outputs(run: ModelRunner, batches: Iterable[np.ndarray]) -> Iterator[dict[str, np.ndarray]]:
    """Each batch's outputs in order: through the runner's ``stream`` if it has one (an IR: several in
    flight), else one ``run`` call per batch."""
    stream = getattr(run, "stream", None)
    if stream is not None:
        yield from stream(batches)
    else:
        for batch in batches:
            if batch is not None:  # None: "nothing to start yet", which a synchronous run never needs
                yield run(batch)


def torch_runner(model: Any, batch_size: int) -> StreamingRunner:
    """A LightningModule's plain outputs (``export_outputs(..., explain=False)``, else ``logits``)."""

    def one(batch: np.ndarray) -> dict[str, np.ndarray]:
        with torch.inference_mode():
            tensor = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32))
            outputs = (model.export_outputs(tensor, explain=False) if hasattr(model, "export_outputs")
                       else {"logits": model(tensor)})
        return {name: value.detach().cpu().numpy() for name, value in outputs.items()}

    return StreamingRunner(lambda batches: map(one, batches), batch_size, model=model)


def method_torch_runner(method: Any, model: Any, batch_size: int) -> ModelRunner:
    """The runner ``method`` makes for a torch model (``method.torch_runner``, e.g. Score-CAM's logits and
    feature map), else ``torch_runner``."""
    make = getattr(method, "torch_runner", None)
    return make(model, batch_size) if make is not None else torch_runner(model, batch_size)


STREAM_PIXELS = 2 * 224 * 224
"""Input pixels per request when an IR runs perturbed images: two images at 224 px. The CPU plugin's
per-image time grows with the batch once a request's activations leave the caches; measured here
(THROUGHPUT hint, f32, 2 cores, ms per image at batch 1 / 2 / 8 / 32): MobileNetV2 at 224 3.75 / 3.56 /
4.31 / 4.89, resnet18 at 224 16.6 / 16.3 / 16.3 / 15.8, otx_xai's fcos_light at 128 7.15 / 6.64 / 6.00 /
6.00, so small batches for large inputs, larger ones for small inputs."""


def ir_stream_batch(batch_size: int, input_size: Sequence[int]) -> int:
    """Images per IR request: ``STREAM_PIXELS`` worth of ``input_size`` (h, w), at least 2 (a batch of one
    would compile for latency), at most ``batch_size``."""
    height, width = int(input_size[0]), int(input_size[1])
    return max(1, min(int(batch_size), max(2, STREAM_PIXELS // max(1, height * width))))


def runner_batch(run: ModelRunner, batch_size: int) -> int:
    """The batch a method should stream to ``run``: the runner's own (an IR's ``ir_stream_batch``) if it
    has one, else ``batch_size``."""
    return int(getattr(run, "batch_size", batch_size))


def ir_runner(ir: Any, batch_size: int) -> StreamingRunner:
    """An IRModel's outputs (compile it without the XAI outputs to skip them), batches in flight at once,
    ``ir_stream_batch`` images each."""
    batch = ir_stream_batch(batch_size, ir.data_config().input_size)
    return StreamingRunner(ir.infer_batches, batch, in_flight=ir.num_streams)

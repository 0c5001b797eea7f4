"""A model as the black-box methods see it: preprocessed float32 images (N, 3, h, w) in, its plain
outputs out, named as in the IR (``logits``; ``bboxes``, ``labels``), for any N.

A runner is called with all N images (``run(images)``, split into ``batch_size`` batches), or streamed
(``stream_outputs(run, batches)``): it takes batches from an iterator as it has room and yields each
batch's outputs in order. Torch runs the batches one after the other; an IR keeps several batches in
flight on its asynchronous infer requests (``IRModel.infer_batches``), so a method that makes its
perturbed images lazily and sums its maps as outputs arrive keeps the device busy meanwhile.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
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


def ir_runner(ir: Any, batch_size: int) -> StreamingRunner:
    """An IRModel's outputs (compile it without the XAI outputs to skip them), batches in flight at once."""
    return StreamingRunner(ir.infer_batches, batch_size, in_flight=ir.num_streams)

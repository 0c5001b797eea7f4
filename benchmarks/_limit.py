"""How close a method runs to what the hardware allows: the "distance to the limit".

The limit of an IR is its best time per inference, measured in the same run: the plain IR compiled at
each of a few static batch sizes with each performance hint, fed by an asynchronous queue that always
has its optimal number of requests in flight, inputs ready before the clock starts (no Python work but
starting requests). A method that runs ``n`` inferences per image is at distance

    ms per image / (n × best ms per inference)

from it: 1.0 means nothing but inference; 1.15 means 15 % went to everything else (making perturbed
inputs, summing maps, waiting on a half-empty queue). Pure OpenVINO and numpy, so the openvino_xai
worker (an older OpenVINO) measures its own runtime's limit with the same code.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import openvino as ov

BATCHES = (1, 2, 4, 8, 32)
HINTS = ("LATENCY", "THROUGHPUT")


@dataclass(frozen=True)
class Limit:
    """The IR's best time per inference and where it was found."""

    ms_per_inference: float
    batch: int
    hint: str

    def describe(self) -> str:
        return f"{self.ms_per_inference:.3f} ms per inference (batch {self.batch}, {self.hint})"


def distance(ms_per_image: float, inferences_per_image: float, limit: Limit) -> float:
    """ms per image ÷ (inferences per image × the IR's best ms per inference)."""
    return ms_per_image / (inferences_per_image * limit.ms_per_inference)


def per_inference_ms(compiled: ov.CompiledModel, images: np.ndarray, seconds: float) -> float:
    """ms per image of ``compiled`` (static batch = len(images)) with its optimal requests in flight."""
    requests = max(1, int(compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")))
    queue = ov.AsyncInferQueue(compiled, requests)
    for _ in range(2 * requests):  # warm-up: every request allocated and run once
        queue.start_async({0: images})
    queue.wait_all()
    runs, start = 0, time.perf_counter()
    while True:
        for _ in range(requests):
            queue.start_async({0: images})
        runs += requests
        if time.perf_counter() - start >= seconds:
            break
    queue.wait_all()
    return 1000.0 * (time.perf_counter() - start) / (runs * len(images))


def best_limit(xml: str | Path, images: np.ndarray, precision: str = "f32", batches: tuple[int, ...] = BATCHES,
               hints: tuple[str, ...] = HINTS, seconds: float = 0.5) -> Limit:
    """The plain IR's best ms per inference over ``batches`` × ``hints`` (``images``: (n, 3, h, w), tiled
    to each batch size)."""
    core = ov.Core()
    best: Limit | None = None
    for batch in batches:
        model = core.read_model(str(xml))
        try:
            model.reshape({model.input(0): ov.PartialShape([batch, *images.shape[1:]])})
        except RuntimeError:  # a graph that only runs with its batch dynamic: as it is
            model = core.read_model(str(xml))
        batch_images = np.ascontiguousarray(np.resize(images, (batch, *images.shape[1:])), dtype=np.float32)
        for hint in hints:
            compiled = core.compile_model(model, "CPU", {"PERFORMANCE_HINT": hint,
                                                         "INFERENCE_PRECISION_HINT": precision})
            ms = per_inference_ms(compiled, batch_images, seconds)
            if best is None or ms < best.ms_per_inference:
                best = Limit(ms, batch, hint)
    assert best is not None
    return best

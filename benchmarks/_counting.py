"""A model runner that counts the images it ran: the black-box benchmarks' inferences per image."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np

from otx_xai.explain.black_box.runners import ModelRunner, stream_outputs


class CountingRunner:
    """A runner that counts the images it ran, called or streamed (the wrapped runner's queue kept)."""

    def __init__(self, run: ModelRunner) -> None:
        self.run, self.images = run, 0
        self.in_flight = getattr(run, "in_flight", 1)  # the wrapped runner's, so methods schedule as for it
        if hasattr(run, "batch_size"):
            self.batch_size = run.batch_size

    def __call__(self, images: np.ndarray) -> dict[str, np.ndarray]:
        self.images += len(images)
        return self.run(images)

    def stream(self, batches: Iterable[np.ndarray]) -> Iterator[dict[str, np.ndarray]]:
        def counted() -> Iterator[np.ndarray]:
            for batch in batches:
                self.images += 0 if batch is None else len(batch)  # None: "hand me the oldest outputs"
                yield batch
        return stream_outputs(self.run, counted())

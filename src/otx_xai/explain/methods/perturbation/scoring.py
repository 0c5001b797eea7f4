"""Scoring many perturbed copies of a batch's images, streamed: batches of ``batch_size`` copies that span
images are made only as the runner has room for them (``stream_outputs``: an IR keeps several in flight
and makes the next batch while the device runs), so making perturbed images overlaps inference and the
last, short batch of one image does not leave the device idle before the next image."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator

import numpy as np

from otx_xai.explain.black_box.runners import ModelRunner, stream_outputs

Builder = Callable[[int, int, int, np.ndarray], None]
"""``build(image, start, stop, out)`` writes perturbed copies ``start:stop`` of image ``image`` into ``out``."""
ToScores = Callable[[dict[str, np.ndarray]], np.ndarray]
"""A batch's model outputs → its scores (n, K)."""

Layout = list[tuple[int, int, int]]  # (image, start, stop) pieces of one batch, in order


def score_perturbations(counts: list[int], build: Builder, run: ModelRunner, to_scores: ToScores,
                        shape: tuple[int, ...], batch_size: int) -> list[np.ndarray]:
    """Scores (counts[b], K) float64 of each image's ``counts[b]`` perturbed copies (each of ``shape``), in
    order, the copies streamed to ``run`` ``batch_size`` at a time."""
    layouts: deque[Layout] = deque()

    def batches() -> Iterator[np.ndarray]:
        layout: Layout = []
        filled = 0
        for b, count in enumerate(counts):
            start = 0
            while start < count:
                take = min(count - start, batch_size - filled)
                layout.append((b, start, start + take))
                filled += take
                start += take
                if filled == batch_size:
                    yield _made(layout, filled, build, shape, layouts)
                    layout, filled = [], 0
        if layout:
            yield _made(layout, filled, build, shape, layouts)

    scores: list[list[np.ndarray]] = [[] for _ in counts]
    for outputs in stream_outputs(run, batches()):
        result = np.asarray(to_scores(outputs), dtype=np.float64)
        offset = 0
        for b, start, stop in layouts.popleft():
            scores[b].append(result[offset : offset + stop - start])
            offset += stop - start
    return [np.concatenate(parts) if parts else np.zeros((0, 0)) for parts in scores]


def _made(layout: Layout, size: int, build: Builder, shape: tuple[int, ...], layouts: deque[Layout]) -> np.ndarray:
    """The batch ``layout`` describes, its layout queued for the consumer."""
    out = np.empty((size, *shape), dtype=np.float32)
    offset = 0
    for b, start, stop in layout:
        build(b, start, stop, out[offset : offset + stop - start])
        offset += stop - start
    layouts.append(layout)
    return out

"""Scoring many perturbed copies of a batch's images in model calls of a fixed size that span images, so
the last, short call of one image does not leave a backend's requests idle before the next image."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Builder = Callable[[int, int, int, np.ndarray], None]
"""``build(image, start, stop, out)`` writes perturbed copies ``start:stop`` of image ``image`` into ``out``."""
ScoreFn = Callable[[np.ndarray], np.ndarray]
"""Perturbed preprocessed images (N, 3, h, w) float32 → scores (N, K)."""


def score_perturbations(counts: list[int], build: Builder, score_fn: ScoreFn, shape: tuple[int, ...],
                        chunk: int) -> list[np.ndarray]:
    """Scores (counts[b], K) float64 of each image's ``counts[b]`` perturbed copies (each of ``shape``),
    ``chunk`` copies per ``score_fn`` call, in order."""
    pieces = [(b, start, min(start + chunk, count)) for b, count in enumerate(counts)
              for start in range(0, count, chunk)]
    scores: list[list[np.ndarray]] = [[] for _ in counts]
    pending: list[tuple[int, int, int]] = []
    filled = 0

    def flush() -> None:
        out = np.empty((filled, *shape), dtype=np.float32)
        offset = 0
        for b, start, stop in pending:
            build(b, start, stop, out[offset : offset + stop - start])
            offset += stop - start
        result = np.asarray(score_fn(out), dtype=np.float64)
        offset = 0
        for b, start, stop in pending:
            scores[b].append(result[offset : offset + stop - start])
            offset += stop - start

    for b, start, stop in pieces:
        while start < stop:  # split a piece at the chunk boundary
            take = min(stop - start, chunk - filled)
            pending.append((b, start, start + take))
            filled += take
            start += take
            if filled == chunk:
                flush()
                pending, filled = [], 0
    if pending:
        flush()
    return [np.concatenate(parts) if parts else np.zeros((0, 0)) for parts in scores]

"""RISE masks: seeded random low-resolution binary grids, bilinearly upsampled, randomly shifted.

Each mask is a ``cells × cells`` grid whose cells are kept (1) with probability ``prob``, upsampled
bilinearly to ``(cells + 1)`` cells of ``ceil(input / cells)`` pixels and cropped at a random shift of
less than one cell, so the soft mask edges fall anywhere in the image (Petsiuk et al. 2018, §3.2).
Only the grids and shifts are kept; the full-size masks are made chunk by chunk.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property

import cv2
import numpy as np


@dataclass(frozen=True)
class RiseMasks:
    """``len(grids)`` masks of ``input_size`` (h, w), float32 in [0, 1]."""

    grids: np.ndarray  # (N, cells, cells) float32, 0 or 1
    shifts: np.ndarray  # (N, 2) int: the crop's (dy, dx) in the upsampled mask
    input_size: tuple[int, int]

    def __len__(self) -> int:
        return len(self.grids)

    @property
    def cell_size(self) -> tuple[int, int]:
        """Pixels per cell (h, w)."""
        cells = self.grids.shape[-1]
        return -(-self.input_size[0] // cells), -(-self.input_size[1] // cells)

    def chunk(self, start: int, stop: int) -> np.ndarray:
        """Masks ``start:stop`` as (n, h, w) float32."""
        height, width = self.input_size
        cell_h, cell_w = self.cell_size
        cells = self.grids.shape[-1]
        up_size = ((cells + 1) * cell_w, (cells + 1) * cell_h)  # cv2 takes (width, height)
        out = np.empty((max(0, min(stop, len(self)) - start), height, width), dtype=np.float32)
        for i, index in enumerate(range(start, start + len(out))):
            upsampled = cv2.resize(self.grids[index], up_size, interpolation=cv2.INTER_LINEAR)
            dy, dx = self.shifts[index]
            out[i] = upsampled[dy : dy + height, dx : dx + width]
        return out

    @cached_property
    def coverage(self) -> np.ndarray:
        """Σ_i M_i per pixel, (h·w,) float32 (summed in float64 once per mask set: it does not depend on
        the image)."""
        total = np.zeros(self.input_size[0] * self.input_size[1], dtype=np.float64)
        for chunk in self.chunks(256):
            total += chunk.reshape(len(chunk), -1).sum(axis=0, dtype=np.float64)
        return total.astype(np.float32)

    def chunks(self, size: int) -> Iterator[np.ndarray]:
        """All masks in order, ``size`` at a time."""
        for start in range(0, len(self), size):
            yield self.chunk(start, start + size)


def rise_masks(count: int, input_size: tuple[int, int], cells: int, prob: float, seed: int) -> RiseMasks:
    """``count`` RISE masks for inputs of ``input_size`` (h, w); the same seed gives the same masks."""
    if count < 1 or cells < 1:
        raise ValueError(f"RISE needs at least one mask and one cell (got {count} masks, {cells} cells)")
    if not 0.0 < prob < 1.0:
        raise ValueError(f"RISE probability {prob} must be strictly between 0 and 1")
    rng = np.random.default_rng(seed)
    grids = (rng.random((count, cells, cells)) < prob).astype(np.float32)
    masks = RiseMasks(grids, np.zeros((count, 2), dtype=np.int64), (int(input_size[0]), int(input_size[1])))
    cell_h, cell_w = masks.cell_size
    shifts = np.stack([rng.integers(0, cell_h, count), rng.integers(0, cell_w, count)], axis=1)
    return RiseMasks(grids, shifts, masks.input_size)

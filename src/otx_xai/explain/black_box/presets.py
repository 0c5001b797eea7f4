"""Speed / balance / quality presets of the black-box methods and the settings a run resolves to.

AISE's presets are OpenVINO XAI's for classification (evaluations per kernel 25 / 50 / 85, three widths
from 0.1 to 0.25 of the side, four from 0.075 for quality): 150-680 inferences per explained class, the
guide's "120-500" range. The guide gives RISE's presets only as "more masks from speed to quality"
(1000-10000 inferences): ours are 1000 / 2000 / 5000 masks on an 8×8 grid at probability 0.5.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import Enum
from typing import Any

from otx_xai.errors import UserError


class Preset(str, Enum):
    """Compute budget of a black-box method."""

    SPEED = "speed"
    BALANCE = "balance"
    QUALITY = "quality"


RISE_MASKS = {Preset.SPEED: 1000, Preset.BALANCE: 2000, Preset.QUALITY: 5000}
AISE_ITERATIONS = {Preset.SPEED: 25, Preset.BALANCE: 50, Preset.QUALITY: 85}
AISE_KERNEL_WIDTHS = {Preset.SPEED: (0.1, 0.175, 0.25), Preset.BALANCE: (0.1, 0.175, 0.25),
                      Preset.QUALITY: (0.075, 0.1333, 0.1917, 0.25)}
OCCLUSION_WINDOW = {Preset.SPEED: 32, Preset.BALANCE: 32, Preset.QUALITY: 16}  # pixels
OCCLUSION_STRIDE = {Preset.SPEED: 1.0, Preset.BALANCE: 0.5, Preset.QUALITY: 0.5}  # of the window
LIME_SAMPLES = {Preset.SPEED: 500, Preset.BALANCE: 1000, Preset.QUALITY: 2000}  # balance: lime's default
SEGMENTATIONS = ("quickshift", "slic")
LIME_FILLS = ("mean", "baseline")


@dataclass
class BlackBoxConfig:
    """Settings of the black-box methods (``--black_box.*``); None takes the preset's value.

    Args:
        preset: speed, balance (default) or quality.
        num_masks: RISE masks, i.e. inferences per image (preset: 1000 / 2000 / 5000).
        num_cells: RISE mask grid, cells per side (cell size = input size / cells, rounded up).
        prob: RISE probability that a cell is kept.
        seed: RISE mask seed (the same masks for every image of a run).
        iterations: AISE optimizer evaluations per kernel width and target (preset: 25 / 50 / 85);
            each costs two inferences (the kernel kept, the kernel deleted); per detected box, one
            (the kernel kept).
        kernel_widths: AISE Gaussian kernel widths, as fractions of the input side.
        batch_size: perturbed images per model call on torch; on an IR at most this, two 224-px images'
            worth per request (``runners.ir_stream_batch``), several requests in flight.
        map_memory_mb: RISE / D-RISE float32 maps held at once per image: the explained classes (boxes)
            whose maps fit are summed while the model runs; more (the ALL group of a many-class model)
            are summed in further passes over the masks, this many MB of maps at a time.
        window: Occlusion window side in pixels (preset: 32 / 32 / 16; clipped to the input).
        stride: Occlusion stride in pixels, at most the window (preset: the window / half of it / half of it,
            i.e. 32 / 16 / 8 at the preset windows).
        num_samples: LIME perturbed samples per image, i.e. inferences (preset: 500 / 1000 / 2000).
        segmentation: LIME superpixels: quickshift (lime's default) or slic.
        fill: what LIME puts in a hidden superpixel: its mean colour (lime's default) or the baseline
            (the preprocessing mean).
        ig_steps: I-GOS / I-GOS++ integration steps per gradient (preset: 10 / 15 / 20 and 10 / 20 / 20);
            ``iterations`` is their optimizer iterations (preset: 10 / 20 / 30 and 8 / 15 / 25), ``seed``
            their noise seed.
        patches: SAG patch grid, patches per side.
        keep: SAG's share of the full-image score a root keeps (0.9).
        beam_width: SAG beam width (preset: 2 / 3 / 5); successors: patches a beam set grows by
            (preset: 10 / 15 / 20); max_roots: roots the search stops at (10); shown_roots: roots drawn (3);
            overlap: patches two shown roots may share (1). ``num_masks`` is SAG's RISE prior's mask count
            (preset: 250 / 500 / 1000) when the model has no Recipro-CAM map of its own.
    """

    preset: str = "balance"
    num_masks: int | None = None
    num_cells: int = 8
    prob: float = 0.5
    seed: int = 0
    iterations: int | None = None
    kernel_widths: list[float] | None = None
    batch_size: int = 32
    map_memory_mb: int = 64
    window: int | None = None
    stride: int | None = None
    num_samples: int | None = None
    segmentation: str = "quickshift"
    fill: str = "mean"
    ig_steps: int | None = None
    patches: int = 7
    keep: float = 0.9
    beam_width: int | None = None
    successors: int | None = None
    max_roots: int = 10
    shown_roots: int = 3
    overlap: int = 1

    def __post_init__(self) -> None:
        try:
            self.preset = Preset(str(getattr(self.preset, "value", self.preset)).lower()).value
        except ValueError:
            raise UserError(f"unknown black_box.preset {self.preset!r}: use one of "
                             f"{', '.join(p.value for p in Preset)}") from None
        for name in ("num_masks", "num_cells", "iterations", "batch_size", "map_memory_mb", "window", "stride",
                     "num_samples", "ig_steps", "patches", "beam_width", "successors", "max_roots", "shown_roots"):
            value = getattr(self, name)
            if value is not None and int(value) < 1:
                raise UserError(f"black_box.{name}={value} must be a positive integer")
        if not 0.0 < float(self.prob) < 1.0:
            raise UserError(f"black_box.prob={self.prob} must be strictly between 0 and 1 (the share of "
                             "cells a mask keeps)")
        if not 0.0 < float(self.keep) <= 1.0:
            raise UserError(f"black_box.keep={self.keep} must be in (0, 1]: the share of the full-image score "
                            "a SAG root keeps, e.g. 0.9")
        if int(self.overlap) < 0:
            raise UserError(f"black_box.overlap={self.overlap} must be 0 or more (patches two SAG roots share)")
        if self.kernel_widths is not None and (not self.kernel_widths or min(self.kernel_widths) <= 0):
            raise UserError(f"black_box.kernel_widths={self.kernel_widths} must be positive fractions of "
                             "the input side, e.g. [0.1, 0.25]")
        self._check_occlusion_and_lime()

    def _check_occlusion_and_lime(self) -> None:
        if self.occlusion_stride > self.occlusion_window:
            raise UserError(f"black_box.stride={self.occlusion_stride} is larger than black_box.window="
                            f"{self.occlusion_window}: Occlusion would skip pixels; use a stride ≤ the window")
        if self.segmentation not in SEGMENTATIONS:
            raise UserError(f"unknown black_box.segmentation {self.segmentation!r}: use one of "
                            f"{', '.join(SEGMENTATIONS)}")
        if self.fill not in LIME_FILLS:
            raise UserError(f"unknown black_box.fill {self.fill!r}: use one of {', '.join(LIME_FILLS)}")

    @property
    def masks(self) -> int:
        """RISE masks after the preset."""
        return int(self.num_masks or RISE_MASKS[Preset(self.preset)])

    @property
    def aise_iterations(self) -> int:
        """AISE evaluations per kernel width after the preset."""
        return int(self.iterations or AISE_ITERATIONS[Preset(self.preset)])

    @property
    def aise_kernel_widths(self) -> tuple[float, ...]:
        """AISE kernel widths after the preset."""
        return tuple(float(w) for w in (self.kernel_widths or AISE_KERNEL_WIDTHS[Preset(self.preset)]))

    @property
    def occlusion_window(self) -> int:
        """Occlusion window side (pixels) after the preset."""
        return int(self.window or OCCLUSION_WINDOW[Preset(self.preset)])

    @property
    def occlusion_stride(self) -> int:
        """Occlusion stride (pixels) after the preset."""
        if self.stride:
            return int(self.stride)
        return max(1, int(self.occlusion_window * OCCLUSION_STRIDE[Preset(self.preset)]))

    @property
    def lime_samples(self) -> int:
        """LIME samples per image after the preset."""
        return int(self.num_samples or LIME_SAMPLES[Preset(self.preset)])

    def record(self) -> dict[str, Any]:
        """The settings as a JSON-ready dict."""
        return asdict(self)

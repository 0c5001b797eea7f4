"""I-GOS++ (Khorram et al. 2021): a deletion and an insertion mask optimized together with integrated
gradients, their product the explanation, smoothed by the bilateral total variation (``igos_core``).
Checkpoints only, like I-GOS."""

from __future__ import annotations

from typing import ClassVar

from otx_xai.explain.black_box.presets import Preset
from otx_xai.explain.methods.gradient.igos import MaskOptimizationMethod


class IGOSPlusPlus(MaskOptimizationMethod):
    """I-GOS++: deletion × insertion masks, bilateral TV."""

    name = "IGOSPlusPlus"
    plus_plus = True
    start_step = 1000.0
    presets: ClassVar[dict[Preset, tuple[int, int]]] = {
        Preset.SPEED: (8, 10), Preset.BALANCE: (15, 20), Preset.QUALITY: (25, 20)}
    paths_per_evaluation = 4


FOR_TASK = {"classification": IGOSPlusPlus}

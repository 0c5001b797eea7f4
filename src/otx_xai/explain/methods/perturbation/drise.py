"""D-RISE (Petsiuk et al. 2021) on detectors: RISE's masks (``black_box/masks.py``, the same settings and
seed as RISE) and RISE's estimate (``black_box/rise.py``: Σ_i w_i·M_i / Σ_i M_i) with w_i the box scores
(``black_box/detection_score.py``) of the masked image — one pass of the masks explains every box of an
image at once, its masked batches made as the model takes them and summed (float32) as their scores
arrive.
"""

from __future__ import annotations

import numpy as np

from otx_xai.explain.black_box.detection import DetectionMethod
from otx_xai.explain.black_box.detection_score import box_score_stream
from otx_xai.explain.black_box.rise import RiseMaskedMethod, rise_saliency, targets_per_group
from otx_xai.explain.black_box.runners import ModelRunner, runner_batch


class DetectionDRISE(RiseMaskedMethod, DetectionMethod):
    """D-RISE over a detector; the masks are made once per input size (and seed)."""

    name = "DRISE"

    def box_maps(self, image: np.ndarray, boxes: np.ndarray, labels: np.ndarray, run: ModelRunner) -> np.ndarray:
        masks = self.masks((int(image.shape[-2]), int(image.shape[-1])))
        group = targets_per_group(self.config.map_memory_mb, masks.input_size)
        batch = runner_batch(run, self.config.batch_size)
        return rise_saliency(image, box_score_stream(run, boxes, labels), masks, batch, group)


FOR_TASK = {"detection": DetectionDRISE}

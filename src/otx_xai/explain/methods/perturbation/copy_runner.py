"""A checkpoint's plain outputs computed on its inference copy, for the perturbation methods that run the
whole model hundreds of times per image (Occlusion, LIME): batch norms folded into the convolutions of its
traced graphs and weights and inputs channels-last (``score_cam_runner.inference_copy``; the same logits
to float rounding), the copy remade when the model's weights change."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from otx_xai.explain.black_box.runners import StreamingRunner
from otx_xai.explain.methods.perturbation.score_cam_runner import InferenceCopies


def copy_runner(copies: InferenceCopies, model: Any, batch_size: int) -> StreamingRunner:
    """``torch_runner``'s outputs (``export_outputs(..., explain=False)``, else ``logits``) of ``model``'s
    inference copy, batches in channels-last layout."""
    fast = copies.of(model)

    def one(batch: np.ndarray) -> dict[str, np.ndarray]:
        with torch.inference_mode():
            tensor = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32))
            tensor = tensor.contiguous(memory_format=torch.channels_last)
            outputs = (fast.export_outputs(tensor, explain=False) if hasattr(fast, "export_outputs")
                       else {"logits": fast(tensor)})
        return {name: value.detach().float().contiguous().cpu().numpy() for name, value in outputs.items()}

    return StreamingRunner(lambda batches: map(one, batches), batch_size, model=model)

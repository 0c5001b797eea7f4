"""A model as the black-box methods see it: preprocessed float32 images (N, 3, h, w) in, its plain
outputs out, named as in the IR (``logits``; ``bboxes``, ``labels``), for any N.

Both runners split N into ``batch_size`` batches: torch runs them one after the other, an IR pushes them
through its asynchronous infer requests (``IRModel.infer_batches``: several batches in flight).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np
import torch

ModelRunner = Callable[[np.ndarray], dict[str, np.ndarray]]


def _batches(images: np.ndarray, batch_size: int) -> Iterator[np.ndarray]:
    for start in range(0, len(images), batch_size):
        yield np.ascontiguousarray(images[start : start + batch_size], dtype=np.float32)


def _concatenate(parts: Iterable[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    parts = list(parts)
    return {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}


def torch_runner(model: Any, batch_size: int) -> ModelRunner:
    """A LightningModule's plain outputs (``export_outputs(..., explain=False)``, else ``logits``)."""

    def run(images: np.ndarray) -> dict[str, np.ndarray]:
        parts = []
        with torch.inference_mode():
            for batch in _batches(images, batch_size):
                tensor = torch.from_numpy(batch)
                outputs = (model.export_outputs(tensor, explain=False) if hasattr(model, "export_outputs")
                           else {"logits": model(tensor)})
                parts.append({name: value.detach().cpu().numpy() for name, value in outputs.items()})
        return _concatenate(parts)

    return run


def ir_runner(ir: Any, batch_size: int) -> ModelRunner:
    """An IRModel's outputs (compile it without the XAI outputs to skip them), batches in flight at once."""

    def run(images: np.ndarray) -> dict[str, np.ndarray]:
        return _concatenate(ir.infer_batches(_batches(images, batch_size)))

    return run

"""Tracing a model into an IR: the sizes that are constants of the exported model, and warnings about them.

An exported IR has a fixed input size (only its batch is dynamic), so every spatial size computed from
it is a constant of the graph. Reading such a size as a Python int while tracing is correct, and the
TracerWarning torch raises for it says nothing a user can act on: these helpers read them silently.
Values that are not constants (the batch) are never read here; they stay traced.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import Tensor


def frozen_size(tensor: Tensor, start: int = 0) -> tuple[int, ...]:
    """``tensor.shape[start:]`` as Python ints. Inside a trace they become constants of the IR, which
    has a fixed input size (only its batch is dynamic): never pass the batch dimension."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=torch.jit.TracerWarning)
        return tuple(int(size) for size in tensor.shape[start:])


def static_int(value: int | Tensor) -> int:
    """A size that is fixed for a given input size, as a Python int (also while tracing)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        return int(value)


@contextmanager
def constant_size_checks(module: str) -> Iterator[None]:
    """Inside: no TracerWarning from ``module`` (a regex on the warning's module, e.g. ``torch\\.nn\\.functional``)
    about a tensor read as a Python boolean — for a third-party size check on a fixed-size input that adds
    no operation to the graph. Other warnings, and these from any other module, still show."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Converting a tensor to a Python boolean",
                                category=torch.jit.TracerWarning, module=module)
        yield

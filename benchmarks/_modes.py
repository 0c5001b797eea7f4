"""Timed work units of each mode (predict, explain, null, ...) on torch and on an IR."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

import numpy as np
import torch

from _timing import Unit, Work
from otx_xai.openvino.inference import IRModel


def ir_work(ir: IRModel, images: np.ndarray, batches: int) -> Work:
    """Infer ``batches`` copies of ``images`` with the IR's requests all in flight (``IRModel.infer_batches``)."""

    def run() -> None:
        for _ in ir.infer_batches(images for _ in range(batches)):
            pass

    return run


def torch_work(fn: Callable[[torch.Tensor], object], images: np.ndarray, calls: int) -> Work:
    """``calls`` calls of ``fn`` on ``images`` under ``torch.inference_mode``."""
    tensor = torch.from_numpy(images)

    def run() -> None:
        with torch.inference_mode():
            for _ in range(calls):
                fn(tensor)

    return run


WorkFactory = Callable[[np.ndarray], Unit]  # a batch of images → the mode's timed unit on it


def torch_factory(fn: Callable[[torch.Tensor], object]) -> WorkFactory:
    """Unit: one call on the batch."""
    return lambda images: (torch_work(fn, images, 1), len(images))


IR_BATCHES_PER_REQUEST = 2  # per unit: requests refill while the others run, as in a real run


def ir_factory(irs: Sequence[IRModel]) -> WorkFactory:
    """Unit: two batches per infer request, all requests in flight (2 on 2 cores), so every core works;
    successive units take the compiled copies of the mode in turn."""
    batches = IR_BATCHES_PER_REQUEST * irs[0].num_requests

    def factory(images: np.ndarray) -> Unit:
        works = itertools.cycle([ir_work(ir, images, batches) for ir in irs])
        return (lambda: next(works)()), batches * len(images)
    return factory


NULL = "null"  # predict timed a second time as if it were another mode: null/predict is the run's noise floor


def torch_speed_modes(fns: dict[str, Callable[[torch.Tensor], object]]) -> dict[str, WorkFactory]:
    """Timed units of each torch mode, plus ``null``: predict again."""
    return {mode: torch_factory(fn) for mode, fn in fns.items()} | {NULL: torch_factory(fns["predict"])}


IR_COPIES = 3  # compiled copies per IR mode: units rotate through them


def ir_speed_modes(irs: dict[str, IRModel], slow: frozenset[str] = frozenset()) -> dict[str, WorkFactory]:
    """Timed units of each IR mode, plus ``null``: the predict IR again, as a mode of its own.

    A compiled model's speed depends on when it was compiled and where its memory landed (here up to
    ±5 % between copies of one IR), so each mode is compiled ``IR_COPIES`` times, the modes taking turns
    (predict, explain, …, null, predict, …), and its units rotate through the copies; ``slow`` modes get one.
    The static form a copy runs for a batch size is compiled on its first unit, in the same turns
    (``run_speed_case`` warms every copy before timing).
    """
    sources = irs | {NULL: irs["predict"]}
    copies: dict[str, list[IRModel]] = {mode: [] for mode in sources}
    for index in range(IR_COPIES):
        for mode, ir in sources.items():
            if index == 0 or mode not in slow:
                skipped = set(ir.ir_output_names) - set(ir.output_names)
                copies[mode].append(IRModel(ir.path, precision=ir.precision, num_requests=ir.num_requests,
                                            skip_outputs=skipped, max_static_batches=ir.forms.max_static))
    return {mode: ir_factory(models) for mode, models in copies.items()}

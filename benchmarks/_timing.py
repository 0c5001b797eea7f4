"""Interleaved timing with medians, and how many units a mode runs per round.

The machine these run on is shared and noisy, so modes are never timed one after the other: within a
round the modes take turns unit by unit, in an order that alternates, and a ratio is the median over
rounds of the per-round ratios (the modes of one round saw about the same load). Speeds are medians over
rounds. A round gives each mode at least a set number of images and a set number of seconds: on the IR a
batch-1 image takes ~1.5 ms, and 16 of them per round (25 ms) left single figures ±3 % apart between
runs on this machine.
"""

from __future__ import annotations

import gc
import math
import statistics
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass

Work = Callable[[], None]
Unit = tuple[Work, int]  # one timed unit of a mode, and how many images it processes


@dataclass(frozen=True)
class RoundBudget:
    """What each mode gets per round: at least ``images`` images and at least ``seconds`` of work."""

    images: int
    seconds: float

    def __str__(self) -> str:
        return f">= {self.images} images and >= {self.seconds:g} s per mode per round"


@dataclass
class Timing:
    """Seconds each mode spent per round, in round order, and the images it processed per round."""

    seconds: dict[str, list[float]]
    images: dict[str, int]

    def images_per_second(self, mode: str) -> float:
        return self.images[mode] / statistics.median(self.seconds[mode])

    def ratio(self, mode: str, baseline: str) -> float:
        """Median over rounds of the per-image time of mode / that of baseline, both timed in the same round."""
        pairs = zip(self.seconds[mode], self.seconds[baseline], strict=True)
        scale = self.images[baseline] / self.images[mode]
        return statistics.median(a / b * scale for a, b in pairs)


def units_per_round(units: dict[str, Unit], budget: RoundBudget, slow: Collection[str] = (),
                    baseline: str = "predict") -> dict[str, int]:
    """Repeats per round: one for a ``slow`` mode; for the others the same number, enough for the budget's
    images and, timed on ``baseline``'s unit (run twice, the first untimed), for its seconds."""
    work, images = units[baseline]
    work()
    start = time.perf_counter()
    work()
    seconds = time.perf_counter() - start
    repeats = max(1, math.ceil(budget.images / images), math.ceil(budget.seconds / max(seconds, 1e-9)))
    return {mode: 1 if mode in slow else repeats for mode in units}


def warm_up(units: dict[str, Unit], turns: int) -> None:
    """Run every unit ``turns`` times, untimed, the modes taking turns (first runs allocate and compile)."""
    for _ in range(turns):
        for work, _ in units.values():
            work()


def time_interleaved(units: dict[str, Unit], rounds: int, repeats: dict[str, int]) -> Timing:
    """Per round, each mode runs its unit ``repeats[mode]`` times, the modes taking turns unit by unit (in
    an order that alternates), so that every mode of a round sees the same load. Warm the units first."""
    names = list(units)
    seconds: dict[str, list[float]] = {name: [] for name in names}
    for index in range(rounds):
        gc.collect()
        spent = dict.fromkeys(names, 0.0)
        for step in range(max(repeats.values())):
            for name in names if (index + step) % 2 == 0 else reversed(names):
                if step < repeats[name]:
                    start = time.perf_counter()
                    units[name][0]()
                    spent[name] += time.perf_counter() - start
        for name in names:
            seconds[name].append(spent[name])
    return Timing(seconds, {name: units[name][1] * repeats[name] for name in names})

"""Speed benchmarks: cases, their rows and tables, the options, the verdict, and the peak-RSS child."""

from __future__ import annotations

import argparse
import gc
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from _inputs import random_images
from _ir import ALL_OUTPUTS
from _machine import set_torch_threads
from _modes import IR_COPIES, NULL, WorkFactory
from _rss import RSS_CHILD_FLAG, MakeWork, Memory, peak_rss_mib, peaks_in_child, rss_mib
from _tables import markdown_table
from _timing import RoundBudget, Timing, time_interleaved, units_per_round, warm_up


def maybe_run_rss_child(make_work: MakeWork) -> None:
    """If this process is a peak-RSS child (``--rss-child``), run its mode, print the peaks and exit."""
    if RSS_CHILD_FLAG not in sys.argv:
        return
    spec = json.loads(sys.argv[sys.argv.index(RSS_CHILD_FLAG) + 1])
    set_torch_threads(spec.get("threads", 2))
    works = [make_work(spec, random_images(batch, spec["size"])) for batch in spec["batches"]]
    gc.collect()
    peaks = [rss_mib()]
    for work in works:
        work()
        work()
        peaks.append(peak_rss_mib())
    print(json.dumps(peaks))
    sys.exit(0)


@dataclass
class SpeedCase:
    """One model of a speed benchmark: its modes per backend, and what a peak-RSS child needs to rebuild one.

    ``modes[backend][mode]`` builds the timed unit; ``spec`` (JSON-able) is handed to the script's
    ``make_work`` in a child process, with ``backend`` and ``mode`` added; ``slow`` modes run one unit
    per round.
    """

    name: str
    modes: dict[str, dict[str, WorkFactory]]
    spec: dict
    slow: frozenset[str] = frozenset()

    @property
    def all_modes(self) -> list[str]:
        """Every backend's modes, in order of first appearance (one backend may have modes of its own)."""
        return list(dict.fromkeys(mode for factories in self.modes.values() for mode in factories))


@dataclass
class SpeedRow:
    name: str
    batch: int
    backend: str
    timing: Timing
    memory: dict[str, Memory | None]


def run_speed_case(case: SpeedCase, script: str, batches: Sequence[int], rounds: int, budget: RoundBudget,
                   rss: bool) -> list[SpeedRow]:
    """Time every backend's modes side by side per batch size; peak RSS of each mode in a fresh process."""
    rows = []
    for backend, factories in case.modes.items():
        memory: dict[str, dict[int, Memory]] = {}
        if rss:
            for mode in (mode for mode in factories if mode != NULL):
                spec = {**case.spec, "backend": backend, "mode": mode, "threads": torch.get_num_threads()}
                memory[mode] = peaks_in_child(script, spec, batches)
        for batch in batches:
            images = random_images(batch, case.spec["size"])
            units = {mode: factory(images) for mode, factory in factories.items()}
            warm_up(units, turns=IR_COPIES)  # each IR copy compiles its static form for the batch, in turns
            repeats = units_per_round(units, budget, case.slow)
            timing = time_interleaved(units, rounds, repeats)
            rows.append(SpeedRow(case.name, batch, backend, timing,
                                 {mode: memory[mode][batch] if mode in memory else None for mode in factories}))
            print(speed_table(rows[-1:], modes=case.all_modes).splitlines()[-1], flush=True)
    return rows


def speed_headers(modes: Sequence[str]) -> list[str]:
    others = [mode for mode in modes if mode != "predict"]
    return (["model", "batch", "backend"] + [f"{mode} img/s" for mode in modes]
            + [f"{mode}/predict" for mode in others] + [f"peak RSS MiB {mode}" for mode in modes if mode != NULL])


def speed_table(rows: Sequence[SpeedRow], with_header: bool = False, modes: Sequence[str] | None = None) -> str:
    """Markdown rows: images/s per mode, per-image cost ratios to predict (explain in bold), peak RSS;
    "-" for a mode a row did not time.

    ``modes`` defaults to every row's, in order; give them to print just the header of an empty table.
    """
    modes = list(modes or dict.fromkeys(mode for row in rows for mode in row.timing.seconds))
    others = [mode for mode in modes if mode != "predict"]
    cells = []
    for row in rows:
        timed = row.timing.seconds
        speeds = [f"{row.timing.images_per_second(mode):.1f}" if mode in timed else "-" for mode in modes]
        ratios = ["-" if mode not in timed else f"**{row.timing.ratio(mode, 'predict'):.3f}**" if mode == "explain"
                  else f"{row.timing.ratio(mode, 'predict'):.3f}" if mode in (NULL, ALL_OUTPUTS)
                  else f"{row.timing.ratio(mode, 'predict'):.2f}" for mode in others]
        memory = [str(row.memory[mode]) if row.memory.get(mode) else "-" for mode in modes if mode != NULL]
        cells.append([row.name, row.batch, row.backend, *speeds, *ratios, *memory])
    table = markdown_table(speed_headers(modes), cells)
    return table if with_header else "\n".join(table.splitlines()[2:])


def speed_arguments(description: str, rounds: int, quick_rounds: int) -> argparse.ArgumentParser:
    """The options every speed benchmark has."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="few rounds, few images, no peak-RSS children")
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 8])
    parser.add_argument("--size", type=int, default=224, help="input size (square)")
    parser.add_argument("--rounds", type=int, default=None,
                        help=f"timed rounds (default {rounds}, quick {quick_rounds})")
    parser.add_argument("--images", type=int, default=None,
                        help="at least this many images per mode per round (default 16, quick 8)")
    parser.add_argument("--seconds", type=float, default=None,
                        help="and at least this much work per mode per round (default 0.25, quick 0.05)")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    parser.add_argument("--no-rss", action="store_true", help="skip the peak-RSS child processes")
    parser.set_defaults(default_rounds=(rounds, quick_rounds))
    return parser


def resolve(args: argparse.Namespace) -> tuple[int, RoundBudget, bool]:
    """(rounds, what each mode gets per round, measure RSS) from the parsed speed arguments."""
    rounds = args.rounds or args.default_rounds[1 if args.quick else 0]
    images = args.images or (8 if args.quick else 16)
    seconds = args.seconds if args.seconds is not None else (0.05 if args.quick else 0.25)
    return rounds, RoundBudget(images, seconds), not (args.no_rss or args.quick)


def null_ratios(rows: Sequence[SpeedRow]) -> list[float]:
    """null/predict of every row that timed the null mode."""
    return [row.timing.ratio(NULL, "predict") for row in rows if NULL in row.timing.seconds]


def noise_line(rows: Sequence[SpeedRow]) -> str:
    """How far this run's null/predict strayed from 1: differences of that size are the machine, not the code."""
    nulls = null_ratios(rows)
    return (f"noise floor (null/predict, predict against itself): {min(nulls):.3f}-{max(nulls):.3f}"
            if nulls else "")


def goal_verdict(worst: float, goal: float, rows: Sequence[SpeedRow]) -> str:
    """``met`` / ``NOT met`` for the worst ratio, saying so when predict timed against itself strayed as far."""
    if worst <= goal:
        return "met"
    nulls = null_ratios(rows)
    if nulls and worst <= max(nulls):
        return f"NOT met by the figure, but inside this run's noise (null/predict reached {max(nulls):.3f})"
    return "NOT met"

"""What every benchmark shares: work units, speed cases and their rows, markdown tables, the header,
the options (timing: ``_timing``; peak RSS: ``_rss``).

On a loaded machine torch's OpenMP threads, spinning at every barrier by default, lose whole scheduler
time slices per operator (measured here: resnet18 batch 1, 2 threads, 337 ms spinning vs 69 ms passive).
Importing this module therefore re-executes the script once with ``OMP_WAIT_POLICY=PASSIVE`` unless the
variable is already set (set it to ACTIVE to measure the default behaviour).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import gc
import itertools
import json
import os
import platform
import shlex
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import openvino
import torch

from _rss import RSS_CHILD_FLAG, MakeWork, Memory, peak_rss_mib, peaks_in_child, rss_mib
from _timing import RoundBudget, Timing, Unit, Work, time_interleaved, units_per_round, warm_up
from otx_xai.data.datamodule import DataConfig
from otx_xai.explain.config import ExplainConfig
from otx_xai.explain.saliency import unread_outputs
from otx_xai.openvino.compiled_forms import MAX_STATIC_BATCHES
from otx_xai.openvino.export import export_ir
from otx_xai.openvino.inference import IRModel

if "OMP_WAIT_POLICY" not in os.environ:  # libgomp reads it when torch loads: restart with it set
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    os.execv(sys.executable, [sys.executable, *sys.argv])


def set_torch_threads(threads: int) -> None:
    """Intra-op threads for torch (inter-op 1: every benchmark runs one model at a time)."""
    torch.set_num_threads(threads)
    with contextlib.suppress(RuntimeError):  # already set, or parallel work already started
        torch.set_num_interop_threads(1)


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


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A GitHub markdown table; floats as given (format them before)."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def header(title: str) -> str:
    """Title, the exact command, date and machine facts, as markdown."""
    command = "python " + " ".join(shlex.quote(arg) for arg in sys.argv)
    when = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    return (
        f"## {title}\n\n`{command}`\n\n{when} · {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores (load average {load}) · torch {torch.__version__} "
        f"({torch.get_num_threads()} threads, OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}) · "
        f"OpenVINO {openvino.__version__}\n"
    )


def random_images(batch: int, size: int, seed: int = 0) -> np.ndarray:
    """A fixed batch of normalized-looking float32 images (B, 3, size, size)."""
    return np.random.default_rng(seed).standard_normal((batch, 3, size, size), dtype=np.float32)


def max_grey_diff(a: np.ndarray, b: np.ndarray) -> int:
    """Largest absolute difference of two uint8 maps, in grey levels."""
    return int(np.abs(a.astype(np.int16) - b.astype(np.int16)).max())


STAGE_SKIPS = unread_outputs(ExplainConfig())  # what `otx explain` leaves uncomputed by default: feature_map
ALL_OUTPUTS = "all_outputs"  # an IR-only mode: the explain IR with every output computed, feature_map too


def load_ir(path: str | Path, precision: str = "f32", num_requests: int | None = None,
            every_output: bool = False, max_static_batches: int = MAX_STATIC_BATCHES) -> IRModel:
    """An IR compiled as the explain stage compiles it with its default config, or with ``every_output``
    (``max_static_batches=0``: every batch on the dynamic form)."""
    skips = () if every_output else STAGE_SKIPS
    return IRModel(path, precision=precision, num_requests=num_requests, skip_outputs=skips,
                   max_static_batches=max_static_batches)


def export_and_load(model: torch.nn.Module, size: int, directory: str | Path, explain: bool,
                    precision: str = "f32") -> IRModel:
    """Export ``model`` to an IR in ``directory`` (input size×size) and compile it (THROUGHPUT hint) as
    the explain stage does."""
    xml = export_ir(model, DataConfig(input_size=(size, size)), Path(directory), explain=explain)
    return load_ir(xml, precision=precision)


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


@contextlib.contextmanager
def swapped_explainer(model: torch.nn.Module, explainer: torch.nn.Module) -> Iterator[torch.nn.Module]:
    """``model`` with ``model.explainer`` replaced by ``explainer`` for the duration (e.g. a direct form)."""
    original = model.explainer
    model.explainer = explainer
    try:
        yield model
    finally:
        model.explainer = original


def calibrate_batchnorm_(model: torch.nn.Module, size: int, seed: int = 0) -> None:
    """Running BatchNorm statistics from a few random images, so a random network's features have a
    realistic scale (torchvision's initial statistics make mobilenet's features vanish) and maps are
    not degenerate. Leaves the model in eval mode."""
    batchnorms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for module in batchnorms:
        module.reset_running_stats()
        module.momentum = None
    model.train()
    with torch.no_grad():
        model(torch.from_numpy(random_images(4, size, seed)))
    model.eval()


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

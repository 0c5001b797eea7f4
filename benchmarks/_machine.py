"""The machine a benchmark runs on: torch's threads, and the header that records the command and machine.

On a loaded machine torch's OpenMP threads, spinning at every barrier by default, lose whole scheduler
time slices per operator (measured here: resnet18 batch 1, 2 threads, 337 ms spinning vs 69 ms passive).
Importing this module therefore re-executes the script once with ``OMP_WAIT_POLICY=PASSIVE`` unless the
variable is already set (set it to ACTIVE to measure the default behaviour); every benchmark script
imports it (its ``header`` at least). Importing it also applies the CLI's quiet setup (``otx_xai.quiet``):
third-party notices (torch.jit.trace's deprecation, Lightning's tips) stay out of the figures' output.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import platform
import shlex
import sys

import openvino
import torch

from otx_xai.quiet import quiet

if "OMP_WAIT_POLICY" not in os.environ:  # libgomp reads it when torch loads: restart with it set
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    os.execv(sys.executable, [sys.executable, *sys.argv])
quiet()


def set_torch_threads(threads: int) -> None:
    """Intra-op threads for torch (inter-op 1: every benchmark runs one model at a time)."""
    torch.set_num_threads(threads)
    with contextlib.suppress(RuntimeError):  # already set, or parallel work already started
        torch.set_num_interop_threads(1)


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

"""Peak resident memory: the process's own (/proc/self/status), and one benchmark mode's in a fresh process.

A peak-RSS child is ``python <script> --rss-child '<json spec>'``: the script loads one mode, runs it twice
per batch size (ascending) and prints [loaded RSS, peak after each batch] as JSON
(``_speed.maybe_run_rss_child``).
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def rss_mib() -> float:
    """Resident set size now (VmRSS), MiB."""
    return _status_kib("VmRSS") / 1024


def peak_rss_mib() -> float:
    """Peak resident set size of this process (VmHWM), MiB."""
    return _status_kib("VmHWM") / 1024


def reset_peak_rss() -> None:
    """Reset VmHWM to the current RSS (Linux: write 5 to /proc/self/clear_refs)."""
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")


RSS_CHILD_FLAG = "--rss-child"
MakeWork = Callable[[dict, np.ndarray], Callable[[], None]]  # (spec, images) → the mode's work on those images


@dataclass
class Memory:
    """Peak RSS of a process that ran one mode, and its rise above the RSS once everything was loaded."""

    peak_mib: float
    loaded_mib: float

    def __str__(self) -> str:
        return f"{self.peak_mib:.0f} (+{self.peak_mib - self.loaded_mib:.0f})"


def peaks_in_child(script: str, spec: dict, batches: Sequence[int]) -> dict[int, Memory]:
    """Run one mode (``spec``) in a fresh process over ``batches``: peak RSS by batch size.

    Batches run in ascending order and VmHWM never falls, so each peak also covers the smaller batches.
    """
    ordered = sorted(batches)
    argv = [sys.executable, script, RSS_CHILD_FLAG, json.dumps({**spec, "batches": ordered})]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode < 0:  # killed by a signal: OpenVINO's CPU plugin has, rarely, segfaulted here on masked-copy IRs
        print(f"peak RSS child of {spec.get('backend')} {spec.get('mode')} died by signal {-done.returncode}; "
              "running it once more", file=sys.stderr, flush=True)
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"peak RSS child failed: {shlex.join(argv)}\n{done.stderr[-3000:]}")
    loaded, *peaks = json.loads(done.stdout.strip().splitlines()[-1])
    return {batch: Memory(peak, loaded) for batch, peak in zip(ordered, peaks, strict=True)}

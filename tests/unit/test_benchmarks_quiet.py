"""Benchmarks run with the CLI's quiet setup: importing their shared ``_machine`` module applies
``otx_xai.quiet``, so a traced export prints no torch.jit deprecation into the figures' output."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TRACE = """
import sys
sys.path.insert(0, {benchmarks!r})
{setup}
import torch
torch.jit.trace(torch.nn.Linear(2, 2), torch.zeros(1, 2))
"""


def _stderr(setup: str) -> str:
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE", "PYTHONWARNINGS": "default"}
    code = TRACE.format(benchmarks=str(REPO / "benchmarks"), setup=setup)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          check=True).stderr


def test_a_benchmark_prints_no_jit_deprecation() -> None:
    assert "torch.jit.trace` is deprecated" in _stderr("")  # what a script printed before
    assert "deprecated" not in _stderr("import _machine")

"""What a user sees: each stage's own summary, no third-party notices, and progress bars only at a terminal."""

from __future__ import annotations

import fcntl
import os
import pty
import struct
import subprocess
import sys
import termios
from pathlib import Path

from conftest import BIN, CHILD_THREADS, TrainedRun, run_cli

NOTICES = ("litlogger", "litmodels", "💡", "LeafSpec", "torch.jit.trace", "TracerWarning", "FutureWarning",
           "DeprecationWarning", "GPU available", "TPU available")
BARS = ("img/s", "it/s", "%|")


def assert_quiet(text: str) -> None:
    for word in NOTICES:
        assert word not in text, text


def run_in_terminal(args: list[str], cwd: Path) -> tuple[int, str]:
    """Run ``otx`` with stdin, stdout and stderr on a pseudo-terminal of 120 columns; its whole output."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))  # tqdm draws nothing at width 0
    env = {**os.environ, "OMP_NUM_THREADS": CHILD_THREADS}
    process = subprocess.Popen([str(BIN / "otx"), *args], cwd=cwd, stdin=slave, stdout=slave, stderr=slave,
                               env=env, close_fds=True)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    return process.wait(timeout=600), b"".join(chunks).decode("utf-8", "replace")


def _explain_args(run: TrainedRun, work_dir: Path, checkpoint: Path) -> list[str]:
    return ["explain", "--config", str(run.recipe), "--checkpoint", str(checkpoint), "--data_root",
            str(run.data_root), "--work_dir", str(work_dir), "--dump", "True", "--data.batch_size", "2"]


def test_demo_prints_its_summary_and_nothing_else(tmp_path: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": CHILD_THREADS}
    done = subprocess.run([sys.executable, "-m", "otx_xai.demo", "--work_dir", str(tmp_path), "--epochs", "1",
                           "--images_per_class", "6", "--input_size", "64"],
                          capture_output=True, text=True, env=env, timeout=600, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # train, explain, export and the IR's explain: not one notice, not one bar
    lines = done.stdout.strip().splitlines()
    assert lines[0] == "=== otx_xai demo ===" and lines[-1].startswith("total time")
    assert_quiet(done.stdout)
    for bar in BARS:
        assert bar not in done.stdout


def test_cli_explain_off_a_terminal_has_no_notices_and_no_bar(trained_run: TrainedRun, tmp_path: Path) -> None:
    done = run_cli(_explain_args(trained_run, tmp_path / "ws", trained_run.checkpoint), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert done.stdout.startswith("explained ")
    for bar in BARS:
        assert bar not in done.stdout


def test_a_terminal_gets_images_per_second_bars(trained_run: TrainedRun, explain_ir: Path, tmp_path: Path) -> None:
    code, lightning_run = run_in_terminal(_explain_args(trained_run, tmp_path / "a", trained_run.checkpoint), tmp_path)
    assert code == 0, lightning_run
    assert "img/s=" in lightning_run and "Predicting" in lightning_run  # Lightning's bar, with our images/s
    code, ir_run = run_in_terminal(_explain_args(trained_run, tmp_path / "b", explain_ir), tmp_path)
    assert code == 0, ir_run
    assert "explain (IR)" in ir_run and "img/s]" in ir_run  # the IR loop's own bar counts images
    for output in (lightning_run, ir_run):
        assert_quiet(output)
        assert "explained " in output

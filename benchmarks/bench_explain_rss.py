"""Claim: an `otx explain --dump True` run keeps memory flat as the dataset grows (maps are streamed to disk).

Runs the real CLI in a fresh process for a small and a 10x larger folder of synthetic images and prints
each run's peak RSS (VmHWM) and images/s side by side.

    python benchmarks/bench_explain_rss.py            # 500 vs 5000 images
    python benchmarks/bench_explain_rss.py --quick    # 100 vs 1000 images
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from otx_xai import Engine
from otx_xai.data.shapes import draw_shapes_image, make_classification_shapes, write_image
from otx_xai.quiet import quiet

RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "classification" / "resnet18.yaml"
RUNNER = """
import sys
from otx_xai.cli import main
code = main(sys.argv[1:])
peak = next(l for l in open('/proc/self/status') if l.startswith('VmHWM')).split()[1]
print(f'PEAK_KB {peak}')
sys.exit(code)
"""


def _folder(root: Path, count: int) -> Path:
    rng = np.random.default_rng(count)
    for index in range(count):
        image, _ = draw_shapes_image(rng, [str(rng.choice(["circle", "square", "triangle"]))], 64, 64)
        write_image(root / f"img_{index:05d}.png", image)
    return root


def _checkpoint(base: Path) -> Path:
    data = make_classification_shapes(base / "train_data", 6, 64)
    engine = Engine(model=RECIPE, data_root=data, work_dir=base / "train")
    engine.recipe.data.input_size = (64, 64)
    engine.train(max_epochs=1)
    return Path(engine.checkpoint)


def _explain(base: Path, checkpoint: Path, images: Path) -> tuple[float, float]:
    """Peak RSS (MiB) and images/s of one CLI explain run in a fresh process."""
    args = ["explain", "--config", str(RECIPE), "--checkpoint", str(checkpoint), "--data_root", str(images),
            "--work_dir", str(base / f"ws_{images.name}"), "--data.input_size", "[64,64]", "--data.batch_size", "16",
            "--dump", "True", "--explain_config.postprocess", "True"]
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", RUNNER, *args], capture_output=True, text=True, check=True)
    elapsed = time.perf_counter() - start
    peak_kb = int(next(line for line in result.stdout.splitlines() if line.startswith("PEAK_KB")).split()[1])
    count = len(list(images.iterdir()))
    return peak_kb / 1024, count / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100 vs 1000 images")
    args = parser.parse_args()
    quiet()  # the CLI's quiet setup (the explain runs are `otx explain`, quiet already)
    small, large = (100, 1000) if args.quick else (500, 5000)
    base = Path(tempfile.mkdtemp(prefix="otx_xai_rss_"))
    try:
        checkpoint = _checkpoint(base)
        rows = []
        for count in (small, large):
            peak, speed = _explain(base, checkpoint, _folder(base / f"images_{count}", count))
            rows.append((count, peak, speed))
        print(f"\ncommand: python benchmarks/bench_explain_rss.py{' --quick' if args.quick else ''}")
        print("| images | peak RSS (MiB) | images/s (incl. startup) |\n|---:|---:|---:|")
        for count, peak, speed in rows:
            print(f"| {count} | {peak:.0f} | {speed:.1f} |")
        print(f"peak RSS ratio {large} vs {small} images: {rows[1][1] / rows[0][1]:.2f}")
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()

"""Claim: the quality of the perturbation and mask-optimization methods next to RISE and Recipro-CAM, on the
shapes test set (insertion AUC, deletion AUC, pointing game), with what each costs per image.

A resnet18 is trained on the synthetic shapes (``--per_class`` images per class at 112 px, input
``--input_size``, ``--epochs`` epochs). On its test subset, side by side in one run, each method explains the
predicted class on the checkpoint (torch: I-GOS needs gradients; every method runs the same model) through
``Engine.explain`` with the audit metrics: insertion / deletion AUC (``--steps`` steps, the model's softmax
score) and the pointing game on the ground-truth boxes. Occlusion and LIME are measured when they are on main.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from _machine import header, set_torch_threads
from _tables import markdown_table
from otx_xai import Engine, ExplainConfig, TargetExplainGroup
from otx_xai.audit.setup import AuditOptions
from otx_xai.data.shapes import make_classification_shapes
from otx_xai.engine.explain_options import MethodOptions
from otx_xai.explain.black_box.presets import BlackBoxConfig
from otx_xai.explain.registry import METHODS

RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "classification" / "resnet18.yaml"
CONFIG = ExplainConfig(target_explain_group=TargetExplainGroup.PREDICTIONS)
METHOD_ORDER = ("ReciproCAM", "RISE", "Occlusion", "LIME", "IGOS", "IGOSPlusPlus")


def train(work: Path, per_class: int, epochs: int, input_size: int) -> Path:
    data = make_classification_shapes(work / "data", per_class, 112, seed=0)
    engine = Engine(model=str(RECIPE), data_root=data, work_dir=work / "ws")
    engine.recipe.data.input_size = (input_size, input_size)
    engine.train(max_epochs=epochs, seed=0)
    return work / "ws"


def measure(work_dir: Path, method: str, settings: BlackBoxConfig, steps: int) -> tuple[list[object], int]:
    """One table row (method, ms / image, insertion, deletion, insertion − deletion, pointing game) and the
    number of images."""
    engine = Engine(work_dir=work_dir)
    start = time.perf_counter()
    results = engine.explain(CONFIG, method=MethodOptions(name=method, black_box=settings),
                             audit=AuditOptions(metrics=["insertion_deletion", "pointing_game"], steps=steps))
    elapsed = time.perf_counter() - start  # includes the audit's own inferences (2·(steps + 1) per image)
    ins = float(np.mean([r.metrics["insertion"] for r in results]))
    dele = float(np.mean([r.metrics["deletion"] for r in results]))
    hits = [hit for r in results for hit in r.pointing_game_hits]
    return [method, f"{1000 * elapsed / len(results):.0f}", f"{ins:.3f}", f"{dele:.3f}", f"{ins - dele:.3f}",
            f"{np.mean(hits):.2f}" if hits else "n/a"], len(results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="speed", choices=["speed", "balance", "quality"])
    parser.add_argument("--per_class", type=int, default=30)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--input_size", type=int, default=96)
    parser.add_argument("--steps", type=int, default=20, help="insertion/deletion steps")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--iterations", type=int, default=None, help="I-GOS / I-GOS++ iterations (preset's if unset)")
    parser.add_argument("--ig_steps", type=int, default=None, help="I-GOS / I-GOS++ integration steps")
    args = parser.parse_args()
    set_torch_threads(args.threads)
    known = {spec.name for spec in METHODS}
    measured = [m for m in METHOD_ORDER if m in known]
    missing = [m for m in METHOD_ORDER if m not in known]
    settings = BlackBoxConfig(preset=args.preset, iterations=args.iterations, ig_steps=args.ig_steps)
    with tempfile.TemporaryDirectory() as tmp:
        work_dir = train(Path(tmp), args.per_class, args.epochs, args.input_size)
        rows = []
        for method in measured:
            row, count = measure(work_dir, method, settings, args.steps)
            rows.append(row)
            print(" | ".join(map(str, row)), flush=True)
    print(header("Perturbation and mask-optimization methods: quality on the shapes test set (resnet18, torch)"))
    print(f"{count} test images, input {args.input_size}×{args.input_size}, {args.epochs} epochs on "
          f"{args.per_class} images per class, black-box preset {args.preset} (I-GOS / I-GOS++ "
          f"{args.iterations or 'preset'} iterations × {args.ig_steps or 'preset'} steps); each method explains "
          f"the predicted class; ms / image includes the audit's {2 * (args.steps + 1)} inferences per image"
          + (f"; not on main yet, not measured: {', '.join(missing)}" if missing else "") + "\n")
    print(markdown_table(["method", "ms / image", "insertion AUC ↑", "deletion AUC ↓", "insertion − deletion ↑",
                          "pointing game ↑"], rows))


if __name__ == "__main__":
    main()

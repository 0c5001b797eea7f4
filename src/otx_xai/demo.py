"""The demo: synthetic shapes → short training → explain the checkpoint → export → explain the IR.

Run it as ``tox -e demo`` (or ``python -m otx_xai.demo --work_dir DIR``). It prints where the
overlays are, the pointing-game hit rate and the mean |checkpoint − IR| map difference.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import numpy as np

from otx_xai import Engine, ExplainConfig, TargetExplainGroup
from otx_xai.data.shapes import make_classification_shapes
from otx_xai.explain.dump import SALIENCY_DIR
from otx_xai.explain.sink import ImageExplanation
from otx_xai.quiet import quiet

RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "classification" / "resnet18.yaml"


def _hit_rate(results: list[ImageExplanation]) -> float:
    hits = [hit for r in results for hit in r.pointing_game_hits]
    return float(np.mean(hits)) if hits else float("nan")


def _accuracy(results: list[ImageExplanation]) -> float:
    return float(np.mean([r.predicted[:1] == r.info.gt_labels[:1] for r in results]))


def map_difference(first: list[ImageExplanation], second: list[ImageExplanation]) -> float:
    """Mean absolute difference (grey levels) between the raw maps of two runs over the same images."""
    by_id = {r.info.image_id: r.raw_saliency_map.astype(np.int16) for r in second}
    diffs = [np.abs(r.raw_saliency_map.astype(np.int16) - by_id[r.info.image_id]).mean() for r in first]
    return float(np.mean(diffs))


def main(argv: list[str] | None = None) -> int:
    """Run the whole demo and print its summary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work_dir", default="demo-workspace", help="where data and runs go")
    parser.add_argument("--recipe", default=str(RECIPE), help="classification recipe YAML")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--images_per_class", type=int, default=40)
    parser.add_argument("--input_size", type=int, default=128)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    quiet()
    start = time.perf_counter()
    work_dir = Path(args.work_dir)
    data_root = make_classification_shapes(work_dir / "data" / "shapes", args.images_per_class, 144, seed=0)
    engine = Engine(model=args.recipe, data_root=data_root, work_dir=work_dir / "ws")
    engine.recipe.data.input_size = (args.input_size, args.input_size)
    metrics = engine.train(max_epochs=args.epochs)
    checkpoint = engine.checkpoint
    trained = time.perf_counter()
    config = ExplainConfig(target_explain_group=TargetExplainGroup.PREDICTIONS, postprocess=True)
    from_checkpoint = engine.explain(explain_config=config, dump=True)
    checkpoint_dir = engine.last_explain_dir
    xml = engine.export(explain=True)
    from_ir = engine.explain(checkpoint=xml, explain_config=config, dump=True)
    print("\n=== otx_xai demo ===")
    print(f"dataset            {data_root} ({args.images_per_class} images per class)")
    print(f"training           {args.epochs} epochs in {trained - start:.0f} s, "
          f"val/accuracy {metrics.get('val/accuracy', float('nan')):.3f}")
    print(f"checkpoint         {checkpoint}")
    print(f"test accuracy      {_accuracy(from_checkpoint):.3f} over {len(from_checkpoint)} images")
    print(f"overlays (ckpt)    {checkpoint_dir / SALIENCY_DIR}")
    print(f"overlays (IR)      {engine.last_explain_dir / SALIENCY_DIR}")
    print(f"exported IR        {xml}")
    print(f"pointing game      {_hit_rate(from_checkpoint):.3f} (checkpoint), {_hit_rate(from_ir):.3f} (IR)")
    print(f"|ckpt - IR| maps   {map_difference(from_checkpoint, from_ir):.3f} grey levels (mean, f32 IR)")
    print(f"total time         {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

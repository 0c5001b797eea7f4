"""Claim: the black-box methods' cost and quality next to Recipro-CAM, on the shapes test set.

A resnet18 is trained on the synthetic shapes (as ``tox -e demo`` does: 40 images per class at 144 px,
input 128, 6 epochs) and exported twice: with the XAI outputs (Recipro-CAM inside the IR) and without
(what the black-box methods run). On the test subset, side by side in one run, through the IR (f32,
THROUGHPUT hint, its infer requests in flight), each method explains the predicted class:

- inferences per image: images the model ran per explained image (counted at the runner);
- ms per image: wall time of explaining the whole test subset, divided by its images (after a warm-up
  that compiles the IR's static-batch copies);
- distance to limit: ms per image ÷ (inferences per image × the plain IR's best ms per inference, measured
  in the same run at its best batch and hint: ``_limit.py``);
- insertion / deletion AUC and their difference (``otx_xai.metrics.insertion_deletion_auc``, 30 steps,
  the IR's own softmax score), and the pointing game on the ground-truth boxes.

``--preset`` picks the black-box budget (speed / balance / quality); ``--quick`` is a smoke run. The
goal line checks the guide's claim that AISE needs fewer inferences than RISE.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from _counting import CountingRunner
from _limit import best_limit, distance
from _machine import header
from _tables import markdown_table
from otx_xai import Engine, ExplainConfig, TargetExplainGroup
from otx_xai.audit.evaluator import AuditEvaluator
from otx_xai.audit.scorers import IRScorer
from otx_xai.data.image_io import read_image_rgb
from otx_xai.data.shapes import make_classification_shapes
from otx_xai.engine.tasks import build_datamodule
from otx_xai.explain.black_box.presets import BlackBoxConfig
from otx_xai.explain.black_box.protocol import black_box_method
from otx_xai.explain.black_box.runners import ir_runner
from otx_xai.explain.pointing import ground_truth_hits
from otx_xai.openvino.inference import IRModel
from otx_xai.openvino.metadata import XAI_OUTPUTS

RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "classification" / "resnet18.yaml"
CONFIG = ExplainConfig(target_explain_group=TargetExplainGroup.PREDICTIONS)


def train(work: Path, per_class: int, epochs: int, input_size: int) -> tuple[Engine, Path, Path]:
    data = make_classification_shapes(work / "data", per_class, 144, seed=0)
    engine = Engine(model=str(RECIPE), data_root=data, work_dir=work / "ws")
    engine.recipe.data.input_size = (input_size, input_size)
    engine.train(max_epochs=epochs)
    return engine, engine.export(explain=True), engine.export(explain=False)


def explain_all(loader: list[dict], method: str, xai_ir: IRModel, plain: IRModel,
                settings: BlackBoxConfig) -> tuple[list[tuple[dict, np.ndarray]], float, float]:
    """(info, maps) per image, inferences per image and ms per image of one method."""
    maps, images = [], 0
    counter = CountingRunner(ir_runner(plain, settings.batch_size))
    algorithm = None if method == "ReciproCAM" else black_box_method("classification", method, settings)
    start = time.perf_counter()
    for batch in loader:
        pixels = np.asarray(batch["images"], dtype=np.float32)
        if algorithm is None:
            outputs = xai_ir.infer(pixels)
            counter.images += len(pixels)
        else:
            outputs = algorithm.explain(pixels, counter, plain.model_info, CONFIG)
        maps += list(zip(batch["infos"], outputs["saliency_map"], outputs["logits"].argmax(axis=1), strict=True))
        images += len(pixels)
    elapsed = time.perf_counter() - start
    return maps, counter.images / images, 1000.0 * elapsed / images


def warm_up(settings: BlackBoxConfig) -> BlackBoxConfig:
    """Few masks / evaluations, but RISE's mask batches of the same sizes as the measured run's."""
    chunk = settings.batch_size  # RISE streams its masked images in batches of this size
    return BlackBoxConfig(num_masks=chunk + settings.masks % chunk, num_cells=settings.num_cells, iterations=1,
                          kernel_widths=[0.25], batch_size=settings.batch_size)


def quality(maps: list, scorer: IRScorer, steps: int) -> dict[str, float]:
    evaluator = AuditEvaluator(["insertion_deletion"], scorer, steps)
    values, hits = [], []
    for info, class_maps, top in maps:
        values.append(evaluator.evaluate(read_image_rgb(info.source_path), class_maps, [], int(top)))
        hits += ground_truth_hits(class_maps, info)
    mean = {key: float(np.mean([v[key] for v in values])) for key in ("insertion", "deletion", "insertion_deletion")}
    return {**mean, "pointing_game": float(np.mean(hits)) if hits else float("nan")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="balance", choices=["speed", "balance", "quality"])
    parser.add_argument("--steps", type=int, default=30, help="insertion/deletion steps")
    parser.add_argument("--quick", action="store_true", help="smoke run: tiny data, few masks")
    args = parser.parse_args()
    per_class, epochs, size = (8, 1, 64) if args.quick else (40, 6, 128)
    settings = (BlackBoxConfig(preset=args.preset, num_masks=50, iterations=5) if args.quick
                else BlackBoxConfig(preset=args.preset))
    with tempfile.TemporaryDirectory() as tmp:
        engine, xai_xml, plain_xml = train(Path(tmp), per_class, epochs, size)
        xai_ir, plain = IRModel(xai_xml, skip_outputs={"feature_map"}), IRModel(plain_xml, skip_outputs=XAI_OUTPUTS)
        data = build_datamodule("classification", engine.data_root, plain.data_config(8))
        loader = list(data.predict_dataloader())
        scorer = IRScorer(plain, plain.data_config().preprocess(), multilabel=False)
        rows, cost = [], {}
        for method in ("ReciproCAM", "RISE", "AISE"):
            explain_all(loader, method, xai_ir, plain, warm_up(settings))  # compile the static-batch copies
            maps, inferences, ms = explain_all(loader, method, xai_ir, plain, settings)
            q = quality(maps, scorer, args.steps)
            cost[method] = inferences
            rows.append([method, f"{inferences:.0f}", f"{ms:.1f}", f"{q['insertion']:.3f}", f"{q['deletion']:.3f}",
                         f"{q['insertion_deletion']:.3f}", f"{q['pointing_game']:.2f}", (ms, inferences)])
        count = sum(len(batch["infos"]) for batch in loader)
        limit = best_limit(plain_xml, np.asarray(loader[0]["images"], dtype=np.float32))
        for row in rows:
            row[-1] = f"{distance(*row[-1], limit):.2f}"
    print(header("Black-box methods against Recipro-CAM (resnet18 IR, shapes test set)"))
    print(f"{count} test images, input {size}×{size}, preset {settings.preset} (RISE {settings.masks} masks on "
          f"{settings.num_cells}×{settings.num_cells} cells, AISE {settings.aise_iterations} evaluations × "
          f"{len(settings.aise_kernel_widths)} widths); each explains the predicted class; the plain IR's limit "
          f"(best of batches and hints, measured after the methods): {limit.describe()}\n")
    print(markdown_table(["method", "inferences / image", "ms / image", "insertion AUC", "deletion AUC",
                          "insertion − deletion", "pointing game", "distance to limit"], rows))
    fewer = cost["AISE"] < cost["RISE"]
    print(f"\nGoal (the guide's claim): AISE explains a class with fewer inferences than RISE: "
          f"{'met' if fewer else 'NOT met'} ({cost['AISE']:.0f} vs {cost['RISE']:.0f} per image)")


if __name__ == "__main__":
    main()

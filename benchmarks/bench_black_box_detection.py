"""Claim: per-box detection maps — the white-box per-box DetClassProbabilityMap next to D-RISE and AISE —
their cost and how often each box's map peaks inside its own box, on the COCO shapes test set.

An fcos_light is trained on ``make_coco_shapes`` (48 training images, input 128, score threshold 0.01) and
exported twice: with the XAI outputs (``box_saliency_map`` inside the IR) and without (what D-RISE and
AISE run). On the test subset, side by side in one run, through the IR (f32, THROUGHPUT hint, its infer
requests in flight), each method explains every detection scoring above ``--box_thr``:

- inferences per image: images the model ran per explained image (counted at the runner);
- ms per image: wall time over the whole test subset, divided by its images (after a warm-up that
  compiles the IR's static-batch copies);
- distance to limit: ms per image ÷ (inferences per image × the plain IR's best ms per inference, measured
  in the same run at its best batch and hint: ``_limit.py``);
- own box: the share of box maps whose hottest pixel lies inside the box itself; other box: the share
  whose peak lies outside it but inside another box of the image with IoU < 0.3 (boxes with no such other
  box are not counted); pointing game: the class maps' peaks on the ground-truth boxes.

``--preset`` picks the black-box budget; ``--quick`` is a smoke run.
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
from otx_xai.data.shapes import make_coco_shapes
from otx_xai.engine.tasks import build_datamodule
from otx_xai.explain.batch_readers import build_prediction_batch
from otx_xai.explain.black_box.detection_score import iou_matrix
from otx_xai.explain.black_box.presets import BlackBoxConfig
from otx_xai.explain.black_box.protocol import black_box_method
from otx_xai.explain.black_box.runners import ir_runner
from otx_xai.explain.box_maps import peak_in_box
from otx_xai.explain.pointing import ground_truth_hits
from otx_xai.openvino.inference import IRModel
from otx_xai.openvino.metadata import BOX_SALIENCY_MAP, XAI_OUTPUTS

RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "detection" / "fcos_light.yaml"
WHITE_BOX = "DetBoxProbabilityMap"


def train(work: Path, train_images: int, epochs: int) -> tuple[Engine, Path, Path]:
    data = make_coco_shapes(work / "data", {"train": train_images, "val": 4, "test": 8}, image_size=112, seed=0)
    engine = Engine(model=str(RECIPE), data_root=data, work_dir=work / "ws")
    engine.recipe.data.input_size = (128, 128)
    engine.recipe.data.batch_size = 4
    engine.recipe.model.init_args["score_thresh"] = 0.01
    engine.train(max_epochs=epochs)
    return engine, engine.export(explain=True), engine.export(explain=False)


def explain_all(loader: list[dict], method: str, xai_ir: IRModel, plain: IRModel, settings: BlackBoxConfig,
                config: ExplainConfig) -> tuple[list, float, float]:
    """PredictionBatches, inferences per image and ms per image of one method."""
    batches, images = [], 0
    counter = CountingRunner(ir_runner(plain, settings.batch_size))
    algorithm = None if method == WHITE_BOX else black_box_method("detection", method, settings)
    start = time.perf_counter()
    for batch in loader:
        pixels = np.asarray(batch["images"], dtype=np.float32)
        if algorithm is None:
            outputs = xai_ir.infer(pixels)
            counter.images += len(pixels)
        else:
            outputs = algorithm.explain(pixels, counter, plain.model_info, config)
        batches.append(build_prediction_batch(outputs, batch["infos"], plain.model_info))
        images += len(pixels)
    elapsed = time.perf_counter() - start
    return batches, counter.images / images, 1000.0 * elapsed / images


def quality(batches: list, threshold: float) -> dict[str, float]:
    own = other = counted = 0
    hits: list[bool] = []
    for batch in batches:
        for index, info in enumerate(batch.infos):
            hits += ground_truth_hits(batch.saliency_map[index], info)
            keep = batch.box_scores[index] > threshold
            boxes, maps = batch.boxes[index][keep], batch.box_saliency_map[index][keep]
            for k, (box, saliency) in enumerate(zip(boxes, maps, strict=True)):
                others = [o for j, o in enumerate(boxes) if j != k and iou_matrix(box[None], o[None])[0, 0] < 0.3]
                if not others:
                    continue
                counted += 1
                inside = peak_in_box(saliency, box, info)
                own += inside
                other += not inside and any(peak_in_box(saliency, o, info) for o in others)
    return {"own": own / max(counted, 1), "other": other / max(counted, 1), "counted": counted,
            "pointing_game": float(np.mean(hits)) if hits else float("nan")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="speed", choices=["speed", "balance", "quality"])
    parser.add_argument("--box_thr", type=float, default=0.3, help="boxes scoring above this are explained")
    parser.add_argument("--quick", action="store_true", help="smoke run: tiny data, few masks")
    args = parser.parse_args()
    train_images, epochs = (12, 2) if args.quick else (48, 8)
    settings = (BlackBoxConfig(preset=args.preset, num_masks=32, iterations=3) if args.quick
                else BlackBoxConfig(preset=args.preset))
    config = ExplainConfig(target_explain_group=TargetExplainGroup.PREDICTIONS,
                           predicted_maps_conf_thr=args.box_thr)
    warm = BlackBoxConfig(num_masks=4 * settings.batch_size, iterations=1, kernel_widths=[1.0],
                          batch_size=settings.batch_size)
    with tempfile.TemporaryDirectory() as tmp:
        engine, xai_xml, plain_xml = train(Path(tmp), train_images, epochs)
        xai_ir = IRModel(xai_xml, skip_outputs={"feature_map"})
        plain = IRModel(plain_xml, skip_outputs={*XAI_OUTPUTS, BOX_SALIENCY_MAP})
        data = build_datamodule("detection", engine.data_root, plain.data_config(4))
        loader = list(data.predict_dataloader())
        rows = []
        for method in (WHITE_BOX, "DRISE", "AISE"):
            explain_all(loader, method, xai_ir, plain, warm, config)  # compile the static-batch copies
            batches, inferences, ms = explain_all(loader, method, xai_ir, plain, settings, config)
            q = quality(batches, args.box_thr)
            boxes = sum(int((b.box_scores[i] > args.box_thr).sum()) for b in batches for i in range(len(b)))
            rows.append([method, f"{inferences:.0f}", f"{ms:.1f}", boxes, f"{q['own']:.2f}", f"{q['other']:.2f}",
                         q["counted"], f"{q['pointing_game']:.2f}", (ms, inferences)])
        count = sum(len(batch["infos"]) for batch in loader)
        limit = best_limit(plain_xml, np.asarray(loader[0]["images"], dtype=np.float32))
        for row in rows:
            row[-1] = f"{distance(*row[-1], limit):.2f}"
    aise = black_box_method("detection", "AISE", settings)
    print(header("Per-box detection maps: white-box vs D-RISE vs AISE (fcos_light IR, COCO shapes test set)"))
    print(f"{count} test images, input 128×128, boxes scoring above {args.box_thr}, preset {settings.preset} "
          f"(D-RISE {settings.masks} masks on {settings.num_cells}×{settings.num_cells} cells; AISE "
          f"{aise.iterations} evaluations × {len(aise.box_widths)} widths per box); the plain IR's limit "
          f"(best of batches and hints, measured after the methods): {limit.describe()}\n")
    print(markdown_table(["method", "inferences / image", "ms / image", "boxes explained", "own box",
                          "other box", "boxes with another", "pointing game (class maps)", "distance to limit"],
                         rows))


if __name__ == "__main__":
    main()

"""Claim: a single-stage detector explains (DetClassProbabilityMap) at <= 1.05x the cost of predict.

The light detector (fcos_light: FCOS over ResNet-18 + a 64-channel FPN, at 256) and a torchvision one
(ssdlite320_mobilenet_v3_large, at 320), batch 1 and 8, in torch (inference_mode) and on the IR (f32,
THROUGHPUT hint, all requests in flight), side by side:

- predict: ``model(images)`` (boxes and labels, NMS included) / the IR exported without explain;
- explain: ``model.forward_explain(images)`` (the same plus feature_vector, saliency_map, feature_map,
  box_saliency_map)
  / the IR exported with explain.

Also checks that the IR's maps match torch's (max grey-level difference) and that detections agree.
"""

from __future__ import annotations

import functools
import tempfile

import numpy as np
import torch

from _inputs import calibrate_batchnorm_, max_grey_diff, random_images
from _ir import export_and_load, load_ir
from _machine import header, set_torch_threads
from _modes import ir_speed_modes, ir_work, torch_speed_modes, torch_work
from _speed import (
    SpeedCase,
    SpeedRow,
    goal_verdict,
    maybe_run_rss_child,
    noise_line,
    resolve,
    run_speed_case,
    speed_arguments,
    speed_table,
)
from _tables import markdown_table
from _timing import Work
from otx_xai.models.detection import SingleStageDetector
from otx_xai.openvino.inference import IRModel

LABELS = [f"class_{i}" for i in range(10)]
SIZES = {"fcos_light": 256, "ssdlite320_mobilenet_v3_large": 320, "retinanet_resnet50_fpn": 512,
         "fcos_resnet50_fpn": 512}
GOAL = 1.05


@functools.cache
def build(architecture: str) -> SingleStageDetector:
    """A random detector with calibrated BatchNorm statistics (so features and maps are not degenerate)."""
    torch.manual_seed(0)
    model = SingleStageDetector(LABELS, architecture=architecture)
    calibrate_batchnorm_(model, SIZES[architecture])
    return model


def torch_modes(model: SingleStageDetector) -> dict:
    return {"predict": model, "explain": model.forward_explain}


def make_work(spec: dict, images: np.ndarray) -> Work:
    """A peak-RSS child's work: one mode of one backend, rebuilt from ``spec``."""
    if spec["backend"] == "IR":
        ir = load_ir(spec["xml"][spec["mode"]])
        return ir_work(ir, images, ir.num_requests)
    return torch_work(torch_modes(build(spec["model"]))[spec["mode"]], images, 1)


def agreement(architecture: str, model: SingleStageDetector, irs: dict[str, IRModel], batch: int) -> list[object]:
    """IR vs torch: max grey-level map difference; box rows equal between predict and explain outputs."""
    images = random_images(batch, SIZES[architecture])
    with torch.inference_mode():
        plain, full = model(torch.from_numpy(images)), model.forward_explain(torch.from_numpy(images))
    ir_full = irs["explain"].infer(images)
    maps = full["saliency_map"].numpy()
    same_boxes = torch.equal(plain["bboxes"], full["bboxes"]) and torch.equal(plain["labels"], full["labels"])
    detections = int((full["labels"] >= 0).sum())
    return [architecture, batch, f"{maps.std():.1f}", max_grey_diff(maps, ir_full["saliency_map"]),
            detections, "yes" if same_boxes else "NO"]


def main() -> None:
    maybe_run_rss_child(make_work)
    parser = speed_arguments(__doc__.splitlines()[0], rounds=9, quick_rounds=3)
    parser.add_argument("--models", nargs="+", default=["fcos_light", "ssdlite320_mobilenet_v3_large"],
                        choices=sorted(SIZES))
    args = parser.parse_args()
    rounds, budget, rss = resolve(args)
    set_torch_threads(args.threads)
    print(header("Single-stage detector: explain vs predict (DetClassProbabilityMap)"))
    print("Rows as they finish. img/s = median over rounds; explain/predict = median of per-round per-image "
          "cost ratios; peak RSS = VmHWM of a fresh process running only that mode (+ its rise once loaded). "
          f"Input sizes: {', '.join(f'{name} {SIZES[name]}' for name in args.models)} (--size is ignored).\n")
    print(speed_table([], with_header=True, modes=["predict", "explain", "null"]), flush=True)
    rows: list[SpeedRow] = []
    checks = []
    with tempfile.TemporaryDirectory() as workdir:
        for architecture in args.models:
            model, size = build(architecture), SIZES[architecture]
            irs = {mode: export_and_load(model, size, f"{workdir}/{architecture}_{mode}", explain=mode == "explain")
                   for mode in ("predict", "explain")}
            case = SpeedCase(
                name=architecture,
                modes={"torch": torch_speed_modes(torch_modes(model)), "IR": ir_speed_modes(irs)},
                spec={"model": architecture, "size": size, "xml": {mode: str(ir.path) for mode, ir in irs.items()}},
            )
            rows += run_speed_case(case, __file__, args.batches, rounds, budget, rss)
            checks += [agreement(architecture, model, irs, batch) for batch in args.batches]

    print("\n" + speed_table(rows, with_header=True))
    print("\nMaps and detections (torch explain forward vs its IR; predict vs explain boxes):\n")
    print(markdown_table(["model", "batch", "map std (grey)", "IR vs torch max Δ grey", "detections",
                          "predict boxes == explain boxes"], checks))
    worst = max(row.timing.ratio("explain", "predict") for row in rows)
    print("\n" + noise_line(rows))
    print(f"Goal explain/predict <= {GOAL}: worst {worst:.3f} -> {goal_verdict(worst, GOAL, rows)} "
          f"(rounds={rounds}, {budget})")


if __name__ == "__main__":
    main()

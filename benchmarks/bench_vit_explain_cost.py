"""Claim: a DeiT-tiny-sized ViT classifier explains (fast exact ViT Recipro-CAM) at <= 1.2x predict.

A DeiT-tiny-like ``VisionTransformerClassifier`` at 224 (16×16 patches, 12 layers, 3 heads, width 192),
batch 1 and 8, in torch (inference_mode) and on the IR (f32, THROUGHPUT hint, all requests in flight):

- predict: ``model(images)`` / the IR exported without explain;
- explain: ``model.forward_explain(images)`` with ``ViTReciproCAM``, the fast exact form;
- direct: the peers' algorithm, ``ViTReciproCAMDirect``: 196 masked copies of the 197 tokens through
  the real last block (one unit per round — one call, or one batch per IR request: it is slow).

Also checks on the benchmark inputs that fast and direct maps agree to within 1 grey level.
"""

from __future__ import annotations

import functools
import tempfile

import numpy as np
import torch

from _inputs import max_grey_diff, random_images, swapped_explainer
from _ir import export_and_load, load_ir
from _machine import header, set_torch_threads
from _modes import ir_speed_modes, ir_work, torch_speed_modes, torch_work
from _speed import (
    SpeedCase,
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
from otx_xai.explain.methods.forward.vit_recipro_cam import ViTReciproCAMDirect
from otx_xai.models.vit import VisionTransformerClassifier
from otx_xai.openvino.inference import IRModel

LABELS = [f"class_{i}" for i in range(10)]
GOAL = 1.2


@functools.cache
def build(size: int) -> VisionTransformerClassifier:
    """DeiT-tiny-like, random; torchvision zero-initializes the head, so it gets random weights (maps not flat)."""
    torch.manual_seed(0)
    model = VisionTransformerClassifier(LABELS, image_size=size).eval()
    with torch.no_grad():
        torch.nn.init.normal_(model.vit.heads.head.weight, std=0.1)
        torch.nn.init.normal_(model.vit.heads.head.bias, std=0.1)
    return model


def direct_explainer(model: VisionTransformerClassifier) -> ViTReciproCAMDirect:
    return ViTReciproCAMDirect.from_vit(model.vit, score_fn=model._scores, use_gaussian=True)


def torch_modes(model: VisionTransformerClassifier) -> dict:
    direct_cam = direct_explainer(model)

    def direct(images: torch.Tensor) -> dict[str, torch.Tensor]:
        with swapped_explainer(model, direct_cam):
            return model.forward_explain(images)

    return {"predict": model, "explain": model.forward_explain, "direct": direct}


def export_modes(model: VisionTransformerClassifier, size: int, workdir: str) -> dict[str, IRModel]:
    irs = {"predict": export_and_load(model, size, f"{workdir}/predict", explain=False),
           "explain": export_and_load(model, size, f"{workdir}/explain", explain=True)}
    with swapped_explainer(model, direct_explainer(model)):
        irs["direct"] = export_and_load(model, size, f"{workdir}/direct", explain=True)
    return irs


def make_work(spec: dict, images: np.ndarray) -> Work:
    """A peak-RSS child's work: one mode of one backend, rebuilt from ``spec``."""
    if spec["backend"] == "IR":
        ir = load_ir(spec["xml"][spec["mode"]])
        return ir_work(ir, images, ir.num_requests)
    return torch_work(torch_modes(build(spec["size"]))[spec["mode"]], images, 1)


def map_differences(model: VisionTransformerClassifier, irs: dict[str, IRModel], batch: int,
                    size: int) -> list[object]:
    """Max grey-level differences fast vs direct (torch, IR) and IR fast vs torch direct, and the maps' spread."""
    images = random_images(batch, size)
    fns = torch_modes(model)
    with torch.inference_mode():
        fast, direct = (fns[mode](torch.from_numpy(images))["saliency_map"].numpy() for mode in ("explain", "direct"))
    ir_fast, ir_direct = (irs[mode].infer(images)["saliency_map"] for mode in ("explain", "direct"))
    return [batch, f"{fast.std():.1f}", max_grey_diff(fast, direct), max_grey_diff(ir_fast, ir_direct),
            max_grey_diff(ir_fast, direct)]


def main() -> None:
    maybe_run_rss_child(make_work)
    args = speed_arguments(__doc__.splitlines()[0], rounds=7, quick_rounds=3).parse_args()
    rounds, budget, rss = resolve(args)
    set_torch_threads(args.threads)
    print(header("ViT classifier (DeiT-tiny-like): explain vs predict (ViT Recipro-CAM)"))
    print("Rows as they finish. img/s = median over rounds; X/predict = median of per-round per-image cost "
          "ratios; peak RSS = VmHWM of a fresh process running only that mode (+ its rise once loaded).\n")
    model = build(args.size)
    with tempfile.TemporaryDirectory() as workdir:
        irs = export_modes(model, args.size, workdir)
        case = SpeedCase(
            name="DeiT-tiny-like",
            modes={"torch": torch_speed_modes(torch_modes(model)),
                   "IR": ir_speed_modes(irs, slow=frozenset({"direct"}))},
            spec={"size": args.size, "xml": {mode: str(ir.path) for mode, ir in irs.items()}},
            slow=frozenset({"direct"}),
        )
        print(speed_table([], with_header=True, modes=list(case.modes["torch"])), flush=True)
        rows = run_speed_case(case, __file__, args.batches, rounds, budget, rss)
        checks = [map_differences(model, irs, batch, args.size) for batch in args.batches]

    print("\n" + speed_table(rows, with_header=True))
    print("\nMaps, fast vs direct (max |Δ| in grey levels; goal <= 1):\n")
    print(markdown_table(["batch", "map std (grey)", "torch fast vs direct", "IR fast vs IR direct",
                          "IR fast vs torch direct"], checks))
    worst = max(row.timing.ratio("explain", "predict") for row in rows)
    worst_diff = max(max(check[2:]) for check in checks)
    print("\n" + noise_line(rows))
    print(f"Goal explain/predict <= {GOAL}: worst {worst:.3f} -> {goal_verdict(worst, GOAL, rows)}; "
          f"maps within 1 grey level: worst {worst_diff} -> {'met' if worst_diff <= 1 else 'NOT met'} "
          f"(rounds={rounds}, {budget}, direct: one unit per round)")


if __name__ == "__main__":
    main()

"""Claim: an IR runs faster on copies compiled with the batch fixed than on its dynamic batch, same outputs.

``IRModel`` compiles one static-shape copy per batch size in use (``openvino/compiled_forms.py``); with
``max_static_batches=0`` it runs everything on the exported dynamic batch. For classifiers
(``backbone[:head]`` as in ``bench_cnn_explain_cost.py``, at 224) and detectors (as in
``bench_detector_explain_cost.py``), batch 1 and 8, on the IR only (f32, THROUGHPUT hint, all requests in
flight), side by side, with each mode's peak RSS in a fresh process (what the static copies cost):

- predict / explain: the IRs exported without / with explain, as ``otx explain`` compiles them (static);
- predict_dynamic / explain_dynamic: the same IRs with ``max_static_batches=0``.

Also checks that the static and dynamic forms agree (max grey-level difference of the maps, max
absolute difference of the first output: logits or boxes).
"""

from __future__ import annotations

import tempfile

import numpy as np

from _inputs import max_grey_diff, random_images
from _ir import export_and_load, load_ir
from _machine import header
from _modes import NULL, ir_speed_modes, ir_work
from _speed import (
    SpeedCase,
    SpeedRow,
    maybe_run_rss_child,
    noise_line,
    resolve,
    run_speed_case,
    speed_arguments,
    speed_table,
)
from _tables import markdown_table
from _timing import Work
from bench_cnn_explain_cost import build as build_classifier
from bench_detector_explain_cost import SIZES as DETECTOR_SIZES
from bench_detector_explain_cost import build as build_detector
from otx_xai.openvino.inference import IRModel

DEFAULT_MODELS = ["mobilenet_v3_small:linear", "resnet18", "ssdlite320_mobilenet_v3_large", "fcos_light"]
MODES = ["predict", "explain", "predict_dynamic", "explain_dynamic", NULL]


def build(name: str) -> tuple[object, int]:
    """The benchmark model of that name and its input size."""
    if name in DETECTOR_SIZES:
        return build_detector(name), DETECTOR_SIZES[name]
    return build_classifier(name, 224), 224


DYNAMIC = "_dynamic"


def dynamic(ir: IRModel) -> IRModel:
    """The same IR compiled the same way (``load_ir``), every batch on the dynamic form."""
    return load_ir(ir.path, precision=ir.precision, max_static_batches=0)


def make_work(spec: dict, images: np.ndarray) -> Work:
    """A peak-RSS child's work: one mode's IR, on static copies or (``*_dynamic``) the dynamic batch."""
    mode = spec["mode"]
    ir = load_ir(spec["xml"][mode.removesuffix(DYNAMIC)], **({"max_static_batches": 0} if DYNAMIC in mode else {}))
    return ir_work(ir, images, ir.num_requests)


def agreement(name: str, irs: dict[str, IRModel], batch: int, size: int) -> list[object]:
    """Static vs dynamic explain IR: max grey-level map difference, max |Δ| of the first output."""
    images = random_images(batch, size)
    static, dyn = irs["explain"].infer(images), irs["explain_dynamic"].infer(images)
    first = irs["explain"].output_names[0]
    difference = float(np.abs(static[first].astype(np.float64) - dyn[first].astype(np.float64)).max())
    return [name, batch, max_grey_diff(static["saliency_map"], dyn["saliency_map"]), first, f"{difference:.1e}"]


def gains(row: SpeedRow) -> list[object]:
    """Per-image cost dynamic / static, for predict and explain, and explain/predict on each form."""
    timing = row.timing
    return [row.name, row.batch, f"{timing.ratio('predict_dynamic', 'predict'):.3f}",
            f"{timing.ratio('explain_dynamic', 'explain'):.3f}", f"{timing.ratio('explain', 'predict'):.3f}",
            f"{timing.ratio('explain_dynamic', 'predict_dynamic'):.3f}"]


def main() -> None:
    maybe_run_rss_child(make_work)
    parser = speed_arguments(__doc__.splitlines()[0], rounds=9, quick_rounds=3)
    parser.add_argument("--models", nargs="+", default=DEFAULT_MODELS,
                        help="classifiers backbone[:head] and detectors by architecture")
    args = parser.parse_args()
    rounds, budget, rss = resolve(args)
    print(header("IR: static-shape copies per batch size vs the dynamic batch"))
    print("Rows as they finish. img/s = median over rounds; X/predict = median of per-round per-image cost "
          "ratios (predict: the static form, as `otx explain` runs it); peak RSS = VmHWM of a fresh process "
          "running only that mode over the batch sizes in turn (+ its rise once the IR is loaded, static copies "
          "compiled on the way). --size is ignored.\n")
    print(speed_table([], with_header=True, modes=MODES), flush=True)
    rows: list[SpeedRow] = []
    checks = []
    with tempfile.TemporaryDirectory() as workdir:
        for name in args.models:
            model, size = build(name)
            irs = {mode: export_and_load(model, size, f"{workdir}/{name.replace(':', '_')}_{mode}",
                                         explain=mode == "explain") for mode in ("predict", "explain")}
            spec = {"model": name, "size": size, "xml": {mode: str(ir.path) for mode, ir in irs.items()}}
            irs |= {f"{mode}{DYNAMIC}": dynamic(ir) for mode, ir in irs.items()}
            case = SpeedCase(name=name, modes={"IR": ir_speed_modes(irs)}, spec=spec)
            rows += run_speed_case(case, __file__, args.batches, rounds, budget, rss)
            checks += [agreement(name, irs, batch, size) for batch in args.batches]
    print("\n" + speed_table(rows, with_header=True))
    print("\nDynamic / static per-image cost, and explain/predict on each form:\n")
    print(markdown_table(["model", "batch", "predict dynamic/static", "explain dynamic/static",
                          "explain/predict static", "explain/predict dynamic"], [gains(row) for row in rows]))
    print("\nStatic vs dynamic outputs (explain IR):\n")
    print(markdown_table(["model", "batch", "saliency_map max Δ grey", "first output", "its max |Δ|"], checks))
    print("\n" + noise_line(rows))
    slower = [row for row in rows if row.timing.ratio("predict_dynamic", "predict") < 1]
    worst_maps = max(check[2] for check in checks)
    print(f"Static forms faster than the dynamic batch in {len(rows) - len(slower)} of {len(rows)} rows; maps "
          f"within {worst_maps} grey level(s) (rounds={rounds}, {budget})")


if __name__ == "__main__":
    main()

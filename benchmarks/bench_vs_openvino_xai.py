"""Claim: otx_xai explains an IR faster than openvino_xai 1.1.0 on openvino_xai's own ground.

Both tools explain the same plain IR (torchvision MobileNetV2 at 224, random weights with BatchNorm
statistics calibrated on random images so the logits are not degenerate; converted by
``ov.convert_model``, no download) on the same preprocessed inputs (8 synthetic shapes photos at 224,
ImageNet normalization), at the same inference precision (``--precision``, f32 by default), each in a
persistent worker process of its own environment: otx_xai in the project's pinned env (OpenVINO 2026.4),
openvino_xai in the ``bench-ovxai`` tox env (OpenVINO 2024.4, which reads the IR OpenVINO 2026.4 wrote).
One worker works at a time; the rounds interleave the two (alternating which goes first), and a ratio is
the median over rounds of the per-round ratio, so both sides of it saw the same load. Cases:

- white-box Recipro-CAM, batch 1: each image in its own call (otx_xai ``IRModel.infer``, compiled as
  ``otx explain`` compiles it: LATENCY hint for one image; openvino_xai ``Explainer`` with Recipro-CAM
  inserted by itself, all class maps, no resize or colour map);
- white-box, batch 8: otx_xai streams batches of 8 (THROUGHPUT hint, two batches in flight, as
  ``otx explain --data.batch_size 8`` does), per image; openvino_xai's scaling step fixes its batch at
  one image, so its batch-8 figure is its one-image-per-call time;
- RISE, 1000 masks on 4×4 cells, probability 0.5 (openvino_xai's speed preset; its masks upsample
  bicubically, otx_xai's bilinearly: the same cost), explaining the top class of one image per round;
- AISE, 20 evaluations per kernel width, widths 0.1 / 0.175 / 0.25 (openvino_xai's speed preset), the
  kept-minus-deleted objective in both (two inferences per evaluation), the top class;
- AISE detection: openvino_xai's ``AISEDetection`` runs any detector IR whose outputs a postprocess turns
  into boxes, scores and labels; here otx_xai's fcos_light (random weights, 128 px, score threshold 0,
  exported plain by otx_xai) on the same photos at 128, the two highest-scoring boxes of one image, speed
  preset in both (20 evaluations × kernel widths 1/7, 1/4, 1 of the box, one inference each).

"distance to the limit" (``_limit.py``): ms per image ÷ (inferences per image × the plain IR's best ms per
inference, measured by each worker on its own OpenVINO in the same round at its best batch and hint).

Run from a fresh clone: ``tox -e bench-ovxai`` (creates both environments), or, with the bench-ovxai env
already made: ``python benchmarks/bench_vs_openvino_xai.py --ovxai_python .tox/bench-ovxai/bin/python``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import openvino as ov
import torch
import torchvision

from _inputs import calibrate_batchnorm_
from _machine import header
from _tables import markdown_table
from otx_xai.data.datamodule import DataConfig
from otx_xai.data.image_io import read_image_rgb
from otx_xai.data.shapes import SHAPE_CLASSES, make_classification_shapes
from otx_xai.models.detection import SingleStageDetector
from otx_xai.openvino.export import export_ir
from otx_xai.quiet import quiet

HERE = Path(__file__).resolve().parent
SIZE = 224
DETECTOR_SIZE = 128
MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32) * 255
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32) * 255
GOALS = {"white-box b1": ("ratio", 1.0), "white-box b8": ("ratio", 0.8), "RISE": ("ratio", 0.5)}
DISTANCE_GOAL = 1.15  # RISE and AISE within 1.15× of the limit


class Worker:
    """A persistent worker process answering one JSON request per line."""

    def __init__(self, name: str, python: str, script: Path, *args: str) -> None:
        env = {**os.environ, "TQDM_DISABLE": "1", "PYTHONWARNINGS": "ignore"}
        self.name = name
        self.process = subprocess.Popen([python, str(script), *args], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True, env=env)
        self.read()

    def read(self) -> dict[str, Any]:
        line = self.process.stdout.readline() if self.process.stdout else ""
        if not line:
            raise RuntimeError(f"the {self.name} worker stopped (see its stderr above)")
        return json.loads(line)

    def ask(self, case: str, **request: Any) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps({"case": case, **request}) + "\n")
        self.process.stdin.flush()
        return self.read()

    def close(self) -> None:
        if self.process.poll() is None and self.process.stdin is not None:
            self.process.stdin.write(json.dumps({"case": "quit"}) + "\n")
            self.process.stdin.close()
            self.process.wait(timeout=60)


def make_ir(directory: Path) -> Path:
    """MobileNetV2 at 224, random weights, calibrated BatchNorm, as a plain f32 IR with a dynamic batch."""
    torch.manual_seed(0)
    model = torchvision.models.mobilenet_v2(num_classes=1000)
    calibrate_batchnorm_(model, SIZE)
    converted = ov.convert_model(model, example_input=torch.zeros(1, 3, SIZE, SIZE), input=[(-1, 3, SIZE, SIZE)])
    xml = directory / "mobilenet_v2.xml"
    ov.save_model(converted, str(xml), compress_to_fp16=False)
    return xml


def make_detector_ir(directory: Path) -> Path:
    """otx_xai's fcos_light (random weights, every box kept) exported plain at ``DETECTOR_SIZE``."""
    torch.manual_seed(0)
    model = SingleStageDetector(list(SHAPE_CLASSES), score_thresh=0.0, detections_per_img=10).eval()
    return export_ir(model, DataConfig(input_size=(DETECTOR_SIZE, DETECTOR_SIZE)), directory / "detector",
                     explain=False)


def make_inputs(directory: Path, size: int, count: int = 8) -> Path:
    """``count`` synthetic shapes photos resized to ``size`` and normalized (ImageNet mean and std)."""
    root = directory / "shapes"
    if not root.is_dir():
        make_classification_shapes(root, images_per_class=-(-count // 3), image_size=SIZE)
    paths = sorted(root.rglob("*.png"))[:count]
    images = []
    for path in paths:
        rgb = read_image_rgb(path).astype(np.float32)
        rgb = np.asarray(torch.nn.functional.interpolate(torch.from_numpy(rgb).permute(2, 0, 1)[None],
                                                         size=(size, size), mode="bilinear")[0])
        images.append((rgb - MEAN[:, None, None]) / STD[:, None, None])
    npy = directory / f"inputs_{size}.npy"
    np.save(npy, np.stack(images).astype(np.float32))
    return npy


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def run_rounds(otx: Worker, ovxai: Worker, rounds: int, images: int) -> dict[str, list[dict[str, Any]]]:
    """Per case and round: both workers' answers (and the limit each measured in that round)."""
    results: dict[str, list[dict[str, Any]]] = {}
    for index in range(rounds):
        order = [("otx", otx), ("ovxai", ovxai)]
        if index % 2:
            order.reverse()
        round_results: dict[str, dict[str, Any]] = {}
        for case, request in (("limit", {}), ("white-box b1", {"images": images}), ("white-box b8", {"batch": 8}),
                              ("RISE", {"image": index % images}), ("AISE", {"image": index % images}),
                              ("detector limit", {"detector": True}),
                              ("AISE detection", {"image": index % images})):
            name = {"white-box b1": "white_box", "white-box b8": "white_box", "detector limit": "limit",
                    "AISE detection": "AISE_detection"}.get(case, case)
            answers = {}
            for who, worker in order:
                if who == "ovxai" and case == "white-box b8":
                    answers[who] = round_results["white-box b1"]["ovxai"]  # one image per call: its b1 time
                    continue
                answers[who] = worker.ask(name, **request)
            round_results[case] = answers
        for case, answers in round_results.items():
            results.setdefault(case, []).append(answers)
        print(f"round {index + 1}/{rounds}: " + ", ".join(
            f"{case} {a['otx']['ms']:.2f}/{a['ovxai']['ms']:.2f} ms" for case, a in round_results.items())
            + f" · {uptime()}", file=sys.stderr, flush=True)
    return results


def median(values: list[float]) -> float:
    return float(statistics.median(values))


def table(results: dict[str, list[dict[str, Any]]]) -> tuple[str, list[str]]:
    rows, verdicts = [], []
    for case in ("white-box b1", "white-box b8", "RISE", "AISE", "AISE detection"):
        per_round = results[case]
        limits = results["detector limit" if case == "AISE detection" else "limit"]
        otx_ms = median([r["otx"]["ms"] for r in per_round])
        ovxai_ms = median([r["ovxai"]["ms"] for r in per_round])
        ratio = median([r["otx"]["ms"] / r["ovxai"]["ms"] for r in per_round])
        inferences = {who: median([r[who]["inferences"] for r in per_round]) for who in ("otx", "ovxai")}
        distances = {who: median([r[who]["ms"] / (r[who]["inferences"] * limit[who]["ms"])
                                  for r, limit in zip(per_round, limits, strict=True)]) for who in ("otx", "ovxai")}
        rows.append([case, f"{otx_ms:.2f}", f"{ovxai_ms:.2f}", f"**{ratio:.3f}**", f"{inferences['otx']:.0f}",
                     f"{inferences['ovxai']:.0f}", f"{distances['otx']:.3f}", f"{distances['ovxai']:.3f}"])
        if case in GOALS:
            bound = GOALS[case][1]
            verdicts.append(f"{case}: otx_xai / openvino_xai {ratio:.3f} ≤ {bound}: "
                            f"{'met' if ratio <= bound else 'NOT met'}")
        if case in ("RISE", "AISE", "AISE detection"):
            verdicts.append(f"{case}: distance to the limit {distances['otx']:.3f} ≤ {DISTANCE_GOAL}: "
                            f"{'met' if distances['otx'] <= DISTANCE_GOAL else 'NOT met'}")
    headers = ["case", "otx_xai ms / image", "openvino_xai ms / image", "otx_xai / openvino_xai",
               "otx_xai inferences / image", "openvino_xai inferences / image", "otx_xai distance to limit",
               "openvino_xai distance to limit"]
    return markdown_table(headers, rows), verdicts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ovxai_python", default=str(HERE.parent / ".tox" / "bench-ovxai" / "bin" / "python"),
                        help="the python of the env holding openvino_xai 1.1.0 (tox -e bench-ovxai makes it)")
    parser.add_argument("--precision", default="f32", choices=["f32", "bf16"], help="inference precision of both")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="2 rounds: a check that everything runs")
    args = parser.parse_args()
    quiet()
    rounds, images = (2, 8) if args.quick else (args.rounds, 8)
    print(header("otx_xai against openvino_xai 1.1.0 (MobileNetV2 IR at 224)"))
    print(f"start: `{uptime()}`\n")
    with tempfile.TemporaryDirectory() as tmp:
        xml, inputs = make_ir(Path(tmp)), make_inputs(Path(tmp), SIZE)
        detector, detector_inputs = make_detector_ir(Path(tmp)), make_inputs(Path(tmp), DETECTOR_SIZE)
        paths = [str(xml), str(inputs), args.precision, str(detector), str(detector_inputs)]
        otx = Worker("otx_xai", sys.executable, HERE / "_otx_worker.py", *paths)
        ovxai = Worker("openvino_xai", args.ovxai_python, HERE / "_ovxai_worker.py", *paths)
        try:
            tops = otx.ask("top"), ovxai.ask("top")
            results = run_rounds(otx, ovxai, rounds, images)
        finally:
            otx.close()
            ovxai.close()
    agree = sum(a == b for a, b in zip(tops[0]["top"], tops[1]["top"], strict=True))
    last = results["white-box b1"][-1]
    correlation = float(np.corrcoef(last["otx"]["map"], last["ovxai"]["map"])[0, 1])
    print(f"OpenVINO {tops[0]['version']} (otx_xai) and {tops[1]['version']} (openvino_xai), precision "
          f"{args.precision}, {rounds} rounds; top-1 class of the {images} inputs: the same in {agree}/{images}; "
          f"Recipro-CAM map of the last image's top class, otx_xai vs openvino_xai: Pearson {correlation:.3f}; "
          f"otx_xai compiled hints {last['otx'].get('hints')}\n")
    for model, limits in (("MobileNetV2", results["limit"]), ("fcos_light", results["detector limit"])):
        for who, runtime in (("otx", "otx_xai's OpenVINO"), ("ovxai", "openvino_xai's OpenVINO")):
            best = min(limits, key=lambda limit: limit[who]["ms"])[who]
            print(f"- {model} limit on {runtime}: median {median([limit[who]['ms'] for limit in limits]):.3f} "
                  f"ms per inference over rounds (best round: batch {best['batch']}, {best['hint']})")
    rows, verdicts = table(results)
    print("\n" + rows + "\n")
    print(f"end: `{uptime()}`\n")
    for verdict in verdicts:
        print(f"Goal {verdict}")
    if os.getloadavg()[0] > (os.cpu_count() or 1):
        print("\nThe load average exceeded the core count during this run: other work shared the cores, so "
              "absolute times are inflated and ratios noisier than on a quiet machine.")


if __name__ == "__main__":
    main()

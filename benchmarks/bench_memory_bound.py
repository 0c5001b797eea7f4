"""Claim: Recipro-CAM's direct form keeps explain's extra peak memory under a configurable bound.

The direct (masked-copy) form is what a CNN whose neck is not global average pooling needs: every one of
the h·w single-position copies of the feature map runs through neck + head. Built unbounded, that is
B·h·w copies at once: memory grows with the batch. ``ReciproCAM(max_chunk=M)`` (ExplainConfig.
max_explain_chunk) evaluates them a chunk of positions at a time, max(1, M // B) positions of all B images.

Model: the resnet18 backbone (224 → 512×7×7) with a non-GAP neck (1×1 conv 512→256, ReLU, then average
pooling) and a linear head. For batch 1, 8 and 32, and each bound, a fresh process runs predict and then
explain (backbone + Recipro-CAM direct form) and reports both peaks (VmHWM, reset between the two).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import torch
import torchvision
from torch import Tensor, nn

from _common import (
    calibrate_batchnorm_,
    header,
    markdown_table,
    peak_rss_mib,
    random_images,
    reset_peak_rss,
    rss_mib,
    set_torch_threads,
)
from otx_xai.explain.methods.recipro_cam import ReciproCAM

UNBOUNDED = 10**9
CHILD_FLAG = "--child"


class NonGapClassifier(nn.Module):
    """resnet18 backbone → 1×1 conv neck + ReLU → average pooling → linear head: no GAP fast form."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        resnet = torchvision.models.resnet18(weights=None)
        self.backbone = nn.Sequential(*list(resnet.children())[:-2])  # up to layer4: (B, 512, h/32, w/32)
        self.neck = nn.Sequential(nn.Conv2d(resnet.fc.in_features, 256, 1), nn.ReLU())
        self.head = nn.Linear(256, num_classes)

    def head_on_feature_map(self, feature_map: Tensor) -> Tensor:
        return self.head(self.neck(feature_map).mean(dim=(2, 3)))

    def forward(self, images: Tensor) -> Tensor:
        return self.head_on_feature_map(self.backbone(images))


def child(batch: int, max_chunk: int, size: int) -> dict[str, float]:
    """One configuration in this (fresh) process: peak RSS of predict, then of explain."""
    torch.manual_seed(0)
    model = NonGapClassifier()
    calibrate_batchnorm_(model, size)
    explainer = ReciproCAM(model.head_on_feature_map, lambda logits: logits.softmax(-1), head_on_pooled=None,
                           max_chunk=max_chunk)
    images = torch.from_numpy(random_images(batch, size))
    reset_peak_rss()
    with torch.inference_mode():
        model(images)
        predict_peak = peak_rss_mib()
        reset_peak_rss()
        start = time.perf_counter()
        feature_map = model.backbone(images)
        backbone_peak = peak_rss_mib()
        before = rss_mib()
        reset_peak_rss()
        maps = explainer(feature_map)
        seconds = time.perf_counter() - start
        explainer_peak = peak_rss_mib()
    assert maps.shape[0] == batch
    return {"predict": predict_peak, "explain": max(backbone_peak, explainer_peak),
            "working": explainer_peak - before, "seconds": seconds,
            "copy_mib": feature_map[0].numel() * 4 / 2**20, "positions": feature_map.shape[2] * feature_map.shape[3]}


def run_child(batch: int, max_chunk: int, size: int, threads: int) -> dict[str, float]:
    argv = [sys.executable, __file__, CHILD_FLAG, json.dumps([batch, max_chunk, size, threads])]
    # glibc then hands every block of 128 KiB or more straight back to the OS when torch frees it, so the
    # child's RSS follows its live tensors instead of the allocator's cached arenas.
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "131072"}
    done = subprocess.run(argv, capture_output=True, text=True, check=False, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"child failed: {' '.join(argv)}\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    if CHILD_FLAG in sys.argv:
        batch, max_chunk, size, threads = json.loads(sys.argv[sys.argv.index(CHILD_FLAG) + 1])
        set_torch_threads(threads)
        print(json.dumps(child(batch, max_chunk, size)))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="batches 1 and 8 only")
    parser.add_argument("--batches", nargs="+", type=int, default=None, help="default 1 8 32 (quick: 1 8)")
    parser.add_argument("--bounds", nargs="+", type=int, default=[256, 16], help="max_chunk values besides unbounded")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    batches = args.batches or ([1, 8] if args.quick else [1, 8, 32])
    set_torch_threads(args.threads)
    print(header("Recipro-CAM direct form: explain peak memory vs batch size, bounded and unbounded"))
    print("Each row is a fresh process (MALLOC_MMAP_THRESHOLD_=131072, so RSS follows live tensors). "
          "copies/chunk = masked copies built at once = B·min(h·w, max(1, M // B)); Recipro-CAM working = "
          "peak RSS during the Recipro-CAM call − RSS before it; explain − predict = difference of the whole "
          "passes' peaks; explain s = backbone + Recipro-CAM.\n")
    headers = ["max_chunk M", "batch", "copies/chunk", "copies MiB", "Recipro-CAM working MiB",
               "predict peak RSS MiB", "explain peak RSS MiB", "explain − predict MiB", "explain s"]
    print(markdown_table(headers, []), flush=True)
    rows = []
    for bound in [UNBOUNDED, *args.bounds]:
        for batch in batches:
            result = run_child(batch, bound, args.size, args.threads)
            positions = int(result["positions"])
            copies = batch * min(positions, max(1, bound // batch))
            rows.append(["unbounded" if bound == UNBOUNDED else bound, batch, copies,
                         f"{copies * result['copy_mib']:.0f}", f"{result['working']:.0f}", f"{result['predict']:.0f}",
                         f"{result['explain']:.0f}", f"{result['explain'] - result['predict']:.0f}",
                         f"{result['seconds']:.2f}"])
            print(markdown_table(headers, rows[-1:]).splitlines()[-1], flush=True)
    print("\n" + markdown_table(headers, rows))
    print("\nBounded, the working memory is set by M, not B, as long as B <= M (a chunk holds at least one "
          "position of every image, so B > M builds B copies); unbounded it grows linearly with B.")


if __name__ == "__main__":
    main()

"""Claim: Recipro-CAM (direct form) and ViT Recipro-CAM (fast form) keep explain's extra peak memory
under a configurable bound.

``--family cnn`` (default): the direct (masked-copy) form is what a CNN whose neck is not global average
pooling needs: every one of the h·w single-position copies of the feature map runs through neck + head.
Built unbounded, that is B·h·w copies at once: memory grows with the batch. ``ReciproCAM(max_chunk=M)``
(ExplainConfig.max_explain_chunk) evaluates them a chunk of positions at a time, max(1, M // B)
positions of all B images (with B > M, one position of M images at a time). Model: the resnet18
backbone (224 → 512×7×7) with a non-GAP neck (1×1 conv 512→256, ReLU, then average pooling) and a
linear head.

``--family vit``: the fast exact ViT Recipro-CAM on a DeiT-tiny-sized ViT at 224 (N = 196 patch copies
per image, never built; its working memory is the kept keys/values of every copy), max(1, M // N) images
at a time.

For batch 1, 8 and 32, and each bound, a fresh process runs predict and then explain (backbone + the
explainer) and reports both peaks (VmHWM, reset between the two).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable

import torch
import torchvision
from torch import Tensor, nn

from _inputs import calibrate_batchnorm_, random_images
from _machine import header, set_torch_threads
from _rss import peak_rss_mib, reset_peak_rss, rss_mib
from _tables import markdown_table
from otx_xai.explain.methods.forward.recipro_cam import ReciproCAM
from otx_xai.explain.methods.forward.vit_recipro_cam import ViTReciproCAM
from otx_xai.models.vit import VisionTransformerClassifier

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


Parts = tuple[nn.Module, Callable[[Tensor], Tensor], nn.Module]  # predict model, image → explainer input, explainer


def cnn_parts(size: int, max_chunk: int) -> Parts:
    model = NonGapClassifier()
    calibrate_batchnorm_(model, size)
    explainer = ReciproCAM(model.head_on_feature_map, lambda logits, dim=-1: logits.softmax(dim), head_on_pooled=None,
                           max_chunk=max_chunk)
    return model, model.backbone, explainer


def vit_parts(size: int, max_chunk: int) -> Parts:
    model = VisionTransformerClassifier([f"class_{i}" for i in range(10)], image_size=size).eval()
    explainer = ViTReciproCAM.from_vit(model.vit, model._scores, max_chunk=max_chunk)
    return model, model.tokens_before_last_block, explainer


def child(family: str, batch: int, max_chunk: int, size: int) -> dict[str, float]:
    """One configuration in this (fresh) process: peak RSS of predict, then of explain."""
    torch.manual_seed(0)
    model, features, explainer = (cnn_parts if family == "cnn" else vit_parts)(size, max_chunk)
    images = torch.from_numpy(random_images(batch, size))
    reset_peak_rss()
    with torch.inference_mode():
        model(images)
        predict_peak = peak_rss_mib()
        reset_peak_rss()
        start = time.perf_counter()
        explained = features(images)
        backbone_peak = peak_rss_mib()
        before = rss_mib()
        reset_peak_rss()
        maps = explainer(explained)
        seconds = time.perf_counter() - start
        explainer_peak = peak_rss_mib()
    assert maps.shape[0] == batch
    positions = maps.shape[2] * maps.shape[3]
    copy_mib = explained[0].numel() * 4 / 2**20 if family == "cnn" else 0.0  # the fast ViT form builds no copy
    return {"predict": predict_peak, "explain": max(backbone_peak, explainer_peak),
            "working": explainer_peak - before, "seconds": seconds, "copy_mib": copy_mib, "positions": positions}


def copies_per_chunk(family: str, batch: int, bound: int, positions: int) -> int:
    """Masked copies evaluated at once: positions of every image, or of M images when B > M (CNN); whole
    images (ViT)."""
    if family == "cnn":
        images = min(batch, max(1, bound))
        return images * min(positions, max(1, bound // images))
    return positions * min(batch, max(1, bound // positions))


def run_child(family: str, batch: int, max_chunk: int, size: int, threads: int) -> dict[str, float]:
    argv = [sys.executable, __file__, CHILD_FLAG, json.dumps([family, batch, max_chunk, size, threads])]
    # glibc then hands every block of 128 KiB or more straight back to the OS when torch frees it, so the
    # child's RSS follows its live tensors instead of the allocator's cached arenas.
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "131072"}
    done = subprocess.run(argv, capture_output=True, text=True, check=False, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"child failed: {' '.join(argv)}\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    if CHILD_FLAG in sys.argv:
        family, batch, max_chunk, size, threads = json.loads(sys.argv[sys.argv.index(CHILD_FLAG) + 1])
        set_torch_threads(threads)
        print(json.dumps(child(family, batch, max_chunk, size)))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", choices=["cnn", "vit"], default="cnn",
                        help="cnn: Recipro-CAM direct form; vit: fast ViT Recipro-CAM")
    parser.add_argument("--quick", action="store_true", help="batches 1 and 8 only")
    parser.add_argument("--batches", nargs="+", type=int, default=None, help="default 1 8 32 (quick: 1 8)")
    parser.add_argument("--bounds", nargs="+", type=int, default=[256, 16], help="max_chunk values besides unbounded")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    batches = args.batches or ([1, 8] if args.quick else [1, 8, 32])
    set_torch_threads(args.threads)
    title = "Recipro-CAM direct form" if args.family == "cnn" else "ViT Recipro-CAM fast form"
    print(header(f"{title}: explain peak memory vs batch size, bounded and unbounded"))
    print("Each row is a fresh process (MALLOC_MMAP_THRESHOLD_=131072, so RSS follows live tensors). "
          "copies/chunk = masked copies evaluated at once (CNN: b·min(h·w, max(1, M // b)) with b = min(B, M); ViT: "
          "N·min(B, max(1, M // N))); copies MiB = what building them costs (the fast ViT form builds none); "
          "working = peak RSS during the explainer call − RSS before it; explain − predict = difference of the "
          "whole passes' peaks; explain s = backbone + explainer.\n")
    headers = ["max_chunk M", "batch", "copies/chunk", "copies MiB", "explainer working MiB",
               "predict peak RSS MiB", "explain peak RSS MiB", "explain − predict MiB", "explain s"]
    print(markdown_table(headers, []), flush=True)
    rows = []
    for bound in [UNBOUNDED, *args.bounds]:
        for batch in batches:
            result = run_child(args.family, batch, bound, args.size, args.threads)
            copies = copies_per_chunk(args.family, batch, bound, int(result["positions"]))
            rows.append(["unbounded" if bound == UNBOUNDED else bound, batch, copies,
                         f"{copies * result['copy_mib']:.0f}", f"{result['working']:.0f}", f"{result['predict']:.0f}",
                         f"{result['explain']:.0f}", f"{result['explain'] - result['predict']:.0f}",
                         f"{result['seconds']:.2f}"])
            print(markdown_table(headers, rows[-1:]).splitlines()[-1], flush=True)
    print("\n" + markdown_table(headers, rows))
    if args.family == "cnn":
        print("\nBounded, the working memory is set by M, not B (with B > M a chunk holds one position of M "
              "images); unbounded it grows linearly with B.")
    else:
        print("\nBounded, the working memory is set by M (at least one whole image, N copies, per chunk), not "
              "B; unbounded it grows linearly with B.")


if __name__ == "__main__":
    main()

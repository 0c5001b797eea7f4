"""ViT Recipro-CAM (Byun & Lee, 2023): gradient-free saliency for Vision Transformer classifiers.

Take the tokens entering the last encoder block, (B, 1+N, D) with N = g·g patch tokens. Copy k keeps
the CLS token and patch token k (or, with ``use_gaussian``, the 3×3 Gaussian-weighted neighbourhood of k)
and zeroes every other patch token; the last block + final norm + head re-run on each copy, and the
score of class c on copy k is the saliency of position k for class c.

Two implementations of the same algorithm:

- ``ViTReciproCAMDirect`` builds the N masked copies and runs the real last block on them (reference).
- ``ViTReciproCAM`` (the one models use) is exact but never builds a copy. The head reads only the CLS
  output, so only the CLS row of the last block's attention matters; a copy holds at most 9 distinct
  non-zero patch tokens plus m identical zero tokens, and m identical keys/values weigh in the softmax
  like one key whose logit is raised by log(m). That turns N re-runs of an (1+N)-token block into a
  handful of batched matrix products over 1 + 9 + 1 keys per copy. Keys and values of the scaled kept
  patches come from the per-patch projections of ``vit_cls_row.block_inputs``, which the model's own
  prediction computes anyway.

Both assume the block is in eval mode (dropout inactive), as it is when a model explains.
"""

from __future__ import annotations

import math
from abc import abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Self

import torch
from torch import Tensor, nn

from otx_xai.explain.methods.base import ExplainAlgo
from otx_xai.explain.methods.forward.vit_cls_row import (
    BlockInputs,
    attention_weights,
    block_inputs,
    check_encoder_block,
    finish_block,
)
from otx_xai.tracing import frozen_size

ScoreFn = Callable[[Tensor], Tensor]

GAUSSIAN_KERNEL: tuple[tuple[float, ...], ...] = (
    (1 / 16, 1 / 8, 1 / 16),
    (1 / 8, 1 / 4, 1 / 8),
    (1 / 16, 1 / 8, 1 / 16),
)
ONE_HOT_KERNEL: tuple[tuple[float, ...], ...] = ((1.0,),)


def grid_size(num_patches: int) -> int:
    """Side g of the square patch grid holding ``num_patches`` tokens."""
    side = math.isqrt(num_patches)
    if side * side != num_patches:
        raise ValueError(f"{num_patches} patch tokens do not form a square grid")
    return side


def patch_grid(tokens: Tensor) -> Tensor:
    """Tokens (B, 1+N, D) as the patch grid (B, D, g, g), the CLS token left out."""
    patches = tokens[:, 1:].transpose(1, 2)
    grid = grid_size(frozen_size(patches, -1)[0])
    return patches.unflatten(-1, (grid, grid))


@lru_cache(maxsize=32)
def _mask_rows(grid: int, use_gaussian: bool) -> tuple[tuple[tuple[int, float], ...], ...]:
    """Per copy k, the (patch index, weight) pairs it keeps, kernel centred on k, truncated at borders."""
    kernel = GAUSSIAN_KERNEL if use_gaussian else ONE_HOT_KERNEL
    radius = len(kernel) // 2
    rows = []
    for row in range(grid):
        for col in range(grid):
            kept = []
            for dy, kernel_row in enumerate(kernel):
                for dx, weight in enumerate(kernel_row):
                    r, c = row + dy - radius, col + dx - radius
                    if 0 <= r < grid and 0 <= c < grid and weight != 0:
                        kept.append((r * grid + c, weight))
            rows.append(tuple(kept))
    return tuple(rows)


def copy_masks(grid: int, use_gaussian: bool, dtype: torch.dtype = torch.float32) -> Tensor:
    """Keep-masks (N, N): row k weighs the N patch tokens of copy k (one-hot or 3×3 Gaussian)."""
    rows = _mask_rows(grid, use_gaussian)
    masks = [[0.0] * len(rows) for _ in rows]
    for k, kept in enumerate(rows):
        for index, weight in kept:
            masks[k][index] = weight
    return torch.tensor(masks, dtype=dtype)


@dataclass(frozen=True)
class KeptSlots:
    """The distinct tokens of every masked copy, as constant tables (S = most tokens a copy keeps).

    ``scales`` (W,): the distinct non-zero mask weights; patch j scaled by ``scales[i]`` is token i·N + j.
    ``token_index`` (N, S): which scaled token fills slot s of copy k (0 in an unused slot).
    ``patch_index`` (N, S): the patch j of that token (``token_index`` mod N).
    ``log_count`` (N, S + 2): log multiplicity of the keys [CLS, slot 1..S, zero token] of copy k;
    -inf drops a key: an unused slot, or the zero token of a copy that keeps every patch.
    """

    scales: Tensor
    token_index: Tensor
    patch_index: Tensor
    log_count: Tensor


@lru_cache(maxsize=32)
def _slot_tables(
    grid: int, use_gaussian: bool
) -> tuple[tuple[float, ...], list[list[int]], list[list[float]]]:
    """Python form of ``KeptSlots``: scales, token indices (N × S), key multiplicities (N × (S + 2))."""
    rows = _mask_rows(grid, use_gaussian)
    num_patches = len(rows)
    scales = tuple(sorted({weight for kept in rows for _, weight in kept}))
    slots = max(len(kept) for kept in rows)
    token_index, count = [], []
    for kept in rows:
        unused = slots - len(kept)
        token_index.append(
            [scales.index(weight) * num_patches + index for index, weight in kept] + [0] * unused
        )
        count.append([1.0] + [1.0] * len(kept) + [0.0] * unused + [float(num_patches - len(kept))])
    return scales, token_index, count


@lru_cache(maxsize=32)
def kept_slots(grid: int, use_gaussian: bool, dtype: torch.dtype, device: torch.device) -> KeptSlots:
    """The ``KeptSlots`` of a ``grid``×``grid`` patch grid, from the same masks as ``copy_masks``.

    Cached (read-only tables; building them costs ~1 % of a ViT-tiny predict). Made outside inference
    mode, so that autograd may save them whatever mode the first caller ran in.
    """
    with torch.inference_mode(False):
        return _kept_slot_tensors(grid, use_gaussian, dtype, device)


def _kept_slot_tensors(grid: int, use_gaussian: bool, dtype: torch.dtype, device: torch.device) -> KeptSlots:
    scales, token_index, count = _slot_tables(grid, use_gaussian)
    token_index_tensor = torch.tensor(token_index, dtype=torch.long, device=device)
    return KeptSlots(
        scales=torch.tensor(scales, dtype=dtype, device=device),
        token_index=token_index_tensor,
        patch_index=token_index_tensor % (grid * grid),
        log_count=torch.tensor(count, dtype=torch.float64).log().to(dtype=dtype, device=device),
    )


class _ViTReciproCAMBase(ExplainAlgo):
    """What both forms share: the model parts they re-run, the score function and the mask kind.

    The parts are kept in a plain tuple, not registered as submodules, so the explainer adds no
    duplicate entries to its model's state dict.
    """

    name = "ViTReciproCAM"

    def __init__(
        self,
        last_block: nn.Module,
        final_norm: nn.Module,
        head: nn.Module,
        score_fn: ScoreFn,
        use_gaussian: bool = True,
    ) -> None:
        super().__init__()
        self._parts = (last_block, final_norm, head)
        self._score_fn = score_fn
        self.use_gaussian = use_gaussian

    @classmethod
    def from_vit(cls, vit: nn.Module, score_fn: ScoreFn, **kwargs: Any) -> Self:
        """Explain a torchvision ``VisionTransformer``: its last block, ``encoder.ln`` and ``heads``."""
        return cls(vit.encoder.layers[-1], vit.encoder.ln, vit.heads, score_fn, **kwargs)

    def saliency(self, tokens: Tensor, inputs: BlockInputs | None = None) -> Tensor:
        """Saliency (B, K, g, g) from the tokens entering the last block, (B, 1+N, D); ``inputs``: their
        ``block_inputs``, when the caller has them already (the fast form then reads only those)."""
        grid = grid_size(frozen_size(tokens, 1)[0] - 1)  # the token count: a constant of an IR's input size
        scores = self._copy_scores(tokens, grid, inputs)  # (B, N, K)
        return scores.transpose(1, 2).unflatten(2, (grid, grid))

    @abstractmethod
    def _copy_scores(self, tokens: Tensor, grid: int, inputs: BlockInputs | None) -> Tensor:
        """Class scores (B, N, K) of the N masked copies of every image."""

    def _classify_cls(self, cls_out: Tensor) -> Tensor:
        """Scores of CLS outputs of the last block, (..., D) → (..., K): final norm, head, score_fn."""
        _, final_norm, head = self._parts
        return self._score_fn(head(final_norm(cls_out)))


class ViTReciproCAMDirect(_ViTReciproCAMBase):
    """The reference form: materialize every masked copy and run the real last block on it.

    Args:
        last_block, final_norm, head: the model's last encoder block, final LayerNorm and head.
        score_fn: softmax for multiclass, sigmoid for multilabel.
        use_gaussian: keep a 3×3 Gaussian-weighted neighbourhood instead of a single token.
        max_chunk: most masked copies (sequences of 1+N tokens) run through the block at once.
    """

    def __init__(
        self,
        last_block: nn.Module,
        final_norm: nn.Module,
        head: nn.Module,
        score_fn: ScoreFn,
        use_gaussian: bool = True,
        max_chunk: int = 1024,
    ) -> None:
        super().__init__(last_block, final_norm, head, score_fn, use_gaussian)
        self.max_chunk = max_chunk

    def _copy_scores(self, tokens: Tensor, grid: int, inputs: BlockInputs | None) -> Tensor:
        batch, length, _ = tokens.shape
        num_patches = length - 1
        masks = copy_masks(grid, self.use_gaussian, tokens.dtype).to(tokens.device)
        image = torch.arange(batch, device=tokens.device).repeat_interleave(num_patches)
        position = torch.arange(num_patches, device=tokens.device).repeat(batch)
        chunks = zip(image.split(self.max_chunk), position.split(self.max_chunk), strict=True)
        scores = [self._chunk_scores(tokens[i], masks[k]) for i, k in chunks]
        return torch.cat(scores).unflatten(0, (batch, num_patches))

    def _chunk_scores(self, tokens: Tensor, masks: Tensor) -> Tensor:
        """Scores (n, K) of n copies: tokens (n, 1+N, D) of their images, masks (n, N) of their positions."""
        last_block = self._parts[0]
        copies = torch.cat([tokens[:, :1], tokens[:, 1:] * masks.unsqueeze(-1)], dim=1)
        return self._classify_cls(last_block(copies)[:, 0])


class ViTReciproCAM(_ViTReciproCAMBase):
    """The fast exact form: only the CLS row of the last block, over the distinct tokens of each copy.

    Supports the blocks ``vit_cls_row`` does. Args as ``ViTReciproCAMDirect``. No copy is built; the
    working memory is the (n, H, N, S, d) kept values of n images (S ≤ 9) and their copies' MLP rows,
    and ``max_chunk`` bounds it: images are taken n = max(1, max_chunk // N) at a time (the N copies of
    an image stay together).
    """

    def __init__(
        self,
        last_block: nn.Module,
        final_norm: nn.Module,
        head: nn.Module,
        score_fn: ScoreFn,
        use_gaussian: bool = True,
        max_chunk: int = 4096,
    ) -> None:
        check_encoder_block(last_block)
        super().__init__(last_block, final_norm, head, score_fn, use_gaussian)
        self.max_chunk = max_chunk

    def _copy_scores(self, tokens: Tensor, grid: int, inputs: BlockInputs | None) -> Tensor:
        block = self._parts[0]
        slots = kept_slots(grid, self.use_gaussian, tokens.dtype, tokens.device)
        images_per_chunk = max(1, self.max_chunk // (grid * grid))
        starts = range(0, tokens.shape[0], images_per_chunk)

        def chunk_inputs(start: int) -> BlockInputs:  # the caller's projections, else this chunk's own
            stop = start + images_per_chunk
            if inputs is None:
                return block_inputs(block, tokens[start:stop])
            return inputs if len(starts) == 1 else inputs.images(start, stop)

        if len(starts) == 1:  # always so when traced with one image
            return self._image_chunk_scores(chunk_inputs(0), slots)
        return torch.cat([self._image_chunk_scores(chunk_inputs(start), slots) for start in starts])

    def _image_chunk_scores(self, inputs: BlockInputs, slots: KeptSlots) -> Tensor:
        """Scores (n, N, K) of every copy of n images."""
        block = self._parts[0]
        mixed = _attend_cls(block, inputs, slots)  # (n, H, N, d)
        return self._classify_cls(finish_block(block, inputs.cls_token, mixed))


def _attend_cls(block: nn.Module, inputs: BlockInputs, slots: KeptSlots) -> Tensor:
    """The CLS query's attention in each of the N masked copies, mixed values heads first (B, H, N, d).

    Copy k's keys are [CLS, its kept slots, the zero token]; a kept patch j scaled by w has key
    r_w·K̃_j + K(0) and value r_w·Ṽ_j + V(0). A key present m times enters the softmax once with its
    logit raised by log m, -inf when absent (``slots.log_count``).
    """
    num_patches = slots.token_index.shape[0]
    query, (patch_keys, patch_values) = inputs.query, inputs.patch_kv
    rescale = inputs.rescale(slots.scales).flatten(1)  # (B, W·N): r of scaled token i·N + j

    def per_slot(x: Tensor, dim: int, index: Tensor) -> Tensor:  # dim indexed by ``index`` (N, S) → N, S
        return x.index_select(dim, index.flatten()).unflatten(dim, (num_patches, -1))

    def per_copy(x: Tensor) -> Tensor:  # (B, H, 1, 1), the same in every copy → (B, H, N, 1)
        return x.expand(-1, -1, num_patches, 1)

    zero_logit = query @ inputs.zero_kv[0].transpose(-1, -2)  # (B, H, 1, 1): q·K(0), in every patch key too
    patch_logit = (query @ patch_keys.transpose(-1, -2)).squeeze(2)  # q·K̃: (B, H, N)
    scaled_logit = rescale.unsqueeze(1) * patch_logit.repeat(1, 1, rescale.shape[1] // num_patches)
    logits = torch.cat(
        [
            per_copy(query @ inputs.cls_kv[0].transpose(-1, -2)),
            per_slot(scaled_logit, 2, slots.token_index) + zero_logit,
            per_copy(zero_logit),
        ],
        dim=-1,
    )  # (B, H, N, S + 2)
    weights = attention_weights(block, logits * query.shape[-1] ** -0.5 + slots.log_count)
    slot_weights = weights[..., 1:-1] * per_slot(rescale, 1, slots.token_index).unsqueeze(1)  # r folded in
    zero_weight = weights[..., 1:].sum(dim=-1, keepdim=True)  # every kept patch's value carries V(0) too
    kept_values = per_slot(patch_values, 2, slots.patch_index)  # (B, H, N, S, d)
    return (
        weights[..., :1] * inputs.cls_kv[1]
        + zero_weight * inputs.zero_kv[1]
        + (slot_weights.unsqueeze(-2) @ kept_values).squeeze(-2)
    )

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
  handful of batched matrix products over 1 + 9 + 1 keys per copy.

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
import torch.nn.functional as F
from torch import Tensor, nn

from otx_xai.explain.methods.base import ExplainAlgo

ScoreFn = Callable[[Tensor], Tensor]
Triple = tuple[Tensor, Tensor, Tensor]  # (CLS, kept tokens, zero token)

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
    ``log_count`` (N, S + 2): log multiplicity of the keys [CLS, slot 1..S, zero token] of copy k;
    -inf drops a key: an unused slot, or the zero token of a copy that keeps every patch.
    """

    scales: Tensor
    token_index: Tensor
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


def kept_slots(grid: int, use_gaussian: bool, dtype: torch.dtype, device: torch.device) -> KeptSlots:
    """The ``KeptSlots`` of a ``grid``×``grid`` patch grid, from the same masks as ``copy_masks``."""
    scales, token_index, count = _slot_tables(grid, use_gaussian)
    return KeptSlots(
        scales=torch.tensor(scales, dtype=dtype, device=device),
        token_index=torch.tensor(token_index, dtype=torch.long, device=device),
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

    def saliency(self, tokens: Tensor) -> Tensor:
        """Saliency (B, K, g, g) from the tokens entering the last block, (B, 1+N, D)."""
        grid = grid_size(tokens.shape[1] - 1)
        scores = self._copy_scores(tokens, grid)  # (B, N, K)
        return scores.transpose(1, 2).unflatten(2, (grid, grid))

    @abstractmethod
    def _copy_scores(self, tokens: Tensor, grid: int) -> Tensor:
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

    def _copy_scores(self, tokens: Tensor, grid: int) -> Tensor:
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

    Supports torchvision ``EncoderBlock``-like blocks: ``ln_1`` → ``self_attention``
    (``nn.MultiheadAttention`` with a packed in-projection) → residual → ``ln_2`` → ``mlp`` → residual.
    Args as ``ViTReciproCAMDirect``. No copy is built; the working memory is the (n, N, S, D) kept keys
    and values of n images (S ≤ 9), and ``max_chunk`` bounds it: images are taken
    n = max(1, max_chunk // N) at a time (the N copies of an image stay together).
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
        _check_block(last_block)
        super().__init__(last_block, final_norm, head, score_fn, use_gaussian)
        self.max_chunk = max_chunk

    def _copy_scores(self, tokens: Tensor, grid: int) -> Tensor:
        images_per_chunk = max(1, self.max_chunk // (grid * grid))
        if tokens.shape[0] <= images_per_chunk:  # always so when traced with one image
            return self._image_chunk_scores(tokens, grid)
        return torch.cat([self._image_chunk_scores(chunk, grid) for chunk in tokens.split(images_per_chunk)])

    def _image_chunk_scores(self, tokens: Tensor, grid: int) -> Tensor:
        """Scores (n, N, K) of every copy of n images, tokens (n, 1+N, D)."""
        block = self._parts[0]
        slots = kept_slots(grid, self.use_gaussian, tokens.dtype, tokens.device)
        cls_token, patches = tokens[:, 0], tokens[:, 1:]
        attended = self._cls_attention(cls_token, patches, slots)  # (B, N, D)
        cls_out = cls_token.unsqueeze(1) + attended
        cls_out = cls_out + block.mlp(block.ln_2(cls_out))
        return self._classify_cls(cls_out)

    def _cls_attention(self, cls_token: Tensor, patches: Tensor, slots: KeptSlots) -> Tensor:
        """The attention output (B, N, D) of the CLS query in each of the N masked copies."""
        block = self._parts[0]
        attention: nn.MultiheadAttention = block.self_attention
        w_q, w_k, w_v = attention.in_proj_weight.chunk(3)
        b_q, b_k, b_v = _split_bias(attention.in_proj_bias)

        def project(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:  # (..., D) → (..., H, d)
            return F.linear(x, weight, bias).unflatten(-1, (attention.num_heads, -1))

        distinct = _distinct_normed_tokens(block.ln_1, cls_token, patches, slots)
        query = project(distinct[0], w_q, b_q)
        keys = (
            project(distinct[0], w_k, b_k),
            project(distinct[1], w_k, b_k),
            project(distinct[2], w_k, b_k),
        )
        values = (
            project(distinct[0], w_v, b_v),
            project(distinct[1], w_v, b_v),
            project(distinct[2], w_v, b_v),
        )
        mixed = _attend_cls(query, keys, values, slots)  # (B, N, H, d)
        return attention.out_proj(mixed.flatten(-2))


def _distinct_normed_tokens(ln_1: nn.Module, cls_token: Tensor, patches: Tensor, slots: KeptSlots) -> Triple:
    """ln_1 of every distinct token of every copy: CLS (B, D), scaled patches (B, W·N, D), zero (1, D).

    Scaled patches are normalized one by one: LayerNorm's eps makes LN(w·p) differ from LN(p).
    The zero token normalizes to ln_1's bias; ln_1 is applied to it anyway, for any norm layer.
    """
    scaled = patches.unsqueeze(1) * slots.scales.view(1, -1, 1, 1)  # (B, W, N, D)
    return ln_1(cls_token), ln_1(scaled.flatten(1, 2)), ln_1(torch.zeros_like(cls_token[:1]))


def _attend_cls(query: Tensor, keys: Triple, values: Triple, slots: KeptSlots) -> Tensor:
    """Scaled dot-product attention of the CLS query over each copy's distinct keys, with multiplicities.

    query (B, H, d); keys and values per distinct token as in ``_distinct_normed_tokens``, split into
    heads (..., H, d). A key present m times enters the softmax once with its logit raised by log m,
    -inf when absent (``slots.log_count``). Returns (B, N, H, d).
    """
    num_patches = slots.token_index.shape[0]
    index = slots.token_index.flatten()

    def per_copy(x: Tensor) -> Tensor:  # shared by every copy: (B, H, ...) → (B, N, 1, H, ...)
        return x.unsqueeze(1).unsqueeze(1).expand(-1, num_patches, 1, *x.shape[1:])

    def per_slot(x: Tensor) -> Tensor:  # kept tokens: (B, W·N, H, ...) → (B, N, S, H, ...)
        return x.index_select(1, index).unflatten(1, (num_patches, -1))

    logits = torch.cat(
        [
            per_copy(torch.einsum("bhd,bhd->bh", query, keys[0])),
            per_slot(torch.einsum("bhd,bthd->bth", query, keys[1])),
            per_copy(torch.einsum("bhd,zhd->bh", query, keys[2])),
        ],
        dim=2,
    )  # (B, N, S + 2, H): keys [CLS, kept slots, zero token]
    scale = query.shape[-1] ** -0.5
    weights = torch.softmax(logits * scale + slots.log_count.unsqueeze(-1), dim=2)
    return (
        torch.einsum("bnh,bhd->bnhd", weights[:, :, 0], values[0])
        + torch.einsum("bnsh,bnshd->bnhd", weights[:, :, 1:-1], per_slot(values[1]))
        + torch.einsum("bnh,zhd->bnhd", weights[:, :, -1], values[2])
    )


def _split_bias(bias: Tensor | None) -> tuple[Tensor | None, Tensor | None, Tensor | None]:
    if bias is None:
        return None, None, None
    b_q, b_k, b_v = bias.chunk(3)
    return b_q, b_k, b_v


def _check_block(block: nn.Module) -> None:
    """Reject blocks whose attention the fast form does not reproduce exactly."""
    attention = getattr(block, "self_attention", None)
    if not all(hasattr(block, part) for part in ("ln_1", "ln_2", "mlp")):
        raise TypeError("ViTReciproCAM needs an EncoderBlock-like block (ln_1, self_attention, ln_2, mlp)")
    if not isinstance(attention, nn.MultiheadAttention):
        raise TypeError("ViTReciproCAM needs block.self_attention to be an nn.MultiheadAttention")
    if not attention._qkv_same_embed_dim or attention.bias_k is not None or attention.add_zero_attn:
        raise TypeError("ViTReciproCAM needs packed in-projection attention, no bias_k/v, no zero attention")

"""The CLS row of a ViT's last encoder block, from per-patch projections that masked copies can share.

A classifier reads only the CLS output of the last block, so only the CLS query's row of its attention
matters. LayerNorm is scale-invariant up to its eps: ln_1(w·p) = γ ⊙ (p − μ)·r_w + β with
r_w = w / sqrt(w²σ² + eps) (μ, σ² of p), so the key of patch p scaled by w is r_w·K̃(p) + K(0), with
K̃(p) = W_k(γ ⊙ (p − μ)) and K(0) the key of a zero token (ln_1 of a zero vector is β); values alike.

``block_inputs`` projects every patch once. ``real_cls_row`` runs the unmasked sequence from them (every
patch kept with w = 1): the model's own prediction. ViT Recipro-CAM's masked copies reuse the same
projections, so explain adds no second pass over the block.

Supports torchvision ``EncoderBlock``-like blocks: ``ln_1`` (an ``nn.LayerNorm``) → ``self_attention``
(``nn.MultiheadAttention`` with a packed in-projection) → ``dropout`` → residual → ``ln_2`` → ``mlp`` → residual.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

Pair = tuple[Tensor, Tensor]  # (keys, values), heads first: (B, H, L, d)


@dataclass(frozen=True)
class BlockInputs:
    """What the CLS row of the last block needs of its input tokens, projected once.

    ``cls_token`` (B, D): the CLS token entering the block (the residual); ``query`` (B, H, 1, d);
    ``cls_kv`` (B, H, 1, d) each; ``zero_kv`` (1, H, 1, d): key and value of a zero token;
    ``patch_kv`` (B, H, N, d): K̃ and Ṽ of every patch; ``variance`` (B, N): σ² of every patch;
    ``eps``: ln_1's eps.
    """

    cls_token: Tensor
    query: Tensor
    cls_kv: Pair
    zero_kv: Pair
    patch_kv: Pair
    variance: Tensor
    eps: float

    def rescale(self, weights: Tensor) -> Tensor:
        """r_w (B, W, N) of every patch under each mask weight w of ``weights`` (W,)."""
        weights = weights.view(1, -1, 1)
        return weights * torch.rsqrt(weights.square() * self.variance.unsqueeze(1) + self.eps)

    def images(self, start: int, stop: int) -> BlockInputs:
        """The inputs of images start..stop-1."""
        return BlockInputs(
            cls_token=self.cls_token[start:stop],
            query=self.query[start:stop],
            cls_kv=(self.cls_kv[0][start:stop], self.cls_kv[1][start:stop]),
            zero_kv=self.zero_kv,
            patch_kv=(self.patch_kv[0][start:stop], self.patch_kv[1][start:stop]),
            variance=self.variance[start:stop],
            eps=self.eps,
        )

    @property
    def batch(self) -> int:
        return self.cls_token.shape[0]


def check_encoder_block(block: nn.Module) -> None:
    """Reject blocks whose CLS row this module does not reproduce exactly."""
    attention = getattr(block, "self_attention", None)
    if not all(hasattr(block, part) for part in ("ln_1", "ln_2", "mlp")):
        raise TypeError("the CLS-row form needs an EncoderBlock-like block (ln_1, self_attention, ln_2, mlp)")
    if not isinstance(block.ln_1, nn.LayerNorm) or len(block.ln_1.normalized_shape) != 1:
        raise TypeError("the CLS-row form needs block.ln_1 to be an nn.LayerNorm over the last dimension")
    if not isinstance(attention, nn.MultiheadAttention):
        raise TypeError("the CLS-row form needs block.self_attention to be an nn.MultiheadAttention")
    if not attention._qkv_same_embed_dim or attention.bias_k is not None or attention.add_zero_attn:
        raise TypeError("the CLS-row form needs packed in-projection attention, no bias_k/v, no zero attention")


def block_inputs(block: nn.Module, tokens: Tensor) -> BlockInputs:
    """Project the tokens entering ``block``, (B, 1+N, D): the CLS query, key and value, K̃ and Ṽ per patch."""
    ln_1: nn.LayerNorm = block.ln_1
    attention: nn.MultiheadAttention = block.self_attention
    heads, dim = attention.num_heads, tokens.shape[-1]
    w_q, w_kv = attention.in_proj_weight.split([dim, 2 * dim])
    b_q, b_kv = (None, None) if attention.in_proj_bias is None else attention.in_proj_bias.split([dim, 2 * dim])

    def heads_first(x: Tensor) -> Pair:  # (B, L, 2D) → keys, values (B, H, L, d)
        keys, values = x.unflatten(-1, (2, heads, -1)).permute(2, 0, 3, 1, 4).unbind(0)
        return keys, values

    cls_token, patches = tokens[:, 0], tokens[:, 1:]
    normed_cls = ln_1(tokens[:, :1])  # (B, 1, D)
    zero_normed = ln_1.bias if ln_1.bias is not None else torch.zeros_like(tokens[0, 0])  # ln_1(0) = β
    centred = patches - patches.mean(dim=-1, keepdim=True)
    variance = centred.square().mean(dim=-1)  # biased, as LayerNorm's
    if ln_1.weight is not None:
        centred = centred * ln_1.weight
    return BlockInputs(
        cls_token=cls_token,
        query=F.linear(normed_cls, w_q, b_q).unflatten(-1, (heads, -1)).transpose(1, 2),
        cls_kv=heads_first(F.linear(normed_cls, w_kv, b_kv)),
        zero_kv=heads_first(F.linear(zero_normed.view(1, 1, -1), w_kv, b_kv)),
        patch_kv=heads_first(F.linear(centred, w_kv)),
        variance=variance,
        eps=ln_1.eps,
    )


def attention_weights(block: nn.Module, logits: Tensor) -> Tensor:
    """Softmax over the last dim of raw q·k logits (log-multiplicities already added), with the block's
    attention dropout when training."""
    attention: nn.MultiheadAttention = block.self_attention
    weights = torch.softmax(logits, dim=-1)
    return F.dropout(weights, attention.dropout, training=block.training) if attention.dropout else weights


def finish_block(block: nn.Module, cls_token: Tensor, mixed: Tensor) -> Tensor:
    """The block's CLS output (..., D) from its attention's mixed values, heads first (B, H, L, d):
    output projection, dropout, residual, ln_2 + MLP, residual."""
    attended = block.self_attention.out_proj(mixed.transpose(1, 2).flatten(-2))  # (B, L, D)
    if hasattr(block, "dropout"):
        attended = block.dropout(attended)
    out = cls_token.unsqueeze(1) + attended
    return out + block.mlp(block.ln_2(out))


def real_cls_row(block: nn.Module, inputs: BlockInputs) -> Tensor:
    """The block's CLS output (B, D) on the unmasked tokens: what ``block(tokens)[:, 0]`` computes."""
    query, (patch_keys, patch_values) = inputs.query, inputs.patch_kv
    rescale = inputs.rescale(torch.ones(1, dtype=query.dtype, device=query.device))  # (B, 1, N)
    zero_logit = query @ inputs.zero_kv[0].transpose(-1, -2)  # (B, H, 1, 1)
    logits = torch.cat(
        [query @ inputs.cls_kv[0].transpose(-1, -2),
         (query @ patch_keys.transpose(-1, -2)) * rescale.unsqueeze(1) + zero_logit],
        dim=-1,
    )  # (B, H, 1, 1 + N)
    weights = attention_weights(block, logits * query.shape[-1] ** -0.5)
    patch_weights = weights[..., 1:]
    mixed = (
        weights[..., :1] * inputs.cls_kv[1]
        + patch_weights.sum(dim=-1, keepdim=True) * inputs.zero_kv[1]
        + (patch_weights * rescale.unsqueeze(1)) @ patch_values
    )  # (B, H, 1, d)
    return finish_block(block, inputs.cls_token, mixed)[:, 0]

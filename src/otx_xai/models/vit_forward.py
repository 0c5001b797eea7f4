"""The forward passes of a torchvision ``VisionTransformer`` classifier, shared by every model holding one.

The last encoder block computes only the CLS row the head reads (``vit_cls_row``: the same function as
torchvision's block to float rounding, without the MLP on every patch token), and ViT Recipro-CAM
reuses its per-patch projections.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import torch
from torch import Tensor, nn
from torchvision.models import VisionTransformer

from otx_xai.errors import UserError
from otx_xai.explain.methods.base import normalize_map
from otx_xai.explain.methods.forward.vit_cls_row import BlockInputs, block_inputs, real_cls_row
from otx_xai.explain.methods.forward.vit_recipro_cam import ViTReciproCAM, grid_size, patch_grid
from otx_xai.explain.methods.gradient.base import GradientCAM
from otx_xai.tracing import frozen_size


def tokens_before_last_block(vit: VisionTransformer, images: Tensor) -> Tensor:
    """Tokens (B, 1+N, D) entering the last encoder block: CLS + patches, position-embedded."""
    if not torch.jit.is_tracing():  # an IR's input size is fixed at export; torch checks it here
        size = tuple(images.shape[-2:])
        if size != (vit.image_size, vit.image_size):
            raise UserError(f"this ViT takes {vit.image_size}x{vit.image_size} images, got {size[0]}x{size[1]}: "
                             f"set data.input_size to [{vit.image_size}, {vit.image_size}]")
    tokens = vit.conv_proj(images).flatten(2).transpose(1, 2)  # torchvision's _process_input, unasserted
    cls_token = vit.class_token.expand(tokens.shape[0], -1, -1)
    tokens = torch.cat([cls_token, tokens], dim=1) + vit.encoder.pos_embedding
    return vit.encoder.layers[:-1](vit.encoder.dropout(tokens))


def cls_feature(vit: VisionTransformer, inputs: BlockInputs) -> Tensor:
    """The final-normed CLS token (B, D) the head reads, from the last block's projected inputs."""
    return vit.encoder.ln(real_cls_row(vit.encoder.layers[-1], inputs))


def vit_logits(vit: VisionTransformer, images: Tensor) -> Tensor:
    """Logits (B, K), the same as ``vit(images)`` to float rounding."""
    tokens = tokens_before_last_block(vit, images)
    return vit.heads(cls_feature(vit, block_inputs(vit.encoder.layers[-1], tokens)))


def _last_block_logits(vit: VisionTransformer, tokens: Tensor) -> Tensor:
    """torchvision's own last block, final norm and head on the tokens entering the last block."""
    return vit.heads(vit.encoder.ln(vit.encoder.layers[-1](tokens))[:, 0])


def vit_gradient_explainer(vit: VisionTransformer, method: str, multilabel: bool) -> GradientCAM:
    """The gradient CAM ``method`` at the tokens entering the last block, on the patch-token grid."""
    from otx_xai.models.gradient_explain import gradient_explainer

    return gradient_explainer(method, partial(_last_block_logits, vit), multilabel, patch_grid)  # deep-copyable


def vit_logits_and_feature_map(vit: VisionTransformer, images: Tensor) -> tuple[Tensor, Tensor]:
    """Logits (B, K) and the feature map (B, D, g, g): the patch tokens entering the last block, as a grid."""
    tokens = tokens_before_last_block(vit, images)
    logits = vit.heads(cls_feature(vit, block_inputs(vit.encoder.layers[-1], tokens)))
    return logits, patch_grid(tokens)


def vit_forward_explain(vit: VisionTransformer, explainer: nn.Module, explain_method: str, num_labels: int,
                        images: Tensor, explain_layer: Any = None) -> dict[str, Tensor]:
    """logits, feature_vector (the CLS feature), saliency_map and feature_map (the patch tokens entering
    the last block, as a grid) in one pass; ``explainer``: ViT Recipro-CAM, a gradient CAM (at
    ``explain_layer`` when given, an ``ExplainLayer``) or a class-agnostic map."""
    tokens = tokens_before_last_block(vit, images)
    inputs = block_inputs(vit.encoder.layers[-1], tokens)
    feature_vector = cls_feature(vit, inputs)
    patches = tokens[:, 1:].transpose(1, 2)  # (B, D, N)
    grid = grid_size(frozen_size(patches, -1)[0])  # the patch count: a constant of an IR's input size
    feature_map = patches.unflatten(-1, (grid, grid))
    logits = vit.heads(feature_vector)
    if isinstance(explainer, GradientCAM) and explain_layer is not None:
        from otx_xai.models.gradient_explain import layer_saliency

        saliency = layer_saliency(explainer, explain_layer, images, lambda outputs: outputs)[1]
    elif isinstance(explainer, GradientCAM):
        saliency = explainer(tokens, logits)
    elif isinstance(explainer, ViTReciproCAM):  # the fast form shares the prediction's projections
        saliency = normalize_map(explainer.saliency(tokens, inputs))
    elif explain_method == ViTReciproCAM.name:
        saliency = explainer(tokens)
    else:  # class-agnostic, the same for every class channel
        saliency = explainer(feature_map).expand(-1, num_labels, -1, -1)
    return {
        "logits": logits,
        "feature_vector": feature_vector,
        "saliency_map": saliency,
        "feature_map": feature_map,
    }

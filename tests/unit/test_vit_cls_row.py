"""The last block's CLS row from per-patch projections == torchvision's block, in eval and in training."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torchvision.models.vision_transformer import EncoderBlock

from otx_xai.explain.methods.forward.vit_cls_row import block_inputs, check_encoder_block, real_cls_row
from otx_xai.models.vit import VisionTransformerClassifier

TINY = {"image_size": 32, "patch_size": 8, "num_layers": 2, "num_heads": 2, "hidden_dim": 32, "mlp_dim": 64}


def random_block(seed: int, bias: bool = True) -> EncoderBlock:
    """A torchvision EncoderBlock with every parameter moved off its initial value (LN biases included)."""
    torch.manual_seed(seed)
    block = EncoderBlock(num_heads=4, hidden_dim=32, mlp_dim=48, dropout=0.0, attention_dropout=0.0)
    if not bias:
        block.ln_1 = nn.LayerNorm(32, eps=1e-6, elementwise_affine=False)
    with torch.no_grad():
        for param in block.parameters():
            param.add_(torch.randn(param.shape) * 0.3)
    return block.eval()


@pytest.mark.parametrize("bias", [True, False], ids=["affine_ln", "plain_ln"])
@pytest.mark.parametrize("tokens_count", [2, 17, 50])
def test_cls_row_equals_the_block_to_float64_precision(tokens_count: int, bias: bool) -> None:
    block = random_block(tokens_count, bias).double()
    tokens = torch.randn(3, tokens_count, 32, dtype=torch.float64) * 2.0
    with torch.no_grad():
        expected = block(tokens)[:, 0]
        got = real_cls_row(block, block_inputs(block, tokens))
    torch.testing.assert_close(got, expected, atol=1e-12, rtol=0)


def test_cls_row_equals_the_block_in_float32() -> None:
    block = random_block(0)
    tokens = torch.randn(4, 197, 32) * 3.0
    with torch.no_grad():
        torch.testing.assert_close(real_cls_row(block, block_inputs(block, tokens)), block(tokens)[:, 0],
                                   atol=1e-5, rtol=1e-5)


def test_training_gradients_equal_torchvision() -> None:
    """Training through the CLS-row form gives torchvision's gradients (same function, not just same value)."""
    torch.manual_seed(0)
    model = VisionTransformerClassifier(["a", "b", "c"], **TINY).double().train()
    images = torch.randn(4, 3, 32, 32, dtype=torch.float64)
    labels = torch.tensor([0, 1, 2, 1])
    ours = torch.autograd.grad(nn.functional.cross_entropy(model(images), labels), list(model.parameters()))
    reference = torch.autograd.grad(nn.functional.cross_entropy(model.vit(images), labels),
                                    list(model.parameters()))
    for mine, theirs in zip(ours, reference, strict=True):
        torch.testing.assert_close(mine, theirs, atol=1e-10, rtol=1e-8)


def test_attention_and_block_dropout_apply_in_training_only() -> None:
    torch.manual_seed(0)
    block = EncoderBlock(num_heads=2, hidden_dim=16, mlp_dim=16, dropout=0.5, attention_dropout=0.5)
    tokens = torch.randn(2, 10, 16)
    block.train()
    with torch.no_grad():
        first, second = (real_cls_row(block, block_inputs(block, tokens)) for _ in range(2))
    assert not torch.equal(first, second), "dropout is active while training"
    block.eval()
    with torch.no_grad():
        torch.testing.assert_close(real_cls_row(block, block_inputs(block, tokens)), block(tokens)[:, 0],
                                   atol=1e-5, rtol=1e-5)


def test_other_blocks_are_rejected() -> None:
    with pytest.raises(TypeError, match="EncoderBlock-like"):
        check_encoder_block(nn.Linear(4, 4))
    block = random_block(0)
    block.ln_1 = nn.BatchNorm1d(32)
    with pytest.raises(TypeError, match=r"nn\.LayerNorm"):
        check_encoder_block(block)

"""ViT Recipro-CAM: fast form == direct form == a per-copy loop; the ViT classifier and its IR."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from functools import partial

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from otx_xai.explain.methods.base import normalize_map
from otx_xai.explain.methods.forward.vit_cls_row import block_inputs
from otx_xai.explain.methods.forward.vit_recipro_cam import ViTReciproCAM, ViTReciproCAMDirect, copy_masks, kept_slots
from otx_xai.models.classification import class_scores
from otx_xai.models.vit import VisionTransformerClassifier

LABELS = ["circle", "square", "triangle"]
TINY = {"image_size": 32, "patch_size": 8, "num_layers": 2, "num_heads": 2, "hidden_dim": 32, "mlp_dim": 64}
GAUSSIAN = torch.tensor([[1 / 16, 1 / 8, 1 / 16], [1 / 8, 1 / 4, 1 / 8], [1 / 16, 1 / 8, 1 / 16]])


def perturb_(model: nn.Module, seed: int) -> None:
    """Move every parameter off its initial value (torchvision zero-initializes the head and LN biases)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in model.parameters():
            param.add_(torch.randn(param.shape, generator=generator) * 0.3)


def train_(model: VisionTransformerClassifier, steps: int = 5, seed: int = 0) -> None:
    """A few real AdamW steps of the model's own training_step on random images and labels."""
    generator = torch.Generator().manual_seed(seed)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for _ in range(steps):
        images = torch.randn(6, 3, 32, 32, generator=generator)
        if model.multilabel:
            labels = torch.randint(0, 2, (6, len(LABELS)), generator=generator)
        else:
            labels = torch.randint(0, len(LABELS), (6,), generator=generator)
        optimizer.zero_grad()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # self.log without a Trainer
            batch = {"images": images, "labels": labels, "infos": [{}] * len(images)}
            model.training_step(batch, 0).backward()
        optimizer.step()
    model.eval()


def make_model(
    multilabel: bool = False, use_gaussian: bool = True, trained: bool = False, seed: int = 0, **config: int
) -> VisionTransformerClassifier:
    torch.manual_seed(seed)
    model = VisionTransformerClassifier(
        LABELS, **{**TINY, **config}, use_gaussian=use_gaussian, multilabel=multilabel
    )
    perturb_(model, seed)
    if trained:
        train_(model, seed=seed)
    return model.eval()


def explainers(model: VisionTransformerClassifier) -> tuple[ViTReciproCAM, ViTReciproCAMDirect]:
    use_gaussian = model.hparams.use_gaussian
    fast = ViTReciproCAM.from_vit(model.vit, model._scores, use_gaussian=use_gaussian)
    direct = ViTReciproCAMDirect.from_vit(model.vit, model._scores, use_gaussian=use_gaussian, max_chunk=7)
    return fast, direct


def tokens_of(model: VisionTransformerClassifier, batch: int = 4, seed: int = 1) -> Tensor:
    size = model.hparams.image_size
    images = torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(seed))
    images = images.to(model.vit.class_token.dtype)
    with torch.no_grad():
        return model.tokens_before_last_block(images)


def per_copy_loop(
    vit: nn.Module, tokens: Tensor, score_fn: Callable[[Tensor], Tensor], gaussian: bool
) -> Tensor:
    """The algorithm written out: one image, one position, one masked sequence at a time."""
    batch, length, _ = tokens.shape
    grid = round((length - 1) ** 0.5)
    out = torch.zeros(batch, len(LABELS), grid, grid, dtype=tokens.dtype)
    offsets = (-1, 0, 1) if gaussian else (0,)
    for b in range(batch):
        for row in range(grid):
            for col in range(grid):
                sequence = torch.zeros_like(tokens[b])
                sequence[0] = tokens[b, 0]
                for dy in offsets:
                    for dx in offsets:
                        r, c = row + dy, col + dx
                        if 0 <= r < grid and 0 <= c < grid:
                            weight = GAUSSIAN[dy + 1, dx + 1] if gaussian else 1.0
                            sequence[1 + r * grid + c] = tokens[b, 1 + r * grid + c] * weight
                cls_out = vit.encoder.layers[-1](sequence[None])[:, 0]
                out[b, :, row, col] = score_fn(vit.heads(vit.encoder.ln(cls_out)))[0]
    return out


@pytest.mark.parametrize("trained", [False, True], ids=["random", "trained"])
@pytest.mark.parametrize("multilabel", [False, True], ids=["multiclass", "multilabel"])
@pytest.mark.parametrize("use_gaussian", [False, True], ids=["one_hot", "gaussian"])
def test_fast_equals_direct(trained: bool, multilabel: bool, use_gaussian: bool) -> None:
    model = make_model(multilabel, use_gaussian, trained)
    fast, direct = explainers(model)
    tokens = tokens_of(model)
    with torch.no_grad():
        fast_map, direct_map = fast.saliency(tokens), direct.saliency(tokens)
    assert fast_map.shape == (4, len(LABELS), 4, 4)
    torch.testing.assert_close(fast_map, direct_map, atol=1e-5, rtol=0)
    grey = (normalize_map(fast_map).int() - normalize_map(direct_map).int()).abs()
    assert grey.max() <= 1
    assert torch.equal(fast(tokens), normalize_map(fast_map))


@pytest.mark.parametrize("use_gaussian", [False, True], ids=["one_hot", "gaussian"])
def test_fast_equals_direct_to_float64_precision(use_gaussian: bool) -> None:
    model = make_model(use_gaussian=use_gaussian, trained=True).double()
    fast, direct = explainers(model)
    tokens = tokens_of(model)
    with torch.no_grad():
        torch.testing.assert_close(fast.saliency(tokens), direct.saliency(tokens), atol=1e-12, rtol=0)


@pytest.mark.parametrize(("max_chunk", "chunk_sizes"), [(16, [1] * 5), (40, [2, 2, 1]), (15, [1] * 5), (4096, [5])])
def test_fast_form_takes_images_max_chunk_copies_at_a_time(max_chunk: int, chunk_sizes: list[int]) -> None:
    model = make_model(trained=True).double()
    tokens = tokens_of(model, batch=5)  # 16 copies per image (4×4 grid)
    whole = ViTReciproCAM.from_vit(model.vit, model._scores)
    chunked = ViTReciproCAM.from_vit(model.vit, model._scores, max_chunk=max_chunk)
    seen: list[int] = []
    run_chunk = chunked._image_chunk_scores
    chunked._image_chunk_scores = lambda chunk, slots: seen.append(chunk.batch) or run_chunk(chunk, slots)
    with torch.no_grad():
        torch.testing.assert_close(chunked.saliency(tokens), whole.saliency(tokens), atol=1e-12, rtol=0)
    assert seen == chunk_sizes, "at most max(1, max_chunk // 16) images (16 copies each) at once"


def test_chunks_of_given_block_inputs_equal_the_whole_batch() -> None:
    """forward_explain hands the prediction's own block inputs over; chunks of them give the same maps."""
    model = make_model(trained=True).double()
    tokens = tokens_of(model, batch=5)
    inputs = block_inputs(model.vit.encoder.layers[-1], tokens)
    whole = ViTReciproCAM.from_vit(model.vit, model._scores)
    chunked = ViTReciproCAM.from_vit(model.vit, model._scores, max_chunk=40)  # 2 images of 16 copies
    with torch.no_grad():
        expected = whole.saliency(tokens)
        torch.testing.assert_close(whole.saliency(tokens, inputs), expected, atol=0, rtol=0)
        torch.testing.assert_close(chunked.saliency(tokens, inputs), expected, atol=1e-12, rtol=0)


@pytest.mark.parametrize(("image_size", "grid"), [(8, 1), (16, 2), (24, 3)])
@pytest.mark.parametrize("use_gaussian", [False, True], ids=["one_hot", "gaussian"])
def test_fast_equals_direct_on_small_grids(image_size: int, grid: int, use_gaussian: bool) -> None:
    """Grids where a copy keeps every patch (no zero token: its log-count is -inf) stay exact, NaN-free."""
    model = make_model(use_gaussian=use_gaussian, image_size=image_size)
    fast, direct = explainers(model)
    tokens = tokens_of(model, batch=3)
    with torch.no_grad():
        fast_map = fast.saliency(tokens)
        torch.testing.assert_close(fast_map, direct.saliency(tokens), atol=1e-5, rtol=0)
    assert fast_map.shape == (3, len(LABELS), grid, grid)
    assert torch.isfinite(fast_map).all()


@pytest.mark.parametrize("multilabel", [False, True], ids=["multiclass", "multilabel"])
@pytest.mark.parametrize("use_gaussian", [False, True], ids=["one_hot", "gaussian"])
def test_direct_equals_per_copy_loop(multilabel: bool, use_gaussian: bool) -> None:
    model = make_model(multilabel, use_gaussian, trained=True)
    _, direct = explainers(model)
    tokens = tokens_of(model, batch=3)
    with torch.no_grad():
        score_fn = partial(class_scores, multilabel=multilabel)
        expected = per_copy_loop(model.vit, tokens, score_fn, use_gaussian)
        torch.testing.assert_close(direct.saliency(tokens), expected, atol=1e-6, rtol=0)


def test_masks_and_slots_describe_the_same_copies() -> None:
    masks = copy_masks(4, use_gaussian=True)
    assert masks[0, 0] == 1 / 4 and masks[0, 1] == 1 / 8 and masks[0, 5] == 1 / 16 and masks[0, 2] == 0
    assert torch.equal(masks.sum(1) > 0, torch.ones(16, dtype=torch.bool))
    slots = kept_slots(4, True, torch.float32, torch.device("cpu"))
    kept = torch.isfinite(slots.log_count[:, 1:-1]).sum(1)
    assert torch.equal(kept, (masks != 0).sum(1))
    assert torch.equal(slots.log_count[:, -1].exp().round(), 16.0 - kept)
    assert torch.equal(copy_masks(4, use_gaussian=False), torch.eye(16))


def test_forward_explain_outputs() -> None:
    model = make_model(trained=True)
    images = torch.randn(5, 3, 32, 32)
    with torch.no_grad():
        out = model.forward_explain(images)
        logits = model(images)
        tokens = model.tokens_before_last_block(images)
        encoded = model.vit.encoder(
            torch.cat([model.vit.class_token.expand(5, -1, -1), model.vit._process_input(images)], dim=1)
        )
        assert torch.equal(out["logits"], logits)
        torch.testing.assert_close(logits, model.vit(images), atol=1e-5, rtol=1e-5)  # the CLS-row form
    assert set(out) == {"logits", "feature_vector", "saliency_map", "feature_map"}
    assert out["saliency_map"].dtype == torch.uint8 and out["saliency_map"].shape == (5, 3, 4, 4)
    assert out["feature_vector"].dtype == torch.float32 and out["feature_vector"].shape == (5, 32)
    assert out["feature_map"].dtype == torch.float32 and out["feature_map"].shape == (5, 32, 4, 4)
    torch.testing.assert_close(out["feature_vector"], encoded[:, 0], atol=1e-5, rtol=1e-5)
    assert torch.equal(out["feature_map"][:, :, 1, 2], tokens[:, 1 + 1 * 4 + 2])
    assert (out["saliency_map"].flatten(2).max(-1).values == 255).all()
    assert model.explain_method == "ViTReciproCAM" and model.task == "classification"


def test_predict_step_is_the_same_with_and_without_explain() -> None:
    model = make_model(trained=True)
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        plain = model.predict_step({"images": images}, 0)
        model.explain_mode = True
        explained = model.predict_step({"images": images}, 0)
    assert torch.equal(plain["logits"], explained["logits"])


def test_explainer_adds_no_state_and_rejects_other_blocks() -> None:
    model = make_model()
    assert not [key for key in model.state_dict() if key.startswith("explainer")]
    with pytest.raises(TypeError, match="EncoderBlock-like"):
        ViTReciproCAM(nn.Linear(4, 4), nn.Identity(), nn.Identity(), torch.sigmoid)


class ExplainWrapper(nn.Module):
    """What an explain export traces: forward_explain as the module's forward."""

    def __init__(self, model: VisionTransformerClassifier) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: Tensor) -> dict[str, Tensor]:
        return self.model.forward_explain(images)


def test_openvino_ir_gives_the_same_maps() -> None:
    ov = pytest.importorskip("openvino")
    from lightning.pytorch.core.module import _jit_is_scripting

    model = make_model(trained=True)
    with torch.no_grad(), _jit_is_scripting(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about constant tables
        ir = ov.convert_model(ExplainWrapper(model), example_input=torch.randn(1, 3, 32, 32))
    compiled = ov.Core().compile_model(ir, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    images = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(7))
    result = compiled(images.numpy())
    with torch.no_grad():
        expected = model.forward_explain(images)
    ir_map = result["saliency_map"].astype(np.int32)
    grey = np.abs(ir_map - expected["saliency_map"].numpy().astype(np.int32))
    assert result["saliency_map"].dtype == np.uint8 and ir_map.shape == (3, 3, 4, 4)
    assert grey.mean() <= 1 and grey.max() <= 1
    np.testing.assert_allclose(result["logits"], expected["logits"].numpy(), atol=1e-4)
    np.testing.assert_allclose(result["feature_map"], expected["feature_map"].numpy(), atol=1e-4)

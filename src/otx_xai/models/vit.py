"""Image classification over a torchvision VisionTransformer (ViT/DeiT-like), explained by ViT Recipro-CAM."""

from __future__ import annotations

from torch import Tensor
from torchvision.models import VisionTransformer

from otx_xai.explain.methods.base import ExplainAlgo
from otx_xai.explain.methods.forward.vit_cls_row import check_encoder_block
from otx_xai.explain.methods.forward.vit_recipro_cam import ViTReciproCAM
from otx_xai.explain.select import GRADIENT, choose_method, class_agnostic_explainer
from otx_xai.models.classification import ClassifierModel
from otx_xai.models.gradient_explain import ExplainLayer, vit_explain_layer
from otx_xai.models.vit_forward import tokens_before_last_block, vit_forward_explain, vit_gradient_explainer, vit_logits
from otx_xai.models.weights import load_backbone_weights


class VisionTransformerClassifier(ClassifierModel):
    """A ViT classifier (multiclass or multilabel) with ViT Recipro-CAM in its explain forward.

    The defaults are DeiT-tiny-like. The last encoder block computes only the CLS row the head reads
    (``vit_cls_row``: the same function as torchvision's block to float rounding, without the MLP on
    every patch token), and ViT Recipro-CAM reuses its per-patch projections.

    Args:
        label_names: class names; their order is the channel order of every output.
        image_size, patch_size, num_layers, num_heads, hidden_dim, mlp_dim: the torchvision
            ``VisionTransformer`` configuration.
        use_gaussian: ViT Recipro-CAM keeps a 3×3 Gaussian neighbourhood of each patch, not one patch.
        multilabel: sigmoid head with binary cross-entropy instead of softmax.
        weights: local file with pretrained torchvision ViT weights (same configuration), or None.
        lr: AdamW learning rate.
        explain_method: "auto" (ViT Recipro-CAM), EigenCAM, ActivationMap, or a gradient CAM (GradCAM,
            GradCAMPlusPlus, XGradCAM, LayerCAM) on the patch grid of the tokens entering the last block.
        explain_layer: a module of ``vit`` (by name) a gradient CAM explains at instead.
    """

    def __init__(
        self,
        label_names: list[str],
        image_size: int = 224,
        patch_size: int = 16,
        num_layers: int = 12,
        num_heads: int = 3,
        hidden_dim: int = 192,
        mlp_dim: int = 768,
        use_gaussian: bool = True,
        multilabel: bool = False,
        weights: str | None = None,
        lr: float = 1e-3,
        explain_method: str = "auto",
        explain_layer: str | None = None,
    ) -> None:
        super().__init__(label_names, multilabel, lr)
        self.save_hyperparameters()
        self.vit = VisionTransformer(
            image_size=image_size,
            patch_size=patch_size,
            num_layers=num_layers,
            num_heads=num_heads,
            hidden_dim=hidden_dim,
            mlp_dim=mlp_dim,
            num_classes=len(self.label_names),
        )
        if weights:
            load_backbone_weights(self.vit, weights)
        check_encoder_block(self.vit.encoder.layers[-1])
        self.explain_method = choose_method("VisionTransformer", explain_method, kind="vit")
        if self.explain_method in GRADIENT:
            self.explainer: ExplainAlgo = vit_gradient_explainer(self.vit, self.explain_method, multilabel)
        else:
            self.explainer = (ViTReciproCAM.from_vit(self.vit, score_fn=self._scores, use_gaussian=use_gaussian)
                              if self.explain_method == ViTReciproCAM.name
                              else class_agnostic_explainer(self.explain_method))
        module = vit_explain_layer(self.vit, explain_layer, self.explain_method)
        self.explain_layer = None if module is None else ExplainLayer(explain_layer, self.vit, module)

    def tokens_before_last_block(self, images: Tensor) -> Tensor:
        """Tokens (B, 1+N, D) entering the last encoder block: CLS + patches, position-embedded."""
        return tokens_before_last_block(self.vit, images)

    def forward(self, images: Tensor) -> Tensor:
        return vit_logits(self.vit, images)

    def forward_explain(self, images: Tensor) -> dict[str, Tensor]:
        return vit_forward_explain(self.vit, self.explainer, self.explain_method, len(self.label_names), images,
                                   self.explain_layer)

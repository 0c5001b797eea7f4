"""Image classification over torchvision classifiers, explained by Recipro-CAM (CNN, Swin) or ViT Recipro-CAM."""

from __future__ import annotations

from collections import OrderedDict
from functools import partial
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models import VisionTransformer

from otx_xai.errors import UserError
from otx_xai.explain.methods.base import ExplainAlgo
from otx_xai.explain.methods.forward.cam import CAM, cam_classifier
from otx_xai.explain.methods.forward.recipro_cam import ReciproCAM, pointwise_layers
from otx_xai.explain.methods.forward.vit_cls_row import check_encoder_block
from otx_xai.explain.methods.forward.vit_recipro_cam import ViTReciproCAM
from otx_xai.explain.methods.gradient.base import GradientCAM
from otx_xai.explain.select import GRADIENT, choose_method, class_agnostic_explainer
from otx_xai.models.backbones import FeatureTap, build_torchvision, split_cnn, with_linear_head
from otx_xai.models.base import ExplainableModel, batch_images
from otx_xai.models.gradient_explain import (
    ExplainLayer,
    check_explain_layer,
    cnn_explain_layer,
    cnn_gradient_explain,
    cnn_layer_grid,
    gradient_explainer,
    vit_explain_layer,
)
from otx_xai.models.vit_forward import (
    vit_forward_explain,
    vit_gradient_explainer,
    vit_logits,
    vit_logits_and_feature_map,
)


def class_scores(logits: Tensor, multilabel: bool, dim: int = -1) -> Tensor:
    """Scores a classifier reports: sigmoid per label (multilabel) or softmax over labels (``dim``)."""
    return torch.sigmoid(logits) if multilabel else torch.softmax(logits, dim=dim)


class ClassifierModel(ExplainableModel):
    """Training, evaluation and scores shared by every classifier family (CNN, ViT).

    Subclasses build their network and define ``forward`` (logits) and ``forward_explain``.
    """

    task = "classification"

    def __init__(self, label_names: list[str], multilabel: bool, lr: float) -> None:
        super().__init__()
        self.label_names = list(label_names)
        self.multilabel = multilabel
        self.lr = lr

    def _scores(self, logits: Tensor, dim: int = -1) -> Tensor:
        return class_scores(logits, self.multilabel, dim)

    def _loss(self, logits: Tensor, labels: Tensor) -> Tensor:
        if self.multilabel:
            return F.binary_cross_entropy_with_logits(logits, labels.float())
        return F.cross_entropy(logits, labels)

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor | None:
        if not batch["infos"]:
            return None  # every image of the batch was unreadable
        loss = self._loss(self(batch_images(batch)), batch["labels"])
        self.log("train/loss", loss, prog_bar=True, batch_size=len(batch["labels"]))
        return loss

    def _evaluate(self, batch: dict[str, Any], stage: str) -> None:
        if not batch["infos"]:
            return
        logits = self(batch_images(batch))
        labels = batch["labels"]
        if self.multilabel:
            accuracy = ((logits > 0) == labels.bool()).float().mean()
        else:
            accuracy = (logits.argmax(-1) == labels).float().mean()
        size = len(labels)
        self.log(f"{stage}/loss", self._loss(logits, labels), batch_size=size)
        self.log(f"{stage}/accuracy", accuracy, prog_bar=True, batch_size=size)

    def export_outputs(self, images: Tensor, explain: bool) -> dict[str, Tensor]:
        if explain and self.explain_method in GRADIENT:
            raise UserError(f"{self.explain_method} needs gradients, which an IR does not have: export a model "
                            "built with explain_method CAM or ReciproCAM (auto), or export and explain the IR "
                            "with ScoreCAM or a black-box method (chosen at explain time)")
        return super().export_outputs(images, explain)

    def explain_settings(self) -> dict[str, Any]:
        """What the explain method ran with, for the index (the gradient CAMs: their layer and chunk)."""
        explainer = getattr(self, "explainer", None)
        if not isinstance(explainer, GradientCAM):
            return {}
        layer = getattr(self, "explain_layer", None)
        return {"layer": layer.name if layer is not None else self._default_layer_name(),
                "chunk": explainer.max_chunk}

    def _default_layer_name(self) -> str:
        """The layer a gradient CAM explains at by default: the traced cut's node, a ViT's last-block input."""
        if hasattr(self, "vit"):
            return f"{dict(self.vit.encoder.layers.named_children()).popitem()[0]} input"
        output = next(node for node in reversed(self.backbone.graph.nodes) if node.op == "output")
        return str(output.args[0].meta.get("qualname") or output.args[0].name)


class ImageClassifier(ClassifierModel):
    """A torchvision classifier (multiclass or multilabel) explained in its own forward.

    CNNs (and Swin, on its token grid) are cut at their last spatial feature map by tracing them
    (``models/graph_cut.py``) and explained by Recipro-CAM through the network's own head; a torchvision
    ``VisionTransformer`` (vit_b_16, ...) is explained by ViT Recipro-CAM.

    Args:
        backbone: any torchvision classification model name (resnet18, mobilenet_v2, densenet121, googlenet,
            inception_v3, convnext_tiny, swin_t, maxvit_t, vgg11, vit_b_16, ...).
        label_names: class names; their order is the channel order of every output.
        multilabel: sigmoid head with binary cross-entropy instead of softmax.
        weights: local file with pretrained torchvision weights, or None for random initialization. Its
            classifier is kept when it has one output per label (a 1000-class ImageNet model with its 1000
            labels explains as it is), re-created at random otherwise (with a log line).
        lr: AdamW learning rate.
        head: "torchvision" (the network's own classifier, its last layer sized to the labels; the default) or
            "linear" (global average pooling and one linear layer on the last feature map, as OTX 2.x's
            ``LinearClsHead``; the network's classifier weights are dropped; a ViT gets one Linear on its
            CLS token). A linear head is what lets Recipro-CAM explain at the cost of predict: an MLP head
            (mobilenet_v3's 576→1024→K) has to run at each of the h·w positions.
        explain_method: "auto" (Recipro-CAM when the network can be cut at its last feature map, ViT
            Recipro-CAM for a ViT, else the Activation Map with a warning), or one of the methods the model
            can run (``explain/select.py``): also CAM (GAP + one Linear heads) and the gradient CAMs
            (GradCAM, GradCAMPlusPlus, XGradCAM, LayerCAM) at the traced cut.
        explain_layer: the module (by name, e.g. ``layer3``) a gradient CAM explains at instead of the cut.
    """

    def __init__(
        self,
        label_names: list[str],
        backbone: str = "resnet18",
        multilabel: bool = False,
        weights: str | None = None,
        lr: float = 1e-3,
        explain_method: str = "auto",
        head: str = "torchvision",
        explain_layer: str | None = None,
    ) -> None:
        super().__init__(label_names, multilabel, lr)
        self.save_hyperparameters()
        if head not in ("torchvision", "linear"):
            raise UserError(f"unknown head {head!r}: use 'torchvision' or 'linear'")
        net = build_torchvision(backbone, len(self.label_names), weights)
        if isinstance(net, VisionTransformer):
            self._init_vit(net, backbone, head, explain_method)
            module = vit_explain_layer(self.vit, explain_layer, self.explain_method)
            self.explain_layer = None if module is None else ExplainLayer(explain_layer, self.vit, module)
            return
        parts = split_cnn(net)
        if head == "linear":
            if parts is None:
                raise UserError(f"head 'linear' needs a network cut at its last feature map; {backbone!r} has "
                                 "none: use head 'torchvision'")
            parts = with_linear_head(parts, len(self.label_names))
        self.explain_method = choose_method(backbone, explain_method, cut=parts is not None)
        check_explain_layer(explain_layer, self.explain_method)
        if parts is None:
            self.tap = FeatureTap(net)
            self._pooled_head = None
        else:
            self.backbone, self.neck_head, self._pooled_head = parts.backbone, parts.neck_head, parts.head
        self.explain_layer: ExplainLayer | None = None
        if self.explain_method == CAM.name:
            self.explainer = CAM(cam_classifier(parts.head, backbone))
        elif self.explain_method in GRADIENT:
            tapped = cnn_explain_layer(self.backbone, self.neck_head, explain_layer, self.explain_method)
            if tapped is not None:
                self.explain_layer = ExplainLayer(explain_layer, partial(self._forward_parts, *tapped))
            self.explainer = gradient_explainer(self.explain_method, self._head_on_feature_map, multilabel,
                                                cnn_layer_grid(self.backbone, self.neck_head, explain_layer))
        elif self.explain_method == ReciproCAM.name:
            pointwise = parts.head is not None and pointwise_layers(parts.head) is not None
            self.explainer: ExplainAlgo = ReciproCAM(
                head_on_feature_map=self._head_on_feature_map,
                head_on_pooled=self._head_on_pooled if parts.head is not None else None,
                score_fn=self._scores,
                pointwise_head=parts.head if pointwise else None,
            )
        else:
            self.explainer = class_agnostic_explainer(self.explain_method)

    def _init_vit(self, vit: VisionTransformer, backbone: str, head: str, explain_method: str) -> None:
        """A torchvision ViT: its CLS-row forward (``vit_forward``) and ViT Recipro-CAM."""
        if head == "linear":
            vit.heads = nn.Sequential(OrderedDict(head=nn.Linear(vit.hidden_dim, len(self.label_names))))
        check_encoder_block(vit.encoder.layers[-1])
        self.vit = vit
        self.explain_method = choose_method(backbone, explain_method, kind="vit")
        method = self.explain_method
        if method in GRADIENT:
            self.explainer: ExplainAlgo = vit_gradient_explainer(vit, method, self.multilabel)
        else:
            self.explainer = (ViTReciproCAM.from_vit(vit, score_fn=self._scores) if method == ViTReciproCAM.name
                              else class_agnostic_explainer(method))

    @property
    def head(self) -> nn.Module:
        """The classifier head (re-initialized by the sanity check)."""
        if hasattr(self, "vit"):
            return self.vit.heads
        if hasattr(self, "tap"):
            return self.tap.net
        return self._pooled_head if self._pooled_head is not None else self.neck_head

    def _head_on_pooled(self, pooled: Tensor) -> Tensor:
        return self._pooled_head(pooled)

    def _head_on_feature_map(self, feature_map: Tensor) -> Tensor:
        return self.neck_head(feature_map)

    def forward(self, images: Tensor) -> Tensor:
        if hasattr(self, "vit"):
            return vit_logits(self.vit, images)
        return self._logits_vector_and_feature_map(images)[0]

    def _logits_vector_and_feature_map(self, images: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Logits (the same as ``forward``'s), the feature vector and the feature map of one pass."""
        if hasattr(self, "tap"):
            logits, feature_map = self.tap(images)
            return logits, feature_map.mean(dim=(2, 3)), feature_map
        return self._forward_parts(self.backbone, self.neck_head, images)

    def _forward_parts(self, backbone: nn.Module, neck_head: nn.Module, images: Tensor
                       ) -> tuple[Tensor, Tensor, Tensor]:
        """``_logits_vector_and_feature_map`` through these parts (the model's own, or copies with a tapped layer)."""
        feature_map = backbone(images)
        pooled = feature_map.mean(dim=(2, 3))
        if self._pooled_head is not None and neck_head is self.neck_head:  # GAP neck: pool once for both
            return self._pooled_head(pooled), pooled, feature_map
        return neck_head(feature_map), pooled, feature_map

    def logits_and_feature_map(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """Logits and the feature map the saliency is computed from (CNN, Swin: the traced cut; ViT: the patch
        tokens entering the last block, as a grid), in one pass without explaining (Score-CAM's forwards)."""
        if hasattr(self, "vit"):
            return vit_logits_and_feature_map(self.vit, images)
        logits, _, feature_map = self._logits_vector_and_feature_map(images)
        return logits, feature_map

    def forward_explain(self, images: Tensor) -> dict[str, Tensor]:
        if hasattr(self, "vit"):
            return vit_forward_explain(self.vit, self.explainer, self.explain_method, len(self.label_names), images,
                                       self.explain_layer)
        if isinstance(self.explainer, GradientCAM):
            return cnn_gradient_explain(self._logits_vector_and_feature_map, self.explainer, self.explain_layer,
                                        images)
        logits, feature_vector, feature_map = self._logits_vector_and_feature_map(images)
        saliency = self.explainer(feature_map)
        saliency = saliency.expand(-1, len(self.label_names), -1, -1)  # a class-agnostic map fills every channel
        return {
            "logits": logits,
            "feature_vector": feature_vector,
            "saliency_map": saliency,
            "feature_map": feature_map,
        }

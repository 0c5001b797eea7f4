"""Image classification over torchvision classifiers, explained by Recipro-CAM (CNN, Swin) or ViT Recipro-CAM."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models import VisionTransformer

from otx_xai.errors import UserError
from otx_xai.explain.methods.base import ExplainAlgo
from otx_xai.explain.methods.forward.recipro_cam import ReciproCAM, pointwise_layers
from otx_xai.explain.methods.forward.vit_cls_row import check_encoder_block
from otx_xai.explain.methods.forward.vit_recipro_cam import ViTReciproCAM
from otx_xai.explain.select import choose_method, class_agnostic_explainer
from otx_xai.models.backbones import FeatureTap, build_torchvision, split_cnn, with_linear_head
from otx_xai.models.base import ExplainableModel, batch_images
from otx_xai.models.vit_forward import vit_forward_explain, vit_logits


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
            can run (``explain/select.py``).
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
    ) -> None:
        super().__init__(label_names, multilabel, lr)
        self.save_hyperparameters()
        if head not in ("torchvision", "linear"):
            raise UserError(f"unknown head {head!r}: use 'torchvision' or 'linear'")
        net = build_torchvision(backbone, len(self.label_names), weights)
        if isinstance(net, VisionTransformer):
            self._init_vit(net, backbone, head, explain_method)
            return
        parts = split_cnn(net)
        if head == "linear":
            if parts is None:
                raise UserError(f"head 'linear' needs a network cut at its last feature map; {backbone!r} has "
                                 "none: use head 'torchvision'")
            parts = with_linear_head(parts, len(self.label_names))
        self.explain_method = choose_method(backbone, explain_method, cut=parts is not None)
        if parts is None:
            self.tap = FeatureTap(net)
            self._pooled_head = None
        else:
            self.backbone, self.neck_head, self._pooled_head = parts.backbone, parts.neck_head, parts.head
        if self.explain_method == ReciproCAM.name:
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
        feature_map = self.backbone(images)
        pooled = feature_map.mean(dim=(2, 3))
        if self._pooled_head is not None:  # GAP neck: pool once, for the logits and the feature vector
            return self._pooled_head(pooled), pooled, feature_map
        return self._head_on_feature_map(feature_map), pooled, feature_map

    def forward_explain(self, images: Tensor) -> dict[str, Tensor]:
        if hasattr(self, "vit"):
            return vit_forward_explain(self.vit, self.explainer, self.explain_method, len(self.label_names), images)
        logits, feature_vector, feature_map = self._logits_vector_and_feature_map(images)
        saliency = self.explainer(feature_map)
        saliency = saliency.expand(-1, len(self.label_names), -1, -1)  # a class-agnostic map fills every channel
        return {
            "logits": logits,
            "feature_vector": feature_vector,
            "saliency_map": saliency,
            "feature_map": feature_map,
        }

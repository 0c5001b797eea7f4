"""The batched, fixed-shape Mask R-CNN inference against torchvision's own per-image eval path."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torchvision.models.detection.image_list import ImageList

from otx_xai.models.maskrcnn_builders import build_maskrcnn
from otx_xai.models.maskrcnn_inference import paste_masks, predict_instances


def test_same_detections_and_masks_as_torchvision() -> None:
    torch.manual_seed(0)
    net = build_maskrcnn("maskrcnn_light", 3, score_thresh=0.0, detections_per_img=15).eval()
    images = torch.randn(3, 3, 64, 80)
    size = (64, 80)
    with torch.no_grad():
        mine = predict_instances(net, images)
        features = net.backbone(images)
        image_list = ImageList(images, [size] * len(images))
        proposals, _ = net.rpn(image_list, features)
        reference, _ = net.roi_heads(features, proposals, image_list.image_sizes)
    assert mine.boxes.shape == (3, 15, 4) and mine.masks.shape == (3, 15, *size)
    for index, expected in enumerate(reference):
        count = len(expected["scores"])
        assert count == int((mine.scores[index] > 0).sum())
        torch.testing.assert_close(mine.scores[index, :count], expected["scores"])
        torch.testing.assert_close(mine.boxes[index, :count], expected["boxes"])
        assert torch.equal(mine.labels[index, :count], expected["labels"] - 1)
        pasted = paste_masks(expected["masks"][:, 0][None], expected["boxes"][None], size)[0]
        torch.testing.assert_close(mine.masks[index, :count], pasted, atol=1e-5, rtol=0)
        assert (mine.labels[index, count:] == -1).all() and not mine.masks[index, count:].any()


def test_paste_masks_is_grid_sample_with_zero_padding() -> None:
    generator = torch.Generator().manual_seed(0)
    masks = torch.rand(2, 4, 28, 28, generator=generator)
    corner = torch.rand(2, 4, 2, generator=generator) * 40
    boxes = torch.cat([corner, corner + 5 + torch.rand(2, 4, 2, generator=generator) * 30], dim=-1)
    pasted = paste_masks(masks, boxes, (48, 64))
    xs = (torch.arange(64) + 0.5).view(1, 1, 1, -1)
    ys = (torch.arange(48) + 0.5).view(1, 1, -1, 1)
    x1, y1, x2, y2 = (boxes[..., i, None, None] for i in range(4))
    grid = torch.stack([(2 * (xs - x1) / (x2 - x1) - 1).expand(-1, -1, 48, -1),
                        (2 * (ys - y1) / (y2 - y1) - 1).expand(-1, -1, -1, 64)], dim=-1)
    expected = F.grid_sample(masks.reshape(8, 1, 28, 28), grid.reshape(8, 48, 64, 2), mode="bilinear",
                             padding_mode="zeros", align_corners=False).reshape(2, 4, 48, 64)
    torch.testing.assert_close(pasted, expected, atol=1e-5, rtol=0)

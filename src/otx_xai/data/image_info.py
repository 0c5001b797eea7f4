"""ImageInfo: where an image came from and how it was fed to the model (read by datasets, carried by
every prediction)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class ImageInfo:
    """Where an image came from and how it was fed to the model.

    ``valid_size`` is the (h, w) region of the model input that holds the image (top-left anchored);
    smaller than the input size when the image was letterboxed, equal to it otherwise.
    """

    image_id: str
    source_path: str
    original_size: tuple[int, int]
    valid_size: tuple[int, int]
    input_size: tuple[int, int]
    gt_labels: list[int] = field(default_factory=list)
    gt_boxes: list[list[float]] = field(default_factory=list)  # in original-image pixels

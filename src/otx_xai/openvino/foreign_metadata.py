"""What a classification IR that otx_xai did not export needs to be run: labels, preprocessing, input size.

Each value comes from the ``--ir.*`` flags (``ForeignIROptions``) when given, else from the IR's own
rt_info ``model_info`` section (written by OTX and OpenVINO Model API exporters: ``labels``,
``mean_values``, ``scale_values``, ``multilabel``, ``task_type``; ``hierarchical`` is refused), else
from the IR's input shape (the input size, when static). ``model_info/reverse_input_channels`` is not
applied: its meaning depends on whether the Model API caller feeds BGR or RGB, so the flag says it.
What is still missing is a one-line error naming the flag to pass. The result has the keys of
otx_xai's own metadata (``write_metadata``), so the rest of the IR path reads a foreign IR like an
exported one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openvino as ov

from otx_xai.errors import UserError

MODEL_INFO = "model_info"  # the rt_info section of OTX / Model API IRs


@dataclass
class ForeignIROptions:
    """How to run an IR that otx_xai did not export (the ``--ir.*`` flags); None: read it from the IR.

    Args:
        labels: class names in the order of the IR's logits, as a list or one comma-separated string.
        labels_file: a text file with one class name per line (instead of ``labels``).
        mean: per-channel mean (R, G, B) in 0..255 pixel units, subtracted before the IR.
        std: per-channel std (R, G, B) in 0..255 pixel units, divided by before the IR.
        input_size: [height, width] the images are resized to; needed when the IR's input is dynamic.
        multilabel: sigmoid scores per label instead of a softmax over labels.
        reverse_input_channels: the IR expects BGR: the channels of the (RGB) images are reversed in the
            graph; ``mean``/``std`` flags stay in R, G, B order, rt_info's mean_values/scale_values are read
            in the IR's (B, G, R) order.
    """

    labels: list[str] | str | None = None
    labels_file: str | None = None
    mean: list[float] | str | None = None
    std: list[float] | str | None = None
    input_size: list[int] | str | None = None
    multilabel: bool | None = None
    reverse_input_channels: bool = False

    def __post_init__(self) -> None:
        """Comma-separated strings (``--ir.mean 0,0,0``) become lists; each list is checked."""
        if isinstance(self.labels, str):
            self.labels = [label.strip() for label in self.labels.split(",")]
        for name, kind, count in (("mean", float, 3), ("std", float, 3), ("input_size", int, 2)):
            value = getattr(self, name)
            if value is None:
                continue
            items = value.split(",") if isinstance(value, str) else list(value)
            try:
                numbers = [kind(item) for item in items]
            except (TypeError, ValueError):
                numbers = []
            if len(numbers) != count or (kind is int and any(n <= 0 for n in numbers)):
                what = "two positive integers H,W" if kind is int else "three numbers R,G,B in 0..255 units"
                raise UserError(f"--ir.{name} {value!r} must be {what}")
            setattr(self, name, numbers)
        if self.std is not None and any(v == 0 for v in self.std):
            raise UserError(f"--ir.std {self.std} must not contain 0")


def _model_info(model: ov.Model) -> dict[str, str]:
    """The ``model_info`` rt_info section as strings (empty when absent)."""
    if not model.has_rt_info([MODEL_INFO]):
        return {}
    section = model.get_rt_info([MODEL_INFO])
    values = section.astype(dict) if hasattr(section, "astype") else dict(section)
    return {key: (value.astype(str) if hasattr(value, "astype") else str(value)) for key, value in values.items()}


def _bool(text: str) -> bool:
    return text.strip().lower() in ("true", "1", "yes")


def _numbers(text: str, key: str, path: Path) -> list[float]:
    """Three numbers from Model API's space-separated ``mean_values``/``scale_values`` (one value: all three)."""
    try:
        values = [float(v) for v in text.strip("[]() ").replace(",", " ").split()]
    except ValueError:
        values = []
    if len(values) == 1:
        values *= 3
    if len(values) != 3:
        raise UserError(f"{path}: rt_info model_info/{key} {text!r} is not three numbers: pass --ir.mean and "
                         "--ir.std")
    return values


def _labels(options: ForeignIROptions, info: dict[str, str], path: Path) -> list[str]:
    if options.labels is not None and options.labels_file is not None:
        raise UserError("--ir.labels and --ir.labels_file both given: pass one of them")
    if options.labels_file is not None:
        file = Path(options.labels_file)
        if not file.is_file():
            raise UserError(f"--ir.labels_file {file} not found: pass a text file with one class name per line")
        labels = [line.strip() for line in file.read_text().splitlines() if line.strip()]
    elif options.labels is not None:
        labels = [str(label).strip() for label in options.labels]
    elif info.get("labels", "").strip():
        labels = info["labels"].split()  # Model API: space-separated, spaces inside a name written as "_"
    else:
        raise UserError(f"{path} names no class labels (no otx_xai metadata, no rt_info model_info/labels): "
                         "pass --ir.labels a,b,c or --ir.labels_file FILE")
    if not labels or any(not label for label in labels) or len(set(labels)) != len(labels):
        raise UserError(f"the IR labels {labels} must be distinct non-empty names: fix --ir.labels")
    return labels


def _preprocessing(
    options: ForeignIROptions, info: dict[str, str], path: Path, reverse: bool
) -> tuple[list[float], list[float]]:
    """Mean and std in RGB order (the order our images are in); rt_info's are in the IR's channel order."""
    def from_info(key: str) -> list[float] | None:
        values = _numbers(info[key], key, path) if key in info else None
        return values[::-1] if values is not None and reverse else values

    mean = list(options.mean) if options.mean is not None else from_info("mean_values")
    std = list(options.std) if options.std is not None else from_info("scale_values")
    missing = [flag for flag, value in (("--ir.mean", mean), ("--ir.std", std)) if value is None]
    if missing:
        raise UserError(f"{path} gives no input normalization (no rt_info model_info/mean_values, scale_values): "
                         f"pass {' and '.join(missing)} (R,G,B in 0..255 units, e.g. --ir.mean 123.675,116.28,103.53)")
    assert mean is not None and std is not None
    if any(v == 0 for v in std):
        raise UserError(f"{path}: rt_info model_info/scale_values {std} contains 0: pass --ir.std")
    return mean, std


def _input_size(options: ForeignIROptions, model: ov.Model, path: Path) -> list[int]:
    shape = model.input(0).get_partial_shape()
    if shape.rank.is_dynamic or shape.rank.get_length() != 4:
        raise UserError(f"{path} takes a {shape} input: only one (B, 3, H, W) image input is supported")
    channels = shape[1]
    if channels.is_static and channels.get_length() != 3:
        raise UserError(f"{path} takes a {shape} input, not (B, 3, H, W) (an NHWC or non-RGB input is not "
                         "supported): convert it with an NCHW layout")
    if options.input_size is not None:
        return [int(v) for v in options.input_size]
    if shape[2].is_static and shape[3].is_static:
        return [shape[2].get_length(), shape[3].get_length()]
    raise UserError(f"{path} has a dynamic input size {shape}: pass --ir.input_size H,W")


def foreign_metadata(model: ov.Model, options: ForeignIROptions | None, path: str | Path) -> dict[str, Any]:
    """The metadata (otx_xai's keys) of a classification IR otx_xai did not export; a one-line error naming
    the ``--ir.*`` flag to pass when something is given neither by the flags nor by the IR's rt_info."""
    options = options or ForeignIROptions()
    path = Path(path)
    info = _model_info(model)
    task = info.get("task_type", "classification").strip().lower() or "classification"
    if task != "classification":
        raise UserError(f"{path} is a {task!r} IR (rt_info model_info/task_type): only a classification IR "
                         "that otx_xai did not export can be explained; export detectors with `otx export`")
    if _bool(info.get("hierarchical", "false")):
        raise UserError(f"{path} is a hierarchical classifier (rt_info model_info/hierarchical): its logits are "
                         "per label group, which otx_xai does not read; only multiclass and multilabel IRs")
    labels = _labels(options, info, path)
    reverse = bool(options.reverse_input_channels)
    mean, std = _preprocessing(options, info, path, reverse)
    multilabel = options.multilabel if options.multilabel is not None else _bool(info.get("multilabel", "false"))
    return {
        "task": "classification",
        "label_names": labels,
        "multilabel": bool(multilabel),
        "explain_method": "none",
        "input_size": _input_size(options, model, path),
        "mean": mean,
        "std": std,
        "letterbox": False,
        "reverse_input_channels": reverse,
        "foreign": True,
    }

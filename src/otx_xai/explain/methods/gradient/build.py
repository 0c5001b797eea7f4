"""The gradient methods by name (through the registry's entries)."""

from __future__ import annotations

from otx_xai.explain.methods.gradient.base import GradientCAM
from otx_xai.explain.registry import load_entry, method_spec


def gradient_method(name: str) -> type[GradientCAM]:
    """The class of the gradient method ``name`` (GradCAM, GradCAMPlusPlus, XGradCAM, LayerCAM)."""
    cls = load_entry(method_spec(name))
    if not (isinstance(cls, type) and issubclass(cls, GradientCAM)):
        raise TypeError(f"{name} is not a gradient CAM")
    return cls

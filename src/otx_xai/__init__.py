"""otx_xai: explain and export --explain stages for Lightning-based vision training."""

from otx_xai.audit.setup import AuditOptions
from otx_xai.engine.engine import Engine
from otx_xai.engine.explain_options import IROptions, MethodOptions, OutputOptions
from otx_xai.explain.black_box.presets import BlackBoxConfig
from otx_xai.explain.callback import ExplainCallback
from otx_xai.explain.config import ExplainConfig, TargetExplainGroup
from otx_xai.explain.sink import ExplainSink, ImageExplanation

__all__ = [
    "AuditOptions",
    "BlackBoxConfig",
    "Engine",
    "ExplainCallback",
    "ExplainConfig",
    "ExplainSink",
    "IROptions",
    "ImageExplanation",
    "MethodOptions",
    "OutputOptions",
    "TargetExplainGroup",
]

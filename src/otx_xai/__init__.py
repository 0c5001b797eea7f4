"""otx_xai: explain and export --explain stages for Lightning-based vision training."""

from otx_xai.engine.engine import Engine
from otx_xai.explain.callback import ExplainCallback
from otx_xai.explain.config import ExplainConfig, TargetExplainGroup
from otx_xai.explain.sink import ExplainSink, ImageExplanation

__all__ = ["Engine", "ExplainCallback", "ExplainConfig", "ExplainSink", "ImageExplanation", "TargetExplainGroup"]

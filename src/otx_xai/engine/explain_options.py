"""The options of ``Engine.explain``, grouped by what they are about (the CLI builds them from its flags).

- ``MethodOptions``: which explain method runs and its settings (``--explain_method``, ``--black_box.*``);
- ``OutputOptions``: what the run leaves behind (``--dump``, ``--resume``; ``keep_results`` for Python);
- ``IROptions``: how an ``.xml`` IR runs (``--ir_precision``, ``--ir.performance_hint``, the foreign-IR
  ``--ir.*`` flags);
- ``audit.setup.AuditOptions``: quality metrics and gates (``--metrics``, ``--sanity_check``, ...).

What the maps show (target group, postprocess, thresholds) stays in ``ExplainConfig``, OTX's own type.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from otx_xai.errors import UserError
from otx_xai.explain.black_box.presets import BlackBoxConfig
from otx_xai.openvino.foreign_metadata import ForeignIROptions


@dataclass
class MethodOptions:
    """Which explain method runs.

    Args:
        name: ``auto`` (the model's own white-box method; AISE for a model with none) or a method of the
            registry (``otx_xai.explain.registry``) that supports the model's task.
        layer: the module a gradient CAM (GradCAM, GradCAMPlusPlus, XGradCAM, LayerCAM) explains at, by
            its traced qualified name, e.g. ``layer3`` (None: the traced last feature map; checkpoint only).
        black_box: settings of the perturbation methods (RISE, D-RISE, AISE).
    """

    name: str = "auto"
    layer: str | None = None
    black_box: BlackBoxConfig = field(default_factory=BlackBoxConfig)


@dataclass
class OutputOptions:
    """What an explain run leaves behind.

    Args:
        dump: write maps, overlays, the index, the CSV and the gallery into a new run folder.
        resume: continue the latest (e.g. killed) explain run of the work_dir: only the images its index
            does not hold yet are explained, and the index is completed.
        keep_results: return one ImageExplanation per image (off: return nothing, hold nothing in memory).
    """

    dump: bool = False
    resume: bool = False
    keep_results: bool = True


@dataclass
class IROptions:
    """How an ``.xml`` IR runs (none of it applies to a checkpoint).

    Args:
        precision: OpenVINO CPU inference precision: ``f32`` (exact) or ``bf16`` (faster, maps move).
        performance_hint: ``auto`` (LATENCY for batches of one image, THROUGHPUT for larger ones, the
            perturbation methods' batches included), ``latency`` or ``throughput``.
        foreign: labels and preprocessing of an IR otx_xai did not export (the ``--ir.*`` flags; what
            they leave out is read from the IR's rt_info).
    """

    precision: str = "f32"
    performance_hint: str = "auto"
    foreign: ForeignIROptions = field(default_factory=ForeignIROptions)

    def require_checkpoint_defaults(self) -> None:
        """One-line error when an IR-only option was given for a checkpoint run."""
        if self.foreign != ForeignIROptions():
            raise UserError("the --ir.* flags describe an .xml IR otx_xai did not export: drop them for a .ckpt")
        if self.precision != "f32":
            raise UserError(f"ir_precision={self.precision!r} applies to an .xml IR: a checkpoint explains in "
                            "torch at its own precision (drop the flag or pass an IR)")
        if self.performance_hint != "auto":
            raise UserError(f"ir_performance_hint={self.performance_hint!r} applies to an .xml IR: drop "
                            "--ir.performance_hint for a .ckpt or pass an IR")


MOVED_KEYWORDS = {  # Engine.explain keywords before the options objects, and where each went
    "keep_results": "output=OutputOptions(keep_results=...)",
    "resume": "output=OutputOptions(resume=...)",
    "explain_method": "method=MethodOptions(name=...)",
    "black_box": "method=MethodOptions(black_box=...)",
    "ir_precision": "ir=IROptions(precision=...)",
    "ir_performance_hint": "ir=IROptions(performance_hint=...)",
    "ir_options": "ir=IROptions(foreign=...)",
    "explain_layer": "method=MethodOptions(layer=...)",
}


def reject_moved_keywords(trainer_kwargs: dict[str, Any]) -> None:
    """A one-line error for an old ``Engine.explain`` keyword (it would otherwise reach the Trainer)."""
    moved = [name for name in trainer_kwargs if name in MOVED_KEYWORDS]
    if moved:
        raise UserError(f"Engine.explain no longer takes {', '.join(moved)}: pass "
                        f"{'; '.join(MOVED_KEYWORDS[name] for name in moved)} (otx_xai.engine.explain_options)")

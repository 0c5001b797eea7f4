"""The explain method of a run (``--explain_method``) and the checkpoint model or IR set up to run it."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from otx_xai.audit.setup import BlackBoxAudit
from otx_xai.errors import UserError
from otx_xai.explain.black_box.module import BlackBoxModule
from otx_xai.explain.black_box.presets import BlackBoxConfig
from otx_xai.explain.black_box.protocol import BlackBoxMethod, black_box_method, black_box_names, is_black_box
from otx_xai.explain.config import ExplainConfig
from otx_xai.explain.entity import ModelInfo
from otx_xai.explain.select import ACTIVATION_MAP, GRADIENT, explain_time_method


@dataclass
class BlackBoxChoice:
    """A black-box method picked for a run, with what the index and the audit need of it."""

    method: BlackBoxMethod
    config: BlackBoxConfig

    def info(self, info: ModelInfo) -> ModelInfo:
        """The model's info with this method as its explain method."""
        return replace(info, explain_method=self.method.name)

    def use_preprocess(self, preprocess: Any) -> None:
        """Tell a method that reads pixels (LIME cuts superpixels of the image as RGB) the input's
        normalization (a ``Preprocess``: mean and std in 0..255 units)."""
        hook = getattr(self.method, "use_preprocess", None)
        if hook is not None:
            hook(preprocess.mean, preprocess.std)

    def audit(self, info: ModelInfo, explain_config: ExplainConfig) -> BlackBoxAudit:
        """What the audit metrics need to re-run the method."""
        return BlackBoxAudit(self.method, self.info(info), explain_config, self.config.batch_size)


def _hparams(model: Any) -> dict[str, Any]:
    return dict(getattr(model, "hparams", {}) or {})


def checkpoint_method(model: Any, requested: str, black_box: BlackBoxConfig, layer: str | None = None
                      ) -> tuple[Any, BlackBoxChoice | None]:
    """The model to explain with the requested method (a copy switched to another white-box method, or to
    another ``layer`` for a gradient CAM, if asked), and the black-box method when one was asked for or
    ``auto`` picked one."""
    task = getattr(model, "task", "classification")
    own = getattr(model, "explain_method", type(model).__name__)
    hparams = _hparams(model)
    has_white_box = own != ACTIVATION_MAP or hparams.get("explain_method") == ACTIVATION_MAP
    name = explain_time_method(str(hparams.get("backbone", type(model).__name__)), task, requested, own,
                               has_white_box, backend="checkpoint")
    if is_black_box(name):
        method = black_box_method(task, name, black_box)
        if layer:  # Score-CAM masks with the named layer's channels
            if not hasattr(method, "layer"):
                raise UserError(f"explain_layer applies to the gradient methods ({', '.join(GRADIENT)}) and "
                                f"ScoreCAM, not {name}: drop --explain_layer or pick one of them")
            method.layer = layer
            method.check_layer(model)
        return model, BlackBoxChoice(method, black_box)
    if layer and name not in GRADIENT:
        raise UserError(f"explain_layer applies to the gradient methods ({', '.join(GRADIENT)}), not {name}: "
                        "drop --explain_layer or pick one of them")
    if name == own and (layer or None) == (hparams.get("explain_layer") or None):
        return model, None
    if "explain_method" not in hparams:
        raise UserError(f"{type(model).__name__} explains with {own} only: use auto, {own} or a black-box "
                         f"method ({', '.join(black_box_names(task))})")
    changes = {"explain_method": name, "weights": None}
    if layer or hparams.get("explain_layer"):
        changes["explain_layer"] = layer or None
    clone = type(model)(**{**hparams, **changes})
    clone.load_state_dict(model.state_dict())
    return clone.eval(), None


def black_box_module(model: Any, choice: BlackBoxChoice, config: ExplainConfig) -> BlackBoxModule:
    """``model`` explained by the chosen black-box method (what the Trainer predicts with)."""
    return BlackBoxModule(model, choice.method, config, choice.config.batch_size)


def check_ir_outputs(ir: Any, method: str, reads: set[str]) -> None:
    """A one-line error, before anything is written, when the IR lacks an output ``method`` reads."""
    missing = sorted(reads - {"logits"} - set(ir.ir_output_names))
    if missing:
        why = f" ({ir.explain_unavailable})" if getattr(ir, "explain_unavailable", None) else ""
        raise UserError(f"{ir.path} has no {', '.join(missing)} output{why}, which {method} needs: export the "
                        "model with `otx export --explain True`, or use RISE or AISE")


def ir_method(ir: Any, requested: str, black_box: BlackBoxConfig) -> BlackBoxChoice | None:
    """The black-box method for an IR (None: its own white-box maps, which it must have). An IR with no
    white-box maps (exported without XAI outputs, or otx_xai's Recipro-CAM could not be inserted into a
    foreign one) is explained with AISE under ``auto``."""
    info = ir.model_info
    has_white_box = (ir.has_xai_outputs and getattr(ir, "explain_unavailable", None) is None
                     and info.explain_method != ACTIVATION_MAP)
    if requested in GRADIENT:
        raise UserError(f"{requested} needs gradients, which an IR does not have: explain the IR with CAM, "
                        f"ScoreCAM, ReciproCAM (each from an IR exported with it) or a black-box method "
                        f"({', '.join(black_box_names(info.task))}), or explain the .ckpt")
    name = explain_time_method(ir.path.name, info.task, requested, info.explain_method, has_white_box,
                               backend="ir")
    if is_black_box(name):
        return BlackBoxChoice(black_box_method(info.task, name, black_box), black_box)
    ir.require_xai_outputs()
    if name != info.explain_method:
        raise UserError(f"{ir.path} was exported with {info.explain_method} maps, not {name}: use auto, a "
                         f"black-box method ({', '.join(black_box_names(info.task))}) or export a model built "
                         f"with explain_method {name}")
    return None

"""Building the audit for an explain run: which metrics, against which model, with which gates."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from otx_xai.audit.evaluator import AuditEvaluator
from otx_xai.audit.sanity import randomized_head_copy
from otx_xai.audit.scorers import BlackBoxScorer, ImageScorer, IRScorer, TorchScorer
from otx_xai.data.transforms import Preprocess
from otx_xai.errors import UserError
from otx_xai.explain.index_summary import gate_values
from otx_xai.metrics import gate_failures


class QualityGateError(UserError):
    """An aggregate metric below its ``--fail_under`` bound; the maps and index are already written."""


@dataclass
class AuditOptions:
    """What to measure on an explain run.

    metrics: names from otx_xai.metrics.METRICS; fail_under: {metric: lowest allowed aggregate};
    sanity_check: re-explain with a randomized classifier head; steps: insertion/deletion steps.
    """

    metrics: list[str] = field(default_factory=list)
    fail_under: dict[str, float] = field(default_factory=dict)
    sanity_check: bool = False
    steps: int = 30

    @property
    def active(self) -> bool:
        return bool(self.metrics or self.fail_under or self.sanity_check)


@dataclass
class BlackBoxAudit:
    """A run explained by a black-box method: the metrics re-run it (``method``) for their maps."""

    method: Any
    info: Any
    config: Any
    batch_size: int


def dataset_has_boxes(datamodule: Any) -> bool:
    """Whether any image the run explains has ground-truth boxes."""
    records = getattr(datamodule, "records", None)
    subsets = getattr(records, "subsets", {}) if records is not None else {}
    return any(record.boxes for record in subsets.get("test", []))


def build_evaluator(
    options: AuditOptions, model: Any, ir: Any, preprocess: Preprocess, multilabel: bool, datamodule: Any,
    black_box: BlackBoxAudit | None = None,
) -> AuditEvaluator | None:
    """The evaluator for a run over ``model`` (torch) or ``ir`` (IRModel), or None when nothing is asked;
    ``black_box``: the run's maps come from that method, not from the model's outputs."""
    if not options.active:
        return None
    metrics = list(dict.fromkeys([*options.metrics, *options.fail_under]))
    if "pointing_game" in metrics and not dataset_has_boxes(datamodule):
        raise UserError("pointing_game needs ground-truth boxes but the explained images have none: add a "
                         "boxes.json (or COCO annotations) to the dataset, or drop pointing_game from --metrics")
    scorer: ImageScorer
    sanity: ImageScorer | None = None
    if ir is not None and options.sanity_check:
        raise UserError("--sanity_check re-explains with a randomized head: it needs a .ckpt, not an IR")
    if black_box is not None:
        scorer = _black_box_scorer(black_box, model, ir, preprocess)
        if options.sanity_check:
            sanity = _black_box_scorer(black_box, randomized_head_copy(model), None, preprocess)
    elif ir is not None:
        scorer = IRScorer(ir, preprocess, multilabel)
    else:
        scorer = TorchScorer(model, preprocess, multilabel)
        if options.sanity_check:
            sanity = TorchScorer(randomized_head_copy(model), preprocess, multilabel)
    return AuditEvaluator(metrics, scorer, options.steps, sanity)


def _black_box_scorer(black_box: BlackBoxAudit, model: Any, ir: Any, preprocess: Preprocess) -> BlackBoxScorer:
    from otx_xai.explain.black_box.runners import ir_runner, method_torch_runner

    run = (ir_runner(ir, black_box.batch_size) if ir is not None
           else method_torch_runner(black_box.method, model, black_box.batch_size))
    return BlackBoxScorer(run, black_box.method, black_box.info, black_box.config, preprocess)


def check_gates(summary: dict[str, Any], options: AuditOptions) -> None:
    """Raise QualityGateError (one line) when an aggregate of the run summary is below its bound."""
    if not options.fail_under:
        return
    failures = gate_failures(gate_values(summary), options.fail_under)
    if failures:
        raise QualityGateError("quality gate failed: " + "; ".join(failures))

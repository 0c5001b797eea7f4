"""ExplainMixin: adds ``explain()`` and ``export(explain=True)`` to the Engine.

``explain`` resolves its options and takes one of three paths, each a function that reads top to bottom:
``_explain_checkpoint`` (Lightning predict in this process), ``_explain_distributed`` (a Trainer with the
``--trainer.*`` settings, e.g. DDP; every rank explains its share) and ``_explain_ir`` (``explain_ir.py``,
the OpenVINO runtime). On a checkpoint, ``_checkpoint_model`` gives the module the Trainer predicts with:
the model itself (its white-box method) or the model wrapped by a perturbation method (the black-box path).
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from otx_xai.audit.setup import AuditOptions, build_evaluator, check_gates
from otx_xai.engine.explain_choice import BlackBoxChoice, black_box_module, checkpoint_method
from otx_xai.engine.explain_ir import IRExplainMixin
from otx_xai.engine.explain_options import IROptions, MethodOptions, OutputOptions, reject_moved_keywords
from otx_xai.engine.runtime_record import torch_runtime
from otx_xai.engine.workdir import new_run_dir
from otx_xai.errors import UserError, WriteError
from otx_xai.explain.callback import ExplainCallback, model_info
from otx_xai.explain.config import ExplainConfig
from otx_xai.explain.distributed import SPAWN_MESSAGE, DistributedExplain, ShardedPredictData, uses_popen
from otx_xai.explain.dump import INDEX_JSON, completed_ids, remove_temp_files
from otx_xai.explain.index_summary import gate_values
from otx_xai.explain.rank_index import merge_rank_indexes
from otx_xai.explain.sink import ExplainSink, ImageExplanation, MapEvaluator
from otx_xai.openvino.ir_file import is_openvino_model
from otx_xai.report import write_contact_sheet, write_csv_index, write_gallery

log = logging.getLogger(__name__)


def _resume_hint(explain: Callable[..., Any]) -> Callable[..., Any]:
    """A dumped run that cannot write a file (disk full) ends with a UserError naming the file and saying that
    ``--resume True`` finishes the run: every file on disk is complete, the index holds what was done."""
    signature = inspect.signature(explain)

    @functools.wraps(explain)
    def explain_with_hint(*args: Any, **kwargs: Any) -> Any:
        try:
            return explain(*args, **kwargs)
        except WriteError as error:
            bound = signature.bind_partial(*args, **kwargs).arguments
            output = bound.get("output")
            if not (bound.get("dump") or getattr(output, "dump", False)):
                raise
            raise UserError(f"{error}, then rerun the same command with --resume True to finish the run") from None

    return explain_with_hint




@dataclass
class CheckpointExplain:
    """What a checkpoint run predicts with: the module, the index header, the audit's evaluator."""

    model: Any
    header: dict[str, Any]
    evaluator: MapEvaluator | None


def _require_an_explained_image(sink: ExplainSink, run_dir: Path) -> None:
    """A run in which no file could be read is an error (exit 1), once its index, CSV and gallery are written."""
    failed = sink.summary.get("failed", 0)
    if sink.summary.get("explained", 0) == 0 and failed:
        where = f"{run_dir / INDEX_JSON} says why for each" if sink.run_dir is not None else "the warnings say why"
        raise UserError(f"no image could be read: all {failed} files were skipped ({where}); pass a folder of "
                        "images OpenCV or Pillow can decode")


class ExplainMixin(IRExplainMixin):
    """Explain stages of an engine; needs ``model``, ``datamodule``, ``recipe``, ``_trainer``, ``_record``."""

    last_explain_dir: Path | None = None
    last_explain_summary: dict[str, Any] | None = None

    @_resume_hint
    def explain(
        self,
        checkpoint: str | Path | None = None,
        explain_config: ExplainConfig | None = None,
        dump: bool = False,
        *,
        method: MethodOptions | None = None,
        output: OutputOptions | None = None,
        audit: AuditOptions | None = None,
        ir: IROptions | None = None,
        **trainer_kwargs: Any,
    ) -> list[ImageExplanation]:
        """Predict and explain the test subset (or every image of an unlabelled folder).

        Args:
            checkpoint: a ``.ckpt``, or an IR exported with ``explain=True`` (None: the engine's own).
            explain_config: which maps and how they are presented (OTX's ExplainConfig).
            dump: write the maps and their index into a new run folder (the same as ``output.dump``).
            method: the explain method (``auto``, or a registry name) and its settings.
            output: dump, resume (continue the latest, e.g. killed, run: only the images its index does
                not hold are explained) and whether results are returned.
            audit: quality metrics per image (written to the index), the sanity check and ``fail_under``
                gates (QualityGateError once everything is written).
            ir: how an ``.xml`` IR runs: precision, performance hint, the labels and preprocessing of an
                IR otx_xai did not export (Recipro-CAM is inserted into its graph). The index header
                records what ran (``runtime``).
            trainer_kwargs: ``devices``, ``strategy``, ``num_nodes``, ``accelerator`` for lightning.Trainer:
                with ``strategy="ddp"`` and several devices or nodes every process explains its share of
                the images and global rank 0 merges their indexes into one.

        Returns one ImageExplanation per readable image explained by this call (by this process; none
        when ``output.keep_results`` is off).
        """
        reject_moved_keywords(trainer_kwargs)
        config = explain_config or ExplainConfig()
        method = method or MethodOptions()
        output = replace(output or OutputOptions(), dump=bool(dump or (output and output.dump)))
        if output.resume and not output.dump:  # checked first: a run that cannot resume must not move .latest
            raise UserError("--resume True continues the latest dumped explain run: add --dump True (without "
                            "--dump nothing is written, so there is nothing to resume)")
        audit = audit or AuditOptions()
        ir = ir or IROptions()
        if checkpoint is not None:
            self._use_checkpoint(str(checkpoint))
        if is_openvino_model(self.checkpoint):  # an IR (.xml) or an ONNX file: OpenVINO runs it
            if trainer_kwargs:
                raise UserError("an IR is explained by OpenVINO in one process: drop the --trainer flags "
                                "or pass a .ckpt")
            return self._explain_ir(config, method, output, audit, ir)
        ir.require_checkpoint_defaults()
        if trainer_kwargs:
            return self._explain_distributed(config, method, output, audit, trainer_kwargs)
        return self._explain_checkpoint(config, method, output, audit)

    def _explain_checkpoint(self, config: ExplainConfig, method: MethodOptions, output: OutputOptions,
                            audit: AuditOptions) -> list[ImageExplanation]:
        """Lightning predict in this process, the ExplainCallback handing every batch to the sink."""
        run = self._checkpoint_model(config, method, audit, {})
        run_dir = self._start_run(self.datamodule, output.resume and output.dump)
        sink = ExplainSink(config, run_dir if output.dump else None, run.header, output.keep_results,
                           run.evaluator)
        if self.datamodule.predict_records():
            trainer = self._trainer(run_dir, callbacks=[ExplainCallback(sink)])
            trainer.predict(run.model, datamodule=self.datamodule, return_predictions=False)
        return self._finish_explain(sink, run_dir, audit)

    def _explain_distributed(self, config: ExplainConfig, method: MethodOptions, output: OutputOptions,
                             audit: AuditOptions, trainer_kwargs: dict[str, Any]) -> list[ImageExplanation]:
        """Explain through a Trainer made with ``trainer_kwargs`` (e.g. DDP over several processes or nodes).

        Every rank runs this; global rank 0 creates the run folder inside the run (DistributedExplain) and,
        once every rank is done, merges the indexes and writes run.json, the CSV and the gallery.
        """
        run = self._checkpoint_model(config, method, audit, trainer_kwargs)
        sink = ExplainSink(config, None, run.header, output.keep_results, run.evaluator)
        datamodule = self.datamodule

        def start_run() -> Path:  # on global rank 0, once the processes are up
            return self._start_run(datamodule, output.resume and output.dump)

        sharing = DistributedExplain(sink, datamodule, start_run, output.dump)
        trainer = self._trainer(self.work_dir, logger=False, callbacks=[ExplainCallback(sink), sharing],
                                use_distributed_sampler=False, **trainer_kwargs)  # sharded by ShardedPredictData
        if not uses_popen(trainer):
            raise UserError(SPAWN_MESSAGE)
        trainer.predict(run.model, datamodule=ShardedPredictData(datamodule), return_predictions=False)
        if sharing.rank != 0 or sharing.run_dir is None:
            return sink.finish()
        return self._finish_explain(sink, sharing.run_dir, audit)

    def _checkpoint_model(self, config: ExplainConfig, method: MethodOptions, audit: AuditOptions,
                          trainer_kwargs: dict[str, Any]) -> CheckpointExplain:
        """The module to predict with: the model with the requested white-box method, or (the black-box
        path) the model wrapped by the perturbation method; the audit is set up on the plain model."""
        model, choice = checkpoint_method(self.model, method.name, method.black_box, method.layer)
        if choice is not None:
            choice.use_preprocess(self.recipe.data.preprocess())
        info = model_info(model)
        evaluator = build_evaluator(audit, model, None, self.recipe.data.preprocess(), info.multilabel,
                                    self.datamodule, choice.audit(info, config) if choice else None)
        if choice is not None:
            model = black_box_module(model, choice, config)
            info = model_info(model)
        header = self._index_header(info, config, torch_runtime(model, trainer_kwargs), choice)
        settings = model.explain_settings() if hasattr(model, "explain_settings") else {}
        if settings:  # a gradient CAM: its layer and chunk bound
            header["explain_settings"] = {**settings, "chunk": config.max_explain_chunk}
        return CheckpointExplain(model, header, evaluator)

    def _start_run(self, datamodule: Any, resume: bool) -> Path:
        """The run folder (the latest explain run when resuming) marked as running, and what it holds."""
        latest = self.work_dir / ".latest" / "explain"
        if resume and latest.is_dir():
            run_dir = latest.resolve()
            remove_temp_files(run_dir)
            merge_rank_indexes(run_dir)  # a killed distributed run's per-rank indexes
            datamodule.exclude_ids = completed_ids(run_dir)
            log.info("resuming %s: %d images already explained", run_dir, len(datamodule.exclude_ids))
        else:
            run_dir = new_run_dir(self.work_dir)
        self._record(run_dir, "explain", checkpoint=self.checkpoint, status="running")
        return run_dir

    def _use_checkpoint(self, checkpoint: str) -> None:
        if checkpoint != self.checkpoint:
            self.checkpoint = checkpoint
            self._module = None

    def _index_header(self, info: Any, config: ExplainConfig, runtime: dict[str, Any],
                      black_box: BlackBoxChoice | None = None) -> dict[str, Any]:
        header = {"checkpoint": self.checkpoint, "data_root": self.data_root, "task": info.task,
                  "label_names": info.label_names, "explain_method": info.explain_method,
                  "explain_config": {**asdict(config), "target_explain_group": config.target_explain_group.value},
                  "runtime": runtime}
        if black_box is not None:  # what the method ran with: masks, cells, prob, seed / iterations, widths
            header["explain_settings"] = black_box.method.settings()
        return header

    def _finish_explain(self, sink: ExplainSink, run_dir: Path, audit: AuditOptions) -> list[ImageExplanation]:
        results = sink.finish()
        self._record(run_dir, "explain", checkpoint=self.checkpoint, status="complete",
                     counts={k: sink.summary[k] for k in ("explained", "failed", "files")})
        self.last_explain_dir = run_dir
        log.info("explained %d images (%d unreadable) into %s", sink.summary["explained"],
                 sink.summary["failed"], run_dir)
        self.last_explain_summary = sink.summary
        if sink.run_dir is not None:  # dumped: the spreadsheet twin of the index, the gallery, contact sheets
            write_csv_index(run_dir)
            write_gallery(run_dir)
            measured = gate_values(sink.summary)
            for metric in dict.fromkeys([*audit.metrics, *audit.fail_under]):
                if metric in measured:
                    write_contact_sheet(run_dir, metric)
        _require_an_explained_image(sink, run_dir)
        check_gates(sink.summary, audit)
        return results

    def export(self, explain: bool = False) -> Path:
        """Write ``exported_model.xml/.bin``; with ``explain`` the IR also outputs feature_vector,
        saliency_map and feature_map."""
        return self._export(explain=explain)

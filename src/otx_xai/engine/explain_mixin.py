"""ExplainMixin: adds ``explain()`` and ``export(explain=True)`` to the Engine."""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from otx_xai.audit.setup import AuditOptions, build_evaluator, check_gates
from otx_xai.engine.explain_choice import (
    BlackBoxChoice,
    black_box_module,
    check_ir_outputs,
    checkpoint_method,
    ir_method,
)
from otx_xai.engine.progress import image_bar
from otx_xai.engine.runtime_record import openvino_runtime, torch_runtime
from otx_xai.engine.workdir import new_run_dir
from otx_xai.errors import UserError, WriteError
from otx_xai.explain.black_box.predict import predict_black_box
from otx_xai.explain.black_box.presets import BlackBoxConfig
from otx_xai.explain.black_box.protocol import black_box_outputs, is_black_box
from otx_xai.explain.black_box.runners import ir_runner
from otx_xai.explain.callback import ExplainCallback, model_info
from otx_xai.explain.config import ExplainConfig
from otx_xai.explain.distributed import SPAWN_MESSAGE, DistributedExplain, ShardedPredictData, uses_popen
from otx_xai.explain.dump import completed_ids, remove_temp_files
from otx_xai.explain.index_summary import gate_values
from otx_xai.explain.rank_index import merge_rank_indexes
from otx_xai.explain.saliency import unread_outputs
from otx_xai.explain.sink import ExplainSink, ImageExplanation
from otx_xai.openvino.foreign_metadata import ForeignIROptions
from otx_xai.openvino.inference import IRModel
from otx_xai.openvino.metadata import BOX_SALIENCY_MAP, XAI_OUTPUTS
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


class ExplainMixin:
    """Explain stages of an engine; needs ``model``, ``datamodule``, ``recipe``, ``_trainer``, ``_record``."""

    last_explain_dir: Path | None = None
    last_explain_summary: dict[str, Any] | None = None

    @_resume_hint
    def explain(
        self,
        checkpoint: str | Path | None = None,
        explain_config: ExplainConfig | None = None,
        dump: bool = False,
        keep_results: bool = True,
        audit: AuditOptions | None = None,
        resume: bool = False,
        ir_precision: str = "f32",
        ir_options: ForeignIROptions | None = None,
        explain_method: str = "auto",
        black_box: BlackBoxConfig | None = None,
        ir_performance_hint: str = "auto",
        explain_layer: str | None = None,
        **trainer_kwargs: Any,
    ) -> list[ImageExplanation]:
        """Predict and explain the test subset (or every image of an unlabelled folder).

        ``checkpoint`` may be a ``.ckpt`` or an IR exported with ``explain=True``; maps are dumped into
        a new run folder when ``dump`` is set. ``audit`` adds quality metrics per image (written to the
        index), the sanity check and ``fail_under`` gates (QualityGateError once everything is written).
        ``resume`` continues the latest explain run of the work_dir (e.g. one that was killed): only the
        images its index does not hold yet are explained, and the index is completed.
        ``ir_precision`` is the OpenVINO CPU inference precision of an IR ("f32", exact, or "bf16"); the
        index header records what ran (``runtime``: backend, version, precision, threads or requests).
        ``ir_performance_hint`` compiles an IR for a workload: "auto" (the LATENCY hint for batches of
        one image, THROUGHPUT for larger ones, the black-box methods' perturbed batches included),
        "latency" or "throughput" (every batch size); ``runtime.compiled_hints`` records what ran.
        ``ir_options`` give the labels and preprocessing of an IR otx_xai did not export (the ``--ir.*``
        flags; what they leave out is read from the IR's rt_info); Recipro-CAM is inserted into its graph.
        ``trainer_kwargs`` (``devices``, ``strategy``, ``num_nodes``, ``accelerator``) go to the
        lightning.Trainer: with ``strategy="ddp"`` and several devices or nodes every process explains its
        share of the images and global rank 0 merges their indexes into one.
        ``explain_method`` picks the algorithm at explain time: ``auto`` (the model's own white-box method;
        AISE for a model with none), a white-box name (ReciproCAM, ViTReciproCAM, ActivationMap, ...) or a
        black-box one (RISE, AISE; ``black_box`` holds their settings). ``explain_layer`` names the module a
        gradient CAM (GradCAM, GradCAMPlusPlus, XGradCAM, LayerCAM) explains at instead of the traced cut.
        Returns one ImageExplanation per readable image explained by this call (by this process).
        """
        config = explain_config or ExplainConfig()
        audit = audit or AuditOptions()
        black_box = black_box or BlackBoxConfig()
        if checkpoint is not None:
            self._use_checkpoint(str(checkpoint))
        if self.checkpoint and self.checkpoint.endswith(".xml"):
            if trainer_kwargs:
                raise UserError("an IR is explained by OpenVINO in one process: drop the --trainer flags "
                                 "or pass a .ckpt")
            if explain_layer:
                raise UserError("explain_layer picks a layer of a checkpoint for a gradient CAM; an IR has no "
                                "gradients: drop --explain_layer or pass a .ckpt")
            return self._explain_ir(config, dump, keep_results, audit, resume, ir_precision, ir_options,
                                    explain_method, black_box, ir_performance_hint)
        if ir_options is not None and ir_options != ForeignIROptions():
            raise UserError("the --ir.* flags describe an .xml IR otx_xai did not export: drop them for a .ckpt")
        if ir_precision != "f32":
            raise UserError(f"ir_precision={ir_precision!r} applies to an .xml IR: a checkpoint explains in "
                             "torch at its own precision (drop the flag or pass an IR)")
        if ir_performance_hint != "auto":
            raise UserError(f"ir_performance_hint={ir_performance_hint!r} applies to an .xml IR: drop "
                            "--ir.performance_hint for a .ckpt or pass an IR")
        model, choice = checkpoint_method(self.model, explain_method, black_box, explain_layer)
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
        if trainer_kwargs:
            sink = ExplainSink(config, None, header, keep_results, evaluator)
            return self._explain_with_trainer(model, sink, dump, audit, resume, trainer_kwargs)
        run_dir = self._start_run(self.datamodule, resume and dump)
        sink = ExplainSink(config, run_dir if dump else None, header, keep_results, evaluator)
        if self.datamodule.predict_records():
            trainer = self._trainer(run_dir, callbacks=[ExplainCallback(sink)])
            trainer.predict(model, datamodule=self.datamodule, return_predictions=False)
        return self._finish_explain(sink, run_dir, audit)

    def _explain_with_trainer(
        self, model: Any, sink: ExplainSink, dump: bool, audit: AuditOptions, resume: bool,
        trainer_kwargs: dict[str, Any],
    ) -> list[ImageExplanation]:
        """Explain through a Trainer made with ``trainer_kwargs`` (e.g. DDP over several processes or nodes).

        Every rank runs this; global rank 0 creates the run folder inside the run (DistributedExplain) and,
        once every rank is done, merges the indexes and writes run.json, the CSV and the gallery.
        """
        datamodule = self.datamodule
        sharing = DistributedExplain(sink, datamodule, lambda: self._start_run(datamodule, resume and dump), dump)
        trainer = self._trainer(self.work_dir, logger=False, callbacks=[ExplainCallback(sink), sharing],
                                use_distributed_sampler=False, **trainer_kwargs)  # sharded by ShardedPredictData
        if not uses_popen(trainer):
            raise UserError(SPAWN_MESSAGE)
        trainer.predict(model, datamodule=ShardedPredictData(datamodule), return_predictions=False)
        if sharing.rank != 0 or sharing.run_dir is None:
            return sink.finish()
        return self._finish_explain(sink, sharing.run_dir, audit)

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

    def _explain_ir(
        self, config: ExplainConfig, dump: bool, keep_results: bool, audit: AuditOptions, resume: bool,
        precision: str, ir_options: ForeignIROptions | None, explain_method: str, black_box: BlackBoxConfig,
        hint: str = "auto",
    ) -> list[ImageExplanation]:
        white_box = {*XAI_OUTPUTS, BOX_SALIENCY_MAP}
        reads = black_box_outputs(explain_method)  # e.g. Score-CAM's feature_map
        skip = (unread_outputs(config) | (white_box if is_black_box(explain_method) else set())) - reads
        ir = IRModel(self.checkpoint, precision=precision, skip_outputs=skip, foreign=ir_options,
                     performance_hint=hint)
        choice = ir_method(ir, explain_method, black_box)
        if choice is not None:
            reads = set(getattr(choice.method, "outputs", ()))
            check_ir_outputs(ir, choice.method.name, reads)
            if (white_box - reads) & set(ir.output_names):  # black-box: plain outputs (and what it reads) only
                ir = IRModel(self.checkpoint, precision=precision, skip_outputs=white_box - reads,
                             foreign=ir_options, performance_hint=hint)
        datamodule = self._ir_datamodule(ir)
        self._check_ir_labels(ir, datamodule)
        info = ir.model_info
        preprocess = ir.data_config().preprocess()
        if choice is not None:
            choice.use_preprocess(preprocess)
        evaluator = build_evaluator(audit, None, ir, preprocess, info.multilabel, datamodule,
                                    choice.audit(info, config) if choice else None)
        if choice is not None:
            info = choice.info(info)
        run_dir = self._start_run(datamodule, resume and dump)
        sink = ExplainSink(config, run_dir if dump else None,
                           self._index_header(info, config, openvino_runtime(ir), choice), keep_results, evaluator)
        loader = datamodule.predict_dataloader()
        predictions = (ir.predict(loader) if choice is None else
                       predict_black_box(loader, choice.method, ir_runner(ir, black_box.batch_size), info, config))
        with image_bar(len(loader.dataset), "explain (IR)") as bar:
            for prediction, failed in predictions:
                if prediction is None:
                    sink.consume_failures(failed)
                else:
                    sink.consume(prediction, failed)
                bar.update((len(prediction) if prediction is not None else 0) + len(failed or []))
        sink.update_runtime(openvino_runtime(ir))  # now with the batch sizes compiled on the way
        return self._finish_explain(sink, run_dir, audit)

    def _ir_datamodule(self, ir: IRModel) -> Any:
        from otx_xai.engine.tasks import build_datamodule

        data = ir.data_config(self.recipe.data.batch_size)
        if ir.meta.get("foreign"):  # settings from --ir.* flags or the IR's rt_info: run.json records them
            self.recipe = replace(self.recipe, data=data)
        if self.data_root is None:
            raise UserError("no data_root: pass --data_root (the images to explain)")
        return build_datamodule(ir.model_info.task, self.data_root, data)

    def _check_ir_labels(self, ir: IRModel, datamodule: Any) -> None:
        labels = datamodule.label_names
        if labels and labels != ir.model_info.label_names:
            raise UserError(f"{ir.path} was exported with labels {ir.model_info.label_names} but the dataset "
                             f"has {labels}: use matching data or model")

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
        check_gates(sink.summary, audit)
        return results

    def export(self, explain: bool = False) -> Path:
        """Write ``exported_model.xml/.bin``; with ``explain`` the IR also outputs feature_vector,
        saliency_map and feature_map."""
        return self._export(explain=explain)

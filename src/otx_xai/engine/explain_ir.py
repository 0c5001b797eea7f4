"""The IR path of ``Engine.explain``: an ``.xml`` IR explained by the OpenVINO runtime in one process,
with its own maps (exported with ``explain=True``) or a perturbation method's."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from otx_xai.audit.setup import AuditOptions, build_evaluator
from otx_xai.engine.explain_choice import BlackBoxChoice, check_ir_outputs, ir_method
from otx_xai.engine.explain_options import IROptions, MethodOptions, OutputOptions
from otx_xai.engine.progress import image_bar
from otx_xai.engine.runtime_record import openvino_runtime
from otx_xai.errors import UserError
from otx_xai.explain.black_box.predict import predict_black_box
from otx_xai.explain.black_box.protocol import black_box_outputs, is_black_box
from otx_xai.explain.black_box.runners import ir_runner
from otx_xai.explain.config import ExplainConfig
from otx_xai.explain.saliency import unread_outputs
from otx_xai.explain.sink import ExplainSink, ImageExplanation
from otx_xai.openvino.inference import IRModel
from otx_xai.openvino.metadata import BOX_SALIENCY_MAP, XAI_OUTPUTS

WHITE_BOX_OUTPUTS = frozenset({*XAI_OUTPUTS, BOX_SALIENCY_MAP})


class IRExplainMixin:
    """``_explain_ir`` for the ExplainMixin; needs ``checkpoint``, ``recipe``, ``data_root`` and the
    ExplainMixin's ``_start_run``, ``_index_header`` and ``_finish_explain``."""

    checkpoint: str | None
    recipe: Any
    data_root: str | Path | None

    def _explain_ir(self, config: ExplainConfig, method: MethodOptions, output: OutputOptions,
                    audit: AuditOptions, ir_options: IROptions) -> list[ImageExplanation]:
        """Load the IR (without the outputs nobody reads), pick its method, explain its data in one process."""
        ir, choice = self._load_ir(config, method, ir_options)
        datamodule = self._ir_datamodule(ir)
        info = ir.model_info
        preprocess = ir.data_config().preprocess()
        if choice is not None:
            choice.use_preprocess(preprocess)
        evaluator = build_evaluator(audit, None, ir, preprocess, info.multilabel, datamodule,
                                    choice.audit(info, config) if choice else None)
        if choice is not None:
            info = choice.info(info)
        run_dir = self._start_run(datamodule, output.resume and output.dump)
        header = self._index_header(info, config, openvino_runtime(ir), choice)
        sink = ExplainSink(config, run_dir if output.dump else None, header, output.keep_results, evaluator)
        loader = datamodule.predict_dataloader()
        with image_bar(len(loader.dataset), "explain (IR)") as bar:
            for prediction, failed in _ir_predictions(ir, loader, choice, info, config):
                if prediction is None:
                    sink.consume_failures(failed)
                else:
                    sink.consume(prediction, failed)
                bar.update((len(prediction) if prediction is not None else 0) + len(failed or []))
        sink.update_runtime(openvino_runtime(ir))  # now with the batch sizes compiled on the way
        return self._finish_explain(sink, run_dir, audit)

    def _load_ir(self, config: ExplainConfig, method: MethodOptions,
                 ir_options: IROptions) -> tuple[IRModel, BlackBoxChoice | None]:
        """The IR compiled for the run and the perturbation method chosen for it (None: its own maps)."""
        if method.layer:
            raise UserError("explain_layer picks a layer of a checkpoint for a gradient CAM; an IR has no "
                            "gradients: drop --explain_layer or pass a .ckpt")
        reads = black_box_outputs(method.name)  # outputs a perturbation method reads, e.g. Score-CAM's feature_map
        skip = (unread_outputs(config) | (WHITE_BOX_OUTPUTS if is_black_box(method.name) else set())) - reads
        ir = self._compile_ir(skip, ir_options)
        choice = ir_method(ir, method.name, method.black_box)
        if choice is not None:
            reads = set(getattr(choice.method, "outputs", ()))
            check_ir_outputs(ir, choice.method.name, reads)
            if (WHITE_BOX_OUTPUTS - reads) & set(ir.output_names):  # plain outputs (and what it reads) only
                ir = self._compile_ir(WHITE_BOX_OUTPUTS - reads, ir_options)
        return ir, choice

    def _compile_ir(self, skip_outputs: set[str] | frozenset[str], ir_options: IROptions) -> IRModel:
        return IRModel(self.checkpoint, precision=ir_options.precision, skip_outputs=set(skip_outputs),
                       foreign=ir_options.foreign, performance_hint=ir_options.performance_hint)

    def _ir_datamodule(self, ir: IRModel) -> Any:
        """The data to explain, preprocessed as the IR expects; its labels must be the IR's."""
        from otx_xai.engine.tasks import build_datamodule

        data = ir.data_config(self.recipe.data.batch_size)
        if ir.meta.get("foreign"):  # settings from --ir.* flags or the IR's rt_info: run.json records them
            self.recipe = replace(self.recipe, data=data)
        if self.data_root is None:
            raise UserError("no data_root: pass --data_root (the images to explain)")
        datamodule = build_datamodule(ir.model_info.task, self.data_root, data)
        labels = datamodule.label_names
        if labels and labels != ir.model_info.label_names:
            raise UserError(f"{ir.path} was exported with labels {ir.model_info.label_names} but the dataset "
                            f"has {labels}: use matching data or model")
        return datamodule


def _ir_predictions(ir: IRModel, loader: Any, choice: BlackBoxChoice | None, info: Any,
                    config: ExplainConfig) -> Iterator[tuple[Any, Any]]:
    """(PredictionBatch or None, failures) per batch: the IR's own maps, or the perturbation method's."""
    if choice is None:
        return ir.predict(loader)
    return predict_black_box(loader, choice.method, ir_runner(ir, choice.config.batch_size), info, config)

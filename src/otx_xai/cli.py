"""The ``otx`` / ``otx-xai`` command line: train, test, predict, export and explain.

A recipe YAML given with ``--config`` fills the ``task``, ``model``, ``data`` and ``max_epochs``
flags; any YAML of the same flags works the same way, and command-line flags override both.
"""

from __future__ import annotations

import logging
import os
import sys
from argparse import ArgumentError
from dataclasses import fields
from typing import Any

from jsonargparse import ActionConfigFile, ArgumentParser, Namespace

from otx_xai.data.datamodule import DataConfig
from otx_xai.errors import DEBUG_VARIABLE, UserError, internal_error_line, one_line, user_error_line
from otx_xai.explain.black_box.presets import BlackBoxConfig
from otx_xai.explain.config import ExplainConfig
from otx_xai.explain.registry import METHODS
from otx_xai.openvino.foreign_metadata import ForeignIROptions
from otx_xai.quiet import quiet
from otx_xai.report.numbers import for_people

STAGES = {
    "train": "train a model from a recipe on a dataset",
    "test": "evaluate a checkpoint on the test subset",
    "predict": "predict the test subset (or a folder of images)",
    "export": "export a checkpoint to OpenVINO IR (--explain True adds the XAI outputs)",
    "explain": "predict and explain; --dump True writes the maps and an index",
}


def _stage_parser(stage: str) -> ArgumentParser:
    parser = ArgumentParser(prog=f"otx {stage}", description=STAGES[stage], exit_on_error=False)
    parser.add_argument("--config", action=ActionConfigFile, help="recipe YAML, or a YAML of these flags")
    parser.add_argument("--work_dir", type=str, default="otx-workspace", help="folder of the run folders")
    parser.add_argument("--data_root", type=str | None, default=None, help="dataset folder")
    parser.add_argument("--checkpoint", type=str | None, default=None, help=".ckpt, or for explain an .xml IR")
    parser.add_argument("--task", type=str | None, default=None, help="classification, detection, ...")
    parser.add_argument("--model.class_path", type=str | None, default=None, help="LightningModule class")
    parser.add_argument("--model.init_args", type=dict, default={}, help="its arguments")
    parser.add_argument("--model.label_names_file", type=str | None, default=None,
                        help="labels when the data has none: a file (one name per line) or 'torchvision'")
    parser.add_class_arguments(DataConfig, "data")
    parser.add_argument("--max_epochs", type=int | None, default=None, help="training epochs")
    if stage == "train":
        parser.add_argument("--seed", type=int, default=0, help="random seed")
        parser.add_argument("--explain_probes", type=int, default=0,
                            help="log overlays of N validation images after each epoch (TensorBoard + PNG)")
        parser.add_argument("--explain_probes_method", type=str, default="auto",
                            help="the probes' maps: auto (the model's own method) or a method that runs the "
                            "model (ScoreCAM, RISE, AISE, Occlusion, LIME, IGOS, ...)")
    if stage == "export":
        parser.add_argument("--explain", type=bool, default=False, help="add saliency_map, feature_vector, "
                            "feature_map outputs")
    if stage == "explain":
        parser.add_argument("--dump", type=bool, default=False, help="write maps, overlays and the index")
        parser.add_argument("--resume", type=bool, default=False,
                            help="continue the latest (e.g. killed) explain run: explain only missing images")
        parser.add_class_arguments(ExplainConfig, "explain_config")
        parser.add_argument("--explain_method", type=str, default="auto",
                            help="auto (the model's own method; AISE for a model with no white-box one) or one of "
                            f"{', '.join(spec.name for spec in METHODS)} (settings of the perturbation methods "
                            "under --black_box.*)")
        parser.add_argument("--explain_layer", type=str | None, default=None,
                            help="the module a gradient CAM (GradCAM, GradCAMPlusPlus, XGradCAM, LayerCAM) explains "
                            "at, by name (e.g. layer3); default: the traced last feature map")
        parser.add_class_arguments(BlackBoxConfig, "black_box")
        parser.add_argument("--ir_precision", type=str, default="f32",
                            help="OpenVINO CPU precision for an .xml IR: f32 (exact) or bf16 (faster, maps move)")
        parser.add_class_arguments(ForeignIROptions, "ir")
        parser.add_argument("--ir.performance_hint", type=str, default="auto",
                            help="OpenVINO hint for an .xml IR: auto (latency for batches of one image, "
                            "throughput otherwise), latency or throughput")
        parser.add_argument("--metrics", type=str | None, default=None,
                            help="quality metrics per image: pointing_game,insertion_deletion,adcc")
        parser.add_argument("--metric_steps", type=int, default=30, help="insertion/deletion steps")
        parser.add_argument("--sanity_check", type=bool, default=False,
                            help="re-explain with a randomized classifier head and report map similarity")
        parser.add_argument("--fail_under", type=str | None, default=None,
                            help="quality gates, e.g. pointing_game=0.8,insertion_deletion=0.2: exit 1 if below")
        _add_trainer_arguments(parser)
    return parser


TRAINER_FLAGS = ("devices", "strategy", "num_nodes", "accelerator")


def _add_trainer_arguments(parser: ArgumentParser) -> None:
    """``--trainer.*`` flags passed through to lightning.Trainer (distributed explain)."""
    parser.add_argument("--trainer.devices", type=int | str | None, default=None,
                        help="processes (CPU) or devices per node, e.g. 2 with --trainer.strategy ddp")
    parser.add_argument("--trainer.strategy", type=str | None, default=None,
                        help="Lightning strategy: ddp explains with one process per device")
    parser.add_argument("--trainer.num_nodes", type=int | None, default=None,
                        help="machines (each runs the same command with NODE_RANK set)")
    parser.add_argument("--trainer.accelerator", type=str | None, default=None, help="cpu (default), gpu, auto")


def _trainer_options(args: Namespace) -> dict[str, Any]:
    """The ``--trainer.*`` flags that were given."""
    return {name: getattr(args.trainer, name) for name in TRAINER_FLAGS if getattr(args.trainer, name) is not None}


def _audit_options(args: Namespace) -> Any:
    from otx_xai.audit.setup import AuditOptions
    from otx_xai.metrics import parse_fail_under, parse_metric_names

    return AuditOptions(metrics=parse_metric_names(args.metrics) if args.metrics else [],
                        fail_under=parse_fail_under(args.fail_under) if args.fail_under else {},
                        sanity_check=args.sanity_check, steps=args.metric_steps)


def _method_options(args: Namespace) -> Any:
    from otx_xai.engine.explain_options import MethodOptions

    black_box = BlackBoxConfig(**{f.name: getattr(args.black_box, f.name) for f in fields(BlackBoxConfig)})
    return MethodOptions(name=args.explain_method, layer=args.explain_layer, black_box=black_box)


def _output_options(args: Namespace) -> Any:
    from otx_xai.engine.explain_options import OutputOptions

    return OutputOptions(dump=args.dump, resume=args.resume, keep_results=False)


def _ir_options(args: Namespace) -> Any:
    from otx_xai.engine.explain_options import IROptions

    foreign = ForeignIROptions(**{f.name: getattr(args.ir, f.name) for f in fields(ForeignIROptions)})
    return IROptions(precision=args.ir_precision, performance_hint=args.ir.performance_hint, foreign=foreign)


def build_parser() -> ArgumentParser:
    """The whole ``otx`` parser with one subcommand per stage."""
    parser = ArgumentParser(prog="otx", description="otx_xai: train, export and explain vision models",
                            exit_on_error=False)
    subcommands = parser.add_subcommands(dest="stage")
    for stage, help_text in STAGES.items():
        subcommands.add_subcommand(stage, _stage_parser(stage), help=help_text)
    return parser


def _recipe_values(args: Namespace) -> dict[str, Any] | None:
    """Recipe dict from the flags, or None when no recipe (model class) was given."""
    if not args.model.class_path:
        return None
    data = {f.name: getattr(args.data, f.name) for f in fields(DataConfig)}
    return {"task": args.task or "classification",
            "model": {"class_path": args.model.class_path, "init_args": dict(args.model.init_args),
                      "label_names_file": args.model.label_names_file},
            "data": data, "max_epochs": args.max_epochs or 10}


def _data_overrides(args: Namespace) -> dict[str, Any]:
    """Data flags whose value differs from the default: they override a stored recipe."""
    default = DataConfig()
    values = {f.name: getattr(args.data, f.name) for f in fields(DataConfig)}
    return {k: v for k, v in values.items() if v != getattr(default, k)
            and not (k == "input_size" and tuple(v) == tuple(default.input_size))}


def _engine(args: Namespace) -> Any:
    from otx_xai.engine.engine import Engine
    from otx_xai.engine.recipe import recipe_from_dict

    recipe = _recipe_values(args)
    checkpoint = args.checkpoint
    if recipe is not None:
        engine = Engine(model=recipe_from_dict(recipe, "--config"), data_root=args.data_root,
                        work_dir=args.work_dir, checkpoint=checkpoint)
    else:
        engine = Engine(data_root=args.data_root, work_dir=args.work_dir, checkpoint=checkpoint)
        for key, value in _data_overrides(args).items():
            setattr(engine.recipe.data, key, tuple(value) if key == "input_size" else value)
    return engine


def run(stage: str, args: Namespace) -> int:
    """Run one stage with parsed arguments; print a short summary."""
    engine = _engine(args)
    if stage == "train":
        metrics = engine.train(max_epochs=args.max_epochs, seed=args.seed, explain_probes=args.explain_probes,
                               explain_probes_method=args.explain_probes_method)
        print(f"best checkpoint: {engine.checkpoint}")
        print("metrics: " + ", ".join(f"{k}={for_people(v)}" for k, v in sorted(metrics.items())))
    elif stage == "test":
        metrics = engine.test()
        print("metrics: " + ", ".join(f"{k}={for_people(v)}" for k, v in sorted(metrics.items())))
    elif stage == "predict":
        batches = engine.predict()
        print(f"predicted {sum(len(b) for b in batches)} images")
    elif stage == "export":
        print(f"exported: {engine.export(explain=args.explain)}")
    elif stage == "explain":
        config = ExplainConfig(**{f.name: getattr(args.explain_config, f.name) for f in fields(ExplainConfig)})
        try:
            engine.explain(explain_config=config, method=_method_options(args), output=_output_options(args),
                           audit=_audit_options(args), ir=_ir_options(args), **_trainer_options(args))
        finally:
            _print_explain_summary(engine, args.dump)
    return 0


def _print_explain_summary(engine: Any, dump: bool) -> None:
    from otx_xai.explain.dump import saliency_dir_name
    from otx_xai.explain.index_summary import gate_values

    run_dir, summary = engine.last_explain_dir, engine.last_explain_summary
    if run_dir is None or summary is None:
        return
    print(f"explained {summary['explained']} images ({summary['failed']} unreadable) into {run_dir}")
    quality = gate_values(summary)
    if quality:
        print("quality: " + ", ".join(f"{k}={for_people(v)}" for k, v in sorted(quality.items())))
    if summary.get("sanity_check", {}).get("flagged"):
        print(f"sanity check: maps barely change with a randomized head "
              f"(median Spearman {for_people(summary['sanity_check']['median_spearman'])})")
    if dump:
        print(f"maps: {run_dir / saliency_dir_name(run_dir)}\nindex: {run_dir / 'explain_index.json'}")


def _configure_logging() -> None:
    """Warnings and errors only (each stage prints its own summary), without third-party notices."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    quiet()


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``otx`` and ``otx-xai``: exit 0 on success, 2 for bad flags, 1 for bad input
    (a UserError: one line naming the problem and the fix), 3 for anything else, which is a bug of ours
    (one line naming where; ``OTX_XAI_DEBUG=1`` re-raises it with its traceback)."""
    parser = build_parser()
    try:
        namespace = parser.parse_args(argv)
    except ArgumentError as error:
        print(f"otx: error: {one_line(str(error))}", file=sys.stderr)
        return 2
    stage = namespace.stage
    _configure_logging()
    try:
        return run(stage, namespace[stage])
    except Exception as error:
        if os.environ.get(DEBUG_VARIABLE):
            raise
        if isinstance(error, UserError):
            print(user_error_line(stage, error), file=sys.stderr)
            return 1
        print(internal_error_line(stage, error), file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())

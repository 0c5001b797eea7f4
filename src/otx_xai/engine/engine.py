"""The Engine: train / test / predict / export over a lightning.Trainer, one run folder per call."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

import lightning
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

from otx_xai.engine.checkpoint import load_model, read_checkpoint
from otx_xai.engine.explain_mixin import ExplainMixin
from otx_xai.engine.progress import trainer_progress
from otx_xai.engine.recipe import (
    ModelSpec,
    Recipe,
    build_model,
    load_recipe,
    model_label_names,
    recipe_from_dict,
    recipe_of_ir,
)
from otx_xai.engine.tasks import build_datamodule
from otx_xai.engine.workdir import latest_run, new_run_dir, point_latest, write_run_record
from otx_xai.errors import UserError
from otx_xai.explain.black_box.presets import BlackBoxConfig
from otx_xai.explain.black_box.protocol import black_box_method
from otx_xai.explain.callback import PredictionCollector, model_info
from otx_xai.explain.entity import PredictionBatch
from otx_xai.explain.probes import ExplainProbesCallback
from otx_xai.openvino.export import export_ir
from otx_xai.openvino.ir_file import is_openvino_model

log = logging.getLogger(__name__)


class BaseEngine:
    """Runs the stages of one model on one dataset inside a work_dir.

    Args:
        model: a recipe YAML path (or Recipe), a LightningModule implementing the explain interface, or None to
            take the recipe of the latest training run in ``work_dir``.
        data_root: the dataset folder (default: the latest training run's).
        work_dir: where run folders ``<YYYYmmdd_HHMMSS>/`` and ``.latest/<stage>`` links go.
        checkpoint: a ``.ckpt`` (or, for explain, an exported ``.xml``); default: the latest
            training run's best checkpoint when ``model`` is None.
    """

    def __init__(
        self,
        model: str | Path | Recipe | lightning.LightningModule | None = None,
        data_root: str | Path | None = None,
        work_dir: str | Path = "otx-workspace",
        checkpoint: str | Path | None = None,
    ) -> None:
        self.work_dir = Path(work_dir)
        self._module: lightning.LightningModule | None = None
        self._datamodule: Any = None
        self.checkpoint = str(checkpoint) if checkpoint else None
        if isinstance(model, lightning.LightningModule):
            self._module = model
            self.recipe = Recipe(task=getattr(model, "task", "classification"),
                                 model=ModelSpec(f"{type(model).__module__}.{type(model).__qualname__}"))
        elif isinstance(model, Recipe):
            self.recipe = model
        elif model is not None:
            self.recipe = load_recipe(model)
        elif is_openvino_model(self.checkpoint) and not (self.work_dir / ".latest" / "train").exists():
            self.recipe = recipe_of_ir(self.checkpoint)  # an exported IR carries all it needs
        else:
            run_dir, record = latest_run(self.work_dir, "train")
            self.recipe = recipe_from_dict(record["recipe"], f"{run_dir}/run.json")
            data_root = data_root or record["data_root"]
            self.checkpoint = self.checkpoint or str(run_dir / record["best_checkpoint"])
        self.data_root = str(data_root) if data_root else None

    # --- parts, built on first use -------------------------------------------------------------
    @property
    def datamodule(self) -> Any:
        if self._datamodule is None:
            if self.data_root is None:
                raise UserError("no data_root: pass --data_root (the dataset folder)")
            self._datamodule = build_datamodule(self.recipe.task, self.data_root, self.recipe.data)
        return self._datamodule

    @property
    def model(self) -> lightning.LightningModule:
        if self._module is None:
            labels = self._label_names()
            if self.checkpoint and self.checkpoint.endswith(".ckpt"):
                self._module = load_model(self.checkpoint, self.recipe.model, labels)
            elif labels is None:
                raise UserError(f"{self.data_root} has no labels and no checkpoint was given: pass --checkpoint "
                                 "(or the labels of pretrained weights: --model.label_names_file)")
            else:
                self._module = build_model(self.recipe.model, labels)
        return self._module

    def _label_names(self) -> list[str] | None:
        """The dataset's labels, or those of ``model.label_names_file`` (which the dataset's must equal)."""
        labels = self.datamodule.label_names or None
        named = model_label_names(self.recipe.model)
        if named is not None and labels and list(labels) != named:
            raise UserError(f"{self.data_root} has the labels {list(labels)[:5]}... but model.label_names_file "
                             f"gives {named[:5]}...: drop label_names_file, or explain a folder of plain images")
        return named or labels

    def _trainer(self, run_dir: Path, **kwargs: Any) -> lightning.Trainer:
        defaults = {"accelerator": "cpu", "devices": 1, "default_root_dir": str(run_dir),
                    "logger": CSVLogger(str(run_dir), name="logs", version=""),
                    "enable_model_summary": False, "log_every_n_steps": 1}
        if "enable_progress_bar" not in kwargs:  # a bar with images/s at a terminal, none otherwise
            kwargs = trainer_progress(kwargs)
        return lightning.Trainer(**{**defaults, **kwargs})

    def _record(self, run_dir: Path, stage: str, **extra: Any) -> None:
        write_run_record(run_dir, {"stage": stage, "recipe": self.recipe.to_dict(),
                                   "data_root": str(Path(self.data_root).resolve()) if self.data_root else None,
                                   **extra})
        point_latest(run_dir, stage)

    def _probes(self, count: int, method: str, output_dir: Path) -> ExplainProbesCallback:
        """The probe callback: the model's own maps ("auto") or those of a method run through the model."""
        if method == "auto":
            return ExplainProbesCallback(count, output_dir)
        model = self.model
        info = model_info(model)
        config = BlackBoxConfig()
        return ExplainProbesCallback(count, output_dir, black_box_method(info.task, method, config), info,
                                     config.batch_size)

    # --- stages ----------------------------------------------------------------------------------
    def train(
        self, max_epochs: int | None = None, seed: int = 0, explain_probes: int = 0,
        explain_probes_method: str = "auto", **trainer_kwargs: Any,
    ) -> dict[str, float]:
        """Fit the model; keep the best checkpoint (by validation accuracy) in the run folder.

        ``explain_probes`` > 0 logs the overlays of that many validation images after every epoch
        (TensorBoard under ``<run>/tensorboard`` and PNGs under ``<run>/probes``), made by the model's own
        explain method (``explain_probes_method`` "auto") or by a method that runs the model (ScoreCAM,
        RISE, AISE, Occlusion, LIME, IGOS, ...; their default settings).
        """
        lightning.seed_everything(seed, workers=True, verbose=False)
        datamodule, model = self.datamodule, self.model
        datamodule.require_labels("train")
        run_dir = new_run_dir(self.work_dir)
        checkpointing = ModelCheckpoint(dirpath=run_dir / "checkpoints", filename="epoch_{epoch:03d}",
                                        monitor="val/accuracy", mode="max", save_top_k=1,
                                        auto_insert_metric_name=False)
        epochs = max_epochs or self.recipe.max_epochs
        callbacks: list[lightning.Callback] = [checkpointing]
        loggers: list[Any] = [CSVLogger(str(run_dir), name="logs", version="")]
        if explain_probes:
            callbacks.append(self._probes(explain_probes, explain_probes_method, run_dir / "probes"))
            loggers.append(TensorBoardLogger(str(run_dir), name="tensorboard", version=""))
        trainer = self._trainer(run_dir, max_epochs=epochs, callbacks=callbacks, logger=loggers, **trainer_kwargs)
        trainer.fit(model, datamodule=datamodule)
        best = Path(checkpointing.best_model_path or checkpointing.last_model_path)
        self.checkpoint = str(best)
        model.load_state_dict(read_checkpoint(best)["state_dict"])  # later stages use the best epoch
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
        self.recipe = replace(self.recipe, max_epochs=epochs)
        best_relative = best.resolve().relative_to(run_dir.resolve())
        self._record(run_dir, "train", best_checkpoint=str(best_relative), metrics=metrics)
        log.info("trained %d epochs; best checkpoint %s", epochs, best)
        return metrics

    def test(self) -> dict[str, float]:
        """Evaluate on the test subset."""
        run_dir = new_run_dir(self.work_dir)
        self.datamodule.require_labels("test")
        results = self._trainer(run_dir).test(self.model, datamodule=self.datamodule, verbose=False)
        metrics = {k: float(v) for k, v in (results[0] if results else {}).items()}
        self._record(run_dir, "test", checkpoint=self.checkpoint, metrics=metrics)
        return metrics

    def predict(self) -> list[PredictionBatch]:
        """Predictions (no maps) for the test subset, or every image of an unlabelled folder."""
        run_dir = new_run_dir(self.work_dir)
        collector = PredictionCollector()
        self._trainer(run_dir, callbacks=[collector]).predict(self.model, datamodule=self.datamodule,
                                                              return_predictions=False)
        self._record(run_dir, "predict", checkpoint=self.checkpoint)
        return collector.batches

    def _export(self, explain: bool) -> Path:
        run_dir = new_run_dir(self.work_dir)
        xml = export_ir(self.model, self.recipe.data, run_dir, explain)
        self._record(run_dir, "export", checkpoint=self.checkpoint, exported_model=xml.name, explain=explain)
        log.info("exported %s", xml)
        return xml

    def export(self) -> Path:
        """Write ``exported_model.xml/.bin`` into a new run folder."""
        return self._export(explain=False)


class Engine(ExplainMixin, BaseEngine):
    """The otx_xai engine: train, test, predict, export and explain (see ExplainMixin)."""

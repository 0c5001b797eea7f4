"""Where explained batches go: target selection and postprocess per image, then dump and index.

The Lightning callback (checkpoint path) and the OpenVINO runner (IR path) both hand their
PredictionBatch objects to an ExplainSink, so every run is dumped and indexed by the same code.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from otx_xai.data.dataset import FailedImage
from otx_xai.data.image_io import ImageReadError, read_image_rgb
from otx_xai.errors import UserError
from otx_xai.explain.box_maps import BoxMap, box_overlay, peak_in_box, select_box_maps
from otx_xai.explain.config import ExplainConfig
from otx_xai.explain.dump import (
    INDEX_LINES,
    RunIndex,
    atomic_write_bytes,
    box_map_file_stem,
    encode_npy,
    encode_png,
    map_file_stem,
)
from otx_xai.explain.entity import ImageInfo, PredictionBatch
from otx_xai.explain.index_summary import dedupe, summarize_entries
from otx_xai.explain.pointing import ground_truth_hits
from otx_xai.explain.rank_index import merge_rank_indexes, rank_index_name
from otx_xai.explain.run_warnings import RunWarnings
from otx_xai.explain.sag_files import has_sag, write_sag_files
from otx_xai.explain.saliency import MapKey, overlay, postprocess, predicted_labels, select_maps

log = logging.getLogger(__name__)


class MapEvaluator(Protocol):
    """Per-image map quality computed while a run is dumped (``audit.evaluator.AuditEvaluator``)."""

    @property
    def needs_image(self) -> bool:
        """Whether ``evaluate`` needs the original image."""

    def evaluate(self, image: np.ndarray | None, class_maps: np.ndarray, hits: list[bool],
                 target: int | None) -> dict[str, float]:
        """Metric values of one image."""


@dataclass
class ImageExplanation:
    """The explanation of one image, as returned to a Python caller."""

    info: ImageInfo
    scores: np.ndarray
    predicted: list[int]
    saliency_map: dict[MapKey, np.ndarray]
    raw_saliency_map: np.ndarray  # uint8 (K, h, w): every class map as the model produced it
    feature_vector: np.ndarray | None = None
    files: list[str] = field(default_factory=list)
    pointing_game_hits: list[bool] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)
    box_maps: list[BoxMap] = field(default_factory=list)  # detectors explaining per box: the boxes with a map


class ExplainSink:
    """Consumes PredictionBatch objects; dumps maps when ``run_dir`` is given; keeps results if asked.

    In a distributed run (``use_rank``) each rank indexes its own images in its own file and rank 0
    merges them in ``finish``.
    """

    def __init__(
        self,
        config: ExplainConfig,
        run_dir: Path | None = None,
        header: dict[str, Any] | None = None,
        keep_results: bool = True,
        evaluator: MapEvaluator | None = None,
    ) -> None:
        self.config = config
        self.evaluator = evaluator
        self.run_dir = run_dir
        self.keep_results = keep_results
        self.results: list[ImageExplanation] = []
        self.summary: dict[str, Any] = {}
        self._entries: list[dict[str, Any]] = []  # only without an index on disk
        self.header = header or {}
        self.index = RunIndex(run_dir, self.header) if run_dir is not None else None
        self.rank, self.world_size = 0, 1
        self._order: list[str] = []  # distributed: the image ids in dataset order, for the merged index
        self._sag_record: dict[str, Any] | None = None  # the image being dumped: its SAG record, for its entry
        self.warnings = RunWarnings(config)

    def use_rank(self, run_dir: Path | None, rank: int, world_size: int, order: list[str]) -> None:
        """Distributed explain: index into ``run_dir``'s ``explain_index.rank<rank>.jsonl`` (the plain index
        for one process); ``order`` (the image ids in dataset order) orders the merged index."""
        self.run_dir, self.rank, self.world_size, self._order = run_dir, rank, world_size, order
        if run_dir is not None:
            self.index = RunIndex(run_dir, self.header, rank_index_name(rank) if world_size > 1 else INDEX_LINES)

    def update_runtime(self, runtime: dict[str, Any]) -> None:
        """Replace the index header's ``runtime`` record with what the run learnt while running (e.g. the
        batch sizes an IR compiled); written with the index in ``finish``."""
        self.header["runtime"] = runtime
        if self.index is not None:
            self.index.header["runtime"] = runtime

    def consume(self, batch: PredictionBatch, failed: list[FailedImage] | None = None) -> None:
        """Explain, dump and index every image of a batch; record the images that failed to load."""
        if batch.saliency_map is None:
            raise UserError(
                "the model returned no saliency_map: explain needs a model with an explain forward "
                "(for an IR, export it with --explain True)"
            )
        self.consume_failures(failed)
        self.warnings.check_group(batch.model.label_names)
        for index, info in enumerate(batch.infos):
            self._consume_image(batch, index, info)

    def consume_failures(self, failed: list[FailedImage] | None) -> None:
        """Record images that could not be loaded; the run goes on."""
        for failure in failed or []:
            self._record_failure(failure.image_id, failure.source_path, failure.error)

    def _consume_image(self, batch: PredictionBatch, index: int, info: ImageInfo) -> None:
        predicted = predicted_labels(batch, index, self.config.predicted_maps_conf_thr)
        class_maps = batch.saliency_map[index]
        hits = ground_truth_hits(class_maps, info)
        maps = select_maps(batch, index, self.config)
        self.warnings.check_maps(info.image_id, maps)
        if self.config.postprocess:
            maps = {key: postprocess(m, info, self.config) for key, m in maps.items()}
        box_maps = select_box_maps(batch, index, self.config)
        try:
            original = read_image_rgb(info.source_path) if self._needs_original and info.source_path else None
        except ImageReadError as error:
            self._record_failure(info.image_id, info.source_path, str(error))
            return
        values: dict[str, float] = {}
        if self.evaluator is not None:
            target = predicted[0] if predicted else int(np.argmax(batch.scores[index]))
            values = self.evaluator.evaluate(original, class_maps, hits, target)
        files = self._dump(batch, index, info, maps, original) if self.index is not None else []
        box_files = self._dump_boxes(batch, info, box_maps, original) if self.index is not None else {}
        files += [name for names in box_files.values() for name in names]
        entry = self._entry(batch, index, info, predicted, files, box_files)
        if self._sag_record is not None:
            entry["sag"], self._sag_record = self._sag_record, None
        if hits:
            entry["pointing_game"] = float(np.mean(hits))
            entry["pointing_game_objects"] = len(hits)
        if values:
            entry["metrics"] = values
        self._add(entry)
        if self.keep_results:
            vector = None if batch.feature_vector is None else batch.feature_vector[index]
            self.results.append(ImageExplanation(info, batch.scores[index], predicted, maps, class_maps,
                                                 vector, files, hits, values, box_maps))

    @property
    def _needs_original(self) -> bool:
        overlays = self.config.postprocess and self.index is not None
        return overlays or (self.evaluator is not None and self.evaluator.needs_image)

    def _dump(
        self, batch: PredictionBatch, index: int, info: ImageInfo, maps: dict[MapKey, np.ndarray],
        original: np.ndarray | None,
    ) -> list[str]:
        maps_dir = self.index.maps_dir
        names = batch.model.label_names
        files = []
        for key, saliency in maps.items():
            files += self._write_map(map_file_stem(info.image_id, key, names), saliency, original,
                                     lambda image, s=saliency: overlay(s, image))
        raw_name = f"{info.image_id}_saliency_map.npy"
        atomic_write_bytes(self.run_dir / maps_dir / raw_name, encode_npy(batch.saliency_map[index]))
        files.append(f"{maps_dir}/{raw_name}")
        if has_sag(batch.extras):  # SAG's root masks and graph picture
            sag_files, self._sag_record = write_sag_files(self.run_dir, maps_dir, info.image_id, info.original_size,
                                                          batch.extras, index, names)
            files += sag_files
        return files

    def _write_map(
        self, stem: str, saliency: np.ndarray, original: np.ndarray | None,
        make_overlay: Callable[[np.ndarray], np.ndarray],
    ) -> list[str]:
        """Write one map as ``<stem>_saliency_map.png``, and ``make_overlay(original)`` beside it when
        postprocessing with the original image at hand; the files written, relative to the run folder."""
        maps_dir = self.index.maps_dir
        folder = self.run_dir / maps_dir
        atomic_write_bytes(folder / f"{stem}_saliency_map.png", encode_png(saliency))
        files = [f"{maps_dir}/{stem}_saliency_map.png"]
        if original is not None and self.config.postprocess:
            atomic_write_bytes(folder / f"{stem}_overlay.png", encode_png(make_overlay(original)))
            files.append(f"{maps_dir}/{stem}_overlay.png")
        return files

    def _dump_boxes(
        self, batch: PredictionBatch, info: ImageInfo, box_maps: list[BoxMap], original: np.ndarray | None
    ) -> dict[int, list[str]]:
        """Write each box's map (and overlay, the box outlined); the files of each box index."""
        return {box_map.box_index: self._write_map(
                    box_map_file_stem(info.image_id, box_map.box_index, box_map.label, batch.model.label_names),
                    box_map.saliency_map, original, lambda image, b=box_map: box_overlay(b, image))
                for box_map in box_maps}

    def _entry(
        self, batch: PredictionBatch, index: int, info: ImageInfo, predicted: list[int], files: list[str],
        box_files: dict[int, list[str]],
    ) -> dict[str, Any]:
        names = batch.model.label_names
        entry: dict[str, Any] = {
            "image_id": info.image_id,
            "source_path": info.source_path,
            "original_size": list(info.original_size),
            "predicted": [
                {"index": k, "label": names[k] if k < len(names) else str(k),
                 "score": round(float(batch.scores[index][k]), 6)}
                for k in predicted
            ],
            "ground_truth": [{"index": k, "label": names[k] if k < len(names) else str(k)}
                             for k in sorted(set(info.gt_labels))],
            "files": files,
            "error": None,
        }
        if batch.boxes is not None and batch.box_labels is not None and batch.box_scores is not None:
            box_maps = batch.box_saliency_map[index] if batch.box_saliency_map is not None else None
            entry["detections"] = []
            for k, (box, label, score) in enumerate(zip(batch.boxes[index], batch.box_labels[index],
                                                        batch.box_scores[index], strict=True)):
                if score <= self.config.predicted_maps_conf_thr:
                    continue
                detection = {"box_index": k, "label": names[int(label)] if int(label) < len(names) else str(int(label)),
                             "index": int(label), "score": round(float(score), 6),
                             "box": [round(float(v), 2) for v in box]}
                if k in box_files:
                    detection["files"] = box_files[k]
                if box_maps is not None:
                    detection["peak_in_box"] = peak_in_box(box_maps[k], box, info)
                entry["detections"].append(detection)
        return entry

    def _add(self, entry: dict[str, Any]) -> None:
        if self.index is not None:
            self.index.add(entry)
        else:
            self._entries.append(entry)

    def _record_failure(self, image_id: str, source_path: str, error: str) -> None:
        log.warning("skipped %s", error if source_path in error else f"{source_path}: {error}")
        self._add({"image_id": image_id, "source_path": source_path, "predicted": [], "files": [], "error": error})

    def local_entries(self) -> list[dict[str, Any]]:
        """The entries kept in memory (a run without an index on disk)."""
        return self._entries

    def close_rank(self, everyone: list[dict[str, Any]] | None = None) -> None:
        """Distributed, before the final barrier: summarize this rank's entries and close its index file, or
        with nothing on disk take ``everyone``'s entries (gathered from every rank) as this sink's."""
        if self.index is not None:
            self.summary = summarize_entries(self.index.entries())
            self.index.close_lines()
        else:
            self._entries = dedupe(everyone or [])
            self.summary = summarize_entries(self._entries)

    def finish(self) -> list[ImageExplanation]:
        """Summarize every entry (``self.summary``), close the index on disk, return the kept results.

        Distributed (after every rank's ``close_rank``): rank 0 merges the rank files into the run's index
        and summarizes the merged entries; the other ranks keep the summary of their own images.
        """
        if self.world_size > 1:
            if self.rank == 0 and self.index is not None:
                merge_rank_indexes(self.index.run_dir, self._order)
                self.index = RunIndex(self.index.run_dir, self.header)
                self.summary = summarize_entries(self.index.entries())
                self.index.close(self.summary)
            return self.results
        entries = self.index.entries() if self.index is not None else self._entries
        self.summary = summarize_entries(entries)
        if self.index is not None:
            self.index.close(self.summary)
        return self.results

"""The Python API: Engine(model=recipe, data_root, work_dir).train / explain / export / explain(IR)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import openvino as ov
import pytest

from conftest import TrainedRun, copy_images, raw_maps, read_index, read_ir, write_recipe
from otx_xai import Engine, ExplainConfig, ImageExplanation, OutputOptions, TargetExplainGroup

PREDICTIONS = ExplainConfig(target_explain_group=TargetExplainGroup.PREDICTIONS, postprocess=True)


@dataclass
class ApiChain:
    """explain(dump) → export(explain) → explain(checkpoint=xml), continuing the session's trained engine."""

    checkpoint_results: list[ImageExplanation]
    checkpoint_dir: Path
    latest_after_explain: Path
    xml: Path
    ir_results: list[ImageExplanation]
    ir_dir: Path


@pytest.fixture(scope="module")
def chain(trained_run: TrainedRun) -> Iterator[ApiChain]:
    engine = trained_run.engine
    checkpoint_results = engine.explain(explain_config=PREDICTIONS, dump=True)
    checkpoint_dir = engine.last_explain_dir
    latest = (trained_run.work_dir / ".latest" / "explain").resolve()
    xml = engine.export(explain=True)
    ir_results = engine.explain(checkpoint=xml, explain_config=PREDICTIONS, dump=True)
    yield ApiChain(checkpoint_results, checkpoint_dir, latest, Path(xml), ir_results, engine.last_explain_dir)
    # give the shared engine its .ckpt back
    engine.explain(checkpoint=trained_run.checkpoint, output=OutputOptions(keep_results=False))


def by_id(results: list[ImageExplanation]) -> dict[str, ImageExplanation]:
    return {r.info.image_id: r for r in results}


def test_train_keeps_the_best_checkpoint_in_its_run(trained_run: TrainedRun) -> None:
    run_dir = (trained_run.work_dir / ".latest" / "train").resolve()
    record = json.loads((run_dir / "run.json").read_text())
    assert trained_run.checkpoint.is_file() and trained_run.checkpoint.suffix == ".ckpt"
    assert (run_dir / record["best_checkpoint"]).resolve() == trained_run.checkpoint.resolve()
    assert record["stage"] == "train" and "val/accuracy" in trained_run.metrics


def test_explain_dumps_predicted_maps_into_the_latest_run(chain: ApiChain, trained_run: TrainedRun) -> None:
    assert chain.latest_after_explain == chain.checkpoint_dir.resolve()
    assert chain.checkpoint_dir.parent.resolve() == trained_run.work_dir.resolve()
    index = read_index(chain.checkpoint_dir)
    results = by_id(chain.checkpoint_results)
    assert {entry["image_id"] for entry in index["images"]} == set(results) and len(results) >= 3
    for entry in index["images"]:
        result = results[entry["image_id"]]
        top1 = int(np.argmax(result.scores))
        assert result.predicted == [top1] and list(result.saliency_map) == [top1]
        label = index["label_names"][top1]
        names = sorted(Path(name).name for name in entry["files"])
        assert names == sorted([f"{entry['image_id']}_class_{label}_saliency_map.png",
                                f"{entry['image_id']}_class_{label}_overlay.png",
                                f"{entry['image_id']}_saliency_map.npy"])
        height, width = result.info.original_size
        assert result.saliency_map[top1].shape == (height, width, 3)
        assert result.raw_saliency_map.dtype == np.uint8 and result.raw_saliency_map.shape == (3, 2, 2)
        assert entry["predicted"][0]["score"] == pytest.approx(float(result.scores[top1]), abs=1e-5)


def test_ir_explains_like_its_checkpoint(chain: ApiChain) -> None:
    checkpoint, ir = by_id(chain.checkpoint_results), by_id(chain.ir_results)
    assert set(checkpoint) == set(ir)
    for image_id, expected in checkpoint.items():
        got = ir[image_id]
        difference = np.abs(got.raw_saliency_map.astype(int) - expected.raw_saliency_map.astype(int))
        assert difference.mean() <= 2.0, (image_id, difference)
        np.testing.assert_allclose(got.scores, expected.scores, atol=1e-4)
        np.testing.assert_allclose(got.feature_vector, expected.feature_vector, rtol=1e-3, atol=1e-4)
        top2 = np.sort(expected.scores)[-2:]
        if top2[1] - top2[0] > 1e-3:  # a near tie may flip between runtimes
            assert got.predicted == expected.predicted
    disk_checkpoint, disk_ir = raw_maps(chain.checkpoint_dir), raw_maps(chain.ir_dir)
    assert set(disk_checkpoint) == set(disk_ir) == set(checkpoint)
    read_index(chain.ir_dir)


def test_ir_image_group_reads_the_feature_map(chain: ApiChain, trained_run: TrainedRun) -> None:
    """The IR computes feature_map only for the IMAGE group, whose map is its activation map, as from the checkpoint."""
    image_group = ExplainConfig(target_explain_group=TargetExplainGroup.IMAGE)
    engine = Engine(work_dir=trained_run.work_dir)
    checkpoint = by_id(engine.explain(explain_config=image_group))
    ir = by_id(engine.explain(checkpoint=chain.xml, explain_config=image_group))
    assert set(ir) == set(checkpoint)
    unlike_class_maps = 0
    for image_id, expected in checkpoint.items():
        got = ir[image_id].saliency_map["map_per_image"].astype(int)
        assert np.abs(got - expected.saliency_map["map_per_image"]).max() <= 1, image_id
        unlike_class_maps += not np.array_equal(got, ir[image_id].raw_saliency_map.max(axis=0))
    assert unlike_class_maps, "on these images the activation map must differ from the max of the class maps"


def test_index_records_what_ran(chain: ApiChain, trained_run: TrainedRun) -> None:
    torch_runtime = read_index(chain.checkpoint_dir)["runtime"]
    assert torch_runtime["backend"] == "torch" and torch_runtime["precision"] == "float32"
    assert torch_runtime["device"] == "cpu" and torch_runtime["threads"] >= 1
    ir_runtime = read_index(chain.ir_dir)["runtime"]
    assert ir_runtime["backend"] == "openvino" and ir_runtime["version"] == ov.__version__
    # f32 asked and compiled, although this CPU's plugin would default to bf16
    assert ir_runtime["precision"] == ir_runtime["compiled_precision"] == "f32"
    assert ir_runtime["performance_hint"] == "auto"  # batches of several images: compiled for throughput
    assert set(ir_runtime["compiled_hints"].values()) <= {"THROUGHPUT", "LATENCY"}
    assert ir_runtime["num_requests"] >= 1 and ir_runtime["num_streams"] >= 1
    assert ir_runtime["outputs"] == ["logits", "feature_vector", "saliency_map"]  # PREDICTIONS: no feature_map
    # recorded after the run: every batch size the loader gave (full batches, the last one's rest) ran static
    images = len(read_index(chain.ir_dir)["images"])
    batch_size = trained_run.engine.recipe.data.batch_size
    used = {min(images, batch_size)} | ({images % batch_size} if images % batch_size else set())
    assert ir_runtime["static_batches"] == sorted(used) and ir_runtime["max_static_batches"] >= len(used)


def test_export_explain_writes_ir_with_xai_outputs(chain: ApiChain, trained_run: TrainedRun) -> None:
    assert chain.xml.name == "exported_model.xml" and chain.xml.with_suffix(".bin").is_file()
    outputs, meta = read_ir(chain.xml)
    assert outputs == ["logits", "feature_vector", "saliency_map", "feature_map"]
    assert meta["label_names"] == ["circle", "square", "triangle"] and meta["input_size"] == [64, 64]


def test_explain_equals_predict(trained_run: TrainedRun) -> None:
    engine = Engine(work_dir=trained_run.work_dir)
    predicted = {info.image_id: scores for batch in engine.predict() for info, scores in zip(
        batch.infos, batch.scores, strict=True)}
    explained = by_id(engine.explain())
    assert set(predicted) == set(explained)
    for image_id, scores in predicted.items():
        assert np.array_equal(scores, explained[image_id].scores), image_id


@pytest.mark.parametrize("group", [TargetExplainGroup.ALL, TargetExplainGroup.IMAGE])
def test_target_groups_through_the_engine(trained_run: TrainedRun, group: TargetExplainGroup) -> None:
    results = Engine(work_dir=trained_run.work_dir).explain(explain_config=ExplainConfig(target_explain_group=group))
    expected_keys = [0, 1, 2] if group is TargetExplainGroup.ALL else ["map_per_image"]
    for result in results:
        assert list(result.saliency_map) == expected_keys
        assert all(m.dtype == np.uint8 and m.shape == (2, 2) for m in result.saliency_map.values())


@pytest.mark.parametrize("kind", ["ckpt", "xml"])
def test_explain_plain_folder_of_unlabelled_images(trained_run: TrainedRun, chain: ApiChain, tmp_path: Path,
                                                   kind: str) -> None:
    images = copy_images(trained_run.data_root, tmp_path / "plain", 4)
    checkpoint = trained_run.checkpoint if kind == "ckpt" else chain.xml
    engine = Engine(model=str(trained_run.recipe), data_root=tmp_path / "plain", work_dir=tmp_path / "ws",
                    checkpoint=checkpoint)
    results = engine.explain(dump=True)
    assert sorted(r.info.source_path for r in results) == sorted(str(p) for p in images)
    index = read_index(engine.last_explain_dir)
    assert index["label_names"] == ["circle", "square", "triangle"]
    assert all(r.info.gt_labels == [] and r.raw_saliency_map.shape == (3, 2, 2) for r in results)


def test_multilabel_predictions_are_labels_above_threshold(shapes_root: Path, tmp_path: Path) -> None:
    engine = Engine(model=str(write_recipe(tmp_path, "resnet18_multilabel.yaml")), data_root=shapes_root,
                    work_dir=tmp_path / "ws")
    engine.train(max_epochs=1)
    scores = np.concatenate([r.scores for r in engine.explain()])
    threshold = float(np.median(scores))  # some labels above, some below
    config = ExplainConfig(target_explain_group=TargetExplainGroup.PREDICTIONS, predicted_maps_conf_thr=threshold)
    results = engine.explain(explain_config=config, dump=True)
    index = {e["image_id"]: e for e in read_index(engine.last_explain_dir)["images"]}
    counts = set()
    for result in results:
        expected = [int(k) for k in np.flatnonzero(result.scores > threshold)]
        assert result.predicted == expected and list(result.saliency_map) == expected
        assert [p["index"] for p in index[result.info.image_id]["predicted"]] == expected
        pngs = [name for name in index[result.info.image_id]["files"] if name.endswith(".png")]
        assert len(pngs) == len(expected)
        counts.add(len(expected))
    assert counts != {3}, "the threshold selected nothing"


def jet_rgb(saliency: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The reference colouring: linear resize to (H, W), OpenCV's JET, BGR → RGB."""
    resized = cv2.resize(saliency, (size[1], size[0]), interpolation=cv2.INTER_LINEAR)
    return cv2.cvtColor(cv2.applyColorMap(resized, cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB)


def test_letterbox_padding_is_cropped_off_the_maps(trained_run: TrainedRun, tmp_path: Path) -> None:
    """Wide and tall images letterboxed into 128×128 (4×4 maps): the map rows/columns over padding go."""
    rng = np.random.default_rng(0)
    (tmp_path / "boxed").mkdir()
    for name, size in {"wide": (40, 100), "tall": (100, 40)}.items():
        cv2.imwrite(str(tmp_path / "boxed" / f"{name}.png"), rng.integers(0, 256, size=(*size, 3), dtype=np.uint8))
    engine = Engine(model=str(trained_run.recipe), data_root=tmp_path / "boxed", work_dir=tmp_path / "ws",
                    checkpoint=trained_run.checkpoint)
    engine.recipe.data.letterbox = True
    engine.recipe.data.input_size = (128, 128)
    results = by_id(engine.explain(explain_config=ExplainConfig(postprocess=True, crop_padded_map=True)))
    kept = {"wide": (2, 4), "tall": (4, 2)}  # valid regions (51, 128) and (128, 51) of 128 → 2 of 4 cells
    for image_id, result in results.items():
        assert result.raw_saliency_map.shape == (3, 4, 4)
        rows, cols = kept[image_id]
        for label, coloured in result.saliency_map.items():
            expected = jet_rgb(result.raw_saliency_map[label][:rows, :cols], result.info.original_size)
            assert np.array_equal(coloured, expected), (image_id, label)

"""Reports from a hand-made explain run: gallery HTML, CSV twin, contact sheet."""

from __future__ import annotations

import csv
import json
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlparse

import cv2
import numpy as np
import pytest

from otx_xai.explain.dump import SALIENCY_DIR
from otx_xai.report import write_contact_sheet, write_csv_index, write_gallery
from otx_xai.report.contact_sheet import CAPTION, PAD, THUMB, TITLE
from otx_xai.report.csv_index import MapTarget, image_metrics, map_targets

EVIL = "<script>alert(1)</script>"
# image id -> (BGR colour of its overlay, metrics)
IMAGES = {
    "img_a": ((0, 0, 255), {"pointing_game": 1.0, "adcc": 0.2, "deletion": 0.1}),
    "img_b": ((0, 255, 0), {"pointing_game": 0.0, "adcc": 0.9, "deletion": 0.7}),
    "img_c": ((255, 0, 0), {"pointing_game": 0.5, "adcc": 0.5, "deletion": 0.4}),
}


def _png(path: Path, colour: tuple[int, int, int], size: tuple[int, int] = (40, 60)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((*size, 3), colour, dtype=np.uint8))


def _entry(image_id: str, label: str, stem_label: str, metrics: dict, run: Path) -> dict:
    files = [f"{SALIENCY_DIR}/{image_id}_class_{stem_label}_{kind}.png" for kind in ("saliency_map", "overlay")]
    for name in files:
        _png(run / name, IMAGES[image_id][0])
    files.append(f"{SALIENCY_DIR}/{image_id}_saliency_map.npy")
    return {"image_id": image_id, "source_path": str(run.parent / "data" / f"{image_id}.png"),
            "original_size": [40, 60], "predicted": [{"index": 0, "label": label, "score": 0.875}],
            "files": files, "error": None, "metrics": metrics}


@pytest.fixture
def run(tmp_path: Path) -> Path:
    """A run folder with three explained images (one labelled with markup) and one unreadable image."""
    run = tmp_path / "ws" / "20260101_000000"
    images = [
        _entry("img_a", "circle", "circle", IMAGES["img_a"][1], run),
        _entry("img_b", EVIL, "script_alert_1_script", IMAGES["img_b"][1], run),
        _entry("img_c", "square", "square", {}, run),
        {"image_id": "broken_1", "source_path": str(tmp_path / "data" / "broken & <b>.png"), "predicted": [],
         "files": [], "error": "cannot decode <image> & stuff"},
    ]
    images[1]["ground_truth"] = [{"index": 1, "label": "square"}]
    images[2]["pointing_game"] = IMAGES["img_c"][1]["pointing_game"]  # the sink's top-level key
    images[2]["metrics"] = {"adcc": 0.5, "deletion": 0.4, "note": "not a number", "nan": float("nan")}
    document = {"version": 1, "task": "classification", "label_names": ["circle", "square", "triangle", EVIL],
                "explain_method": "recipro_cam", "explain_config": {"target_explain_group": "PREDICTIONS"},
                "summary": {"explained": 3, "failed": 1}, "images": images}
    (run / "explain_index.json").write_text(json.dumps(document))
    return run


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.imgs: list[str] = []
        self.cards: list[dict[str, str | None]] = []
        self.options: dict[str, list[str]] = {}
        self.scripts = 0
        self.external: list[str] = []
        self._select: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "img":
            self.imgs.append(values["src"] or "")
        elif tag == "article":
            self.cards.append(values)
        elif tag == "select":
            self._select = values["id"]
            self.options[self._select or ""] = []
        elif tag == "option" and self._select:
            self.options[self._select].append(values["value"] or "")
        elif tag == "script":
            self.scripts += 1
            if "src" in values:
                self.external.append(values["src"] or "")
        elif tag == "link":
            self.external.append(values.get("href") or "")


def _parse(path: Path) -> tuple[str, _Page]:
    text = path.read_text(encoding="utf-8")
    page = _Page()
    page.feed(text)
    return text, page


def test_gallery_images_are_relative_and_exist(run: Path) -> None:
    path = write_gallery(run)
    assert path == run / "gallery.html"
    _, page = _parse(path)
    assert len(page.imgs) == 6  # the input and one overlay per explained image, none for the error row
    inputs = [src for src in page.imgs if not src.endswith("_overlay.png")]
    assert [(run / unquote(src)).resolve() for src in inputs] == [run.parent / "data" / f"{image_id}.png"
                                                                  for image_id in ("img_a", "img_b", "img_c")]
    for src in page.imgs:
        parsed = urlparse(src)
        assert not parsed.scheme and not parsed.netloc and not src.startswith("/"), src
    for src in set(page.imgs) - set(inputs):
        assert (run / unquote(src)).is_file(), src
    assert not [p for p in run.iterdir() if p.name.endswith(".tmp")]


def test_gallery_escapes_index_text(run: Path) -> None:
    text, page = _parse(write_gallery(run))
    assert page.scripts == 1 and not page.external
    assert "<script>alert" not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "cannot decode &lt;image&gt; &amp; stuff" in text and "broken &amp; &lt;b&gt;.png" in text
    assert "http://" not in text and "https://" not in text
    assert EVIL in page.options["label-filter"]  # the parsed (unescaped) value round-trips
    assert page.options["label-filter"] == ["", "circle", "square", "triangle", EVIL]  # the model's labels
    assert page.options["sort-by"] == ["", "pointing_game", "adcc", "deletion"]


def test_gallery_cards_carry_labels_and_metrics(run: Path) -> None:
    _, page = _parse(write_gallery(run))
    cards = {card["data-image-id"]: card for card in page.cards}
    assert list(cards) == ["img_a", "img_b", "img_c", "broken_1"]
    assert json.loads(cards["img_b"]["data-labels"] or "") == [EVIL, "square"]  # predicted + ground truth
    assert json.loads(cards["img_c"]["data-metrics"] or "") == {"adcc": 0.5, "deletion": 0.4, "pointing_game": 0.5}
    assert "error" in (cards["broken_1"]["class"] or "") and json.loads(cards["broken_1"]["data-labels"] or "") == []


def test_map_targets_fall_back_to_saliency_maps() -> None:
    entry = {"image_id": "x_1", "files": [f"{SALIENCY_DIR}/x_1_class_cat_saliency_map.png",
                                         f"{SALIENCY_DIR}/x_1_map_per_image_saliency_map.png",
                                         f"{SALIENCY_DIR}/x_1_saliency_map.npy"]}
    assert map_targets(entry) == [MapTarget("cat", f"{SALIENCY_DIR}/x_1_class_cat_saliency_map.png"),
                                  MapTarget("map per image", f"{SALIENCY_DIR}/x_1_map_per_image_saliency_map.png")]


def test_image_metrics_prefers_metrics_block() -> None:
    assert image_metrics({"pointing_game": 0.0, "metrics": {"pointing_game": 1.0, "flag": True}}) == {
        "pointing_game": 1.0}


def test_csv_index_rows_and_columns(run: Path) -> None:
    path = write_csv_index(run)
    assert path == run / "explain_index.csv"
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["image_id", "source_path", "original_size", "predicted_labels", "predicted_scores",
                             "ground_truth", "error", "pointing_game", "adcc", "deletion", "files"]
    assert [row["image_id"] for row in rows] == ["img_a", "img_b", "img_c", "broken_1"]
    a, b, c, broken = rows
    assert (a["predicted_labels"], a["predicted_scores"], a["original_size"]) == ("circle", "0.875", "40x60")
    assert float(a["pointing_game"]) == 1.0 and float(b["adcc"]) == 0.9 and float(c["pointing_game"]) == 0.5
    assert b["predicted_labels"] == EVIL and b["ground_truth"] == "square"
    assert broken["error"] == "cannot decode <image> & stuff" and broken["pointing_game"] == ""
    assert a["files"].split(";")[0] == f"{SALIENCY_DIR}/img_a_class_circle_saliency_map.png"


def test_csv_index_defuses_formulas(run: Path) -> None:
    index = json.loads((run / "explain_index.json").read_text())
    index["images"][0]["predicted"][0]["label"] = "=HYPERLINK(1)"
    (run / "explain_index.json").write_text(json.dumps(index))
    with open(write_csv_index(run), newline="", encoding="utf-8") as handle:
        assert next(csv.DictReader(handle))["predicted_labels"] == "'=HYPERLINK(1)"


def _thumb_colours(sheet: np.ndarray, row: int, columns: int) -> list[tuple[int, ...]]:
    top = row * (TITLE + THUMB + CAPTION + PAD) + TITLE + THUMB // 2
    return [tuple(int(v) for v in sheet[top, PAD + col * (THUMB + PAD) + THUMB // 2]) for col in range(columns)]


@pytest.mark.parametrize(("metric", "worst_first"), [
    ("pointing_game", ["img_b", "img_c", "img_a"]),
    ("adcc", ["img_a", "img_c", "img_b"]),
    ("deletion", ["img_b", "img_c", "img_a"]),  # lower is better
])
def test_contact_sheet_rows_worst_then_best(run: Path, metric: str, worst_first: list[str]) -> None:
    path = write_contact_sheet(run, metric, count=8)
    assert path == run / f"contact_sheet_{metric}.png"
    sheet = cv2.imread(str(path))
    assert sheet.shape == (2 * (TITLE + THUMB + CAPTION + PAD), PAD + 3 * (THUMB + PAD), 3)
    colours = [IMAGES[image_id][0] for image_id in worst_first]
    assert _thumb_colours(sheet, 0, 3) == colours
    assert _thumb_colours(sheet, 1, 3) == colours[::-1]


def test_contact_sheet_count_limits_columns(run: Path) -> None:
    sheet = cv2.imread(str(write_contact_sheet(run, "pointing_game", count=2)))
    assert sheet.shape[1] == PAD + 2 * (THUMB + PAD)
    assert _thumb_colours(sheet, 0, 2) == [IMAGES["img_b"][0], IMAGES["img_c"][0]]
    assert _thumb_colours(sheet, 1, 2) == [IMAGES["img_a"][0], IMAGES["img_c"][0]]


def test_contact_sheet_unknown_metric(run: Path) -> None:
    with pytest.raises(ValueError, match="no image"):
        write_contact_sheet(run, "insertion")


def test_reports_need_an_index(tmp_path: Path) -> None:
    for write in (write_gallery, write_csv_index):
        with pytest.raises(FileNotFoundError, match="dump"):
            write(tmp_path)


def test_box_maps_are_their_own_targets_and_csv_column() -> None:
    from otx_xai.report.csv_index import box_targets, csv_rows

    box_files = ["saliency_maps/a_box_0_circle_saliency_map.png", "saliency_maps/a_box_0_circle_overlay.png"]
    entry = {"image_id": "a", "files": ["saliency_maps/a_class_circle_saliency_map.png", *box_files],
             "detections": [{"box_index": 0, "label": "circle", "score": 0.5, "box": [0, 0, 1, 1],
                             "files": box_files},
                            {"box_index": 1, "label": "square", "score": 0.4, "box": [0, 0, 1, 1]}]}
    assert [t.name for t in map_targets(entry)] == ["circle"]
    assert box_targets(entry) == [MapTarget("box 0: circle 0.500", box_files[1], box_files[0])]
    header, row = csv_rows({"images": [entry]})
    assert row[header.index("boxes")] == "0:circle:0.500"
    assert "boxes" not in csv_rows({"images": [{"image_id": "b", "files": []}]})[0]

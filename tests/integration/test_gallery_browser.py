"""The gallery of a real explain run, rendered by headless Chromium: every image loads, the filter works.

The page's own self-test (``?selftest=1``) waits for every image and writes what loaded and which cards
are visible into ``<pre id="selftest-result">``; ``--dump-dom`` hands that DOM back.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from otx_xai import Engine, ExplainConfig
from otx_xai.data.shapes import make_classification_shapes
from otx_xai.report import write_gallery
from otx_xai.report.csv_index import entry_labels

CHROMIUM = Path("/usr/bin/chromium")
RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "classification" / "resnet18.yaml"
RESULT = re.compile(r'<pre id="selftest-result">(.*?)</pre>', re.DOTALL)


@pytest.fixture(scope="module")
def chromium() -> Path:
    """Debian's chromium; missing is a failure (tox installs it before the tests), never a skip."""
    if not CHROMIUM.is_file():
        pytest.fail(f"{CHROMIUM} not found: the gallery browser test needs Debian's chromium "
                    "(tox installs it: tests/ensure_browser.py)")
    return CHROMIUM


@pytest.fixture(scope="module")
def gallery(chromium: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """gallery.html of a dumped, postprocessed explain run of a resnet18 trained one epoch on tiny shapes."""
    root = tmp_path_factory.mktemp("gallery")
    data_root = make_classification_shapes(root / "shapes", images_per_class=4, image_size=64, seed=0)
    engine = Engine(model=str(RECIPE), data_root=data_root, work_dir=root / "ws")
    engine.recipe.data.input_size = (64, 64)
    engine.train(max_epochs=1)
    engine.explain(dump=True)  # raw maps (the model's 2×2 grid): the gallery draws them large
    engine.explain(dump=True, explain_config=ExplainConfig(postprocess=True))
    run_dir = engine.last_explain_dir
    assert run_dir is not None and (run_dir / "explain_index.csv").is_file()  # written by the explain run
    return write_gallery(run_dir)


@pytest.fixture(scope="module")
def raw_gallery(gallery: Path) -> Path:
    """The gallery of the same model's run without postprocessing (maps at the model's grid size)."""
    return next(page for page in gallery.parents[1].glob("*/gallery.html") if page != gallery)


def _index(page: Path) -> dict[str, Any]:
    return json.loads((page.parent / "explain_index.json").read_text())


def _render(chromium: Path, page: Path, profile: Path, **query: str) -> dict[str, Any]:
    """The page's self-test result after Chromium loaded ``page?<query>&selftest=1``."""
    url = f"{page.resolve().as_uri()}?{urlencode({**query, 'selftest': '1'})}"
    command = [str(chromium), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--no-first-run", "--disable-component-update", "--disable-sync", f"--user-data-dir={profile}",
               "--virtual-time-budget=10000", "--dump-dom", url]
    done = subprocess.run(command, capture_output=True, text=True, timeout=180, check=False)
    found = RESULT.search(done.stdout)
    assert found, f"no self-test result in the DOM (exit {done.returncode}): {done.stderr[-2000:]}"
    return json.loads(html.unescape(found.group(1)))


def test_every_image_loads(chromium: Path, gallery: Path, tmp_path: Path) -> None:
    images = _index(gallery)["images"]
    result = _render(chromium, gallery, tmp_path / "profile")
    expected_maps = sum(1 for entry in images for name in entry["files"] if name.endswith("_overlay.png"))
    assert expected_maps > 0
    assert result["broken"] == [] and result["pending"] == 0
    assert result["images"] == result["loaded"] == expected_maps + len(images)  # + each card's input image
    assert result["cards"] == result["visible"] == len(images)


def test_label_filter(chromium: Path, gallery: Path, tmp_path: Path) -> None:
    index = _index(gallery)
    images = index["images"]
    hidden_some = False
    for label in index["label_names"]:  # every model label is an option, predicted or not
        expected = [e["image_id"] for e in images if label in entry_labels(e)]
        result = _render(chromium, gallery, tmp_path / "profile", label=label)
        assert result["label"] == label and result["label_applied"]
        assert result["visible_ids"] == expected
        assert result["images"] == result["loaded"]
        hidden_some |= len(expected) < len(images)
    assert hidden_some, "no label hid an image: the filter was not exercised"


def test_metric_sort(chromium: Path, gallery: Path, tmp_path: Path) -> None:
    """Per-image metrics as the audit writes them (entry["metrics"][name]) sort the cards."""
    run = Path(shutil.copytree(gallery.parent, tmp_path / "run"))
    index = _index(gallery)
    count = len(index["images"])
    for order, entry in enumerate(index["images"]):  # reverse index order is worst first for adcc
        entry["metrics"] = {"adcc": (count - order) / count, "deletion": (count - order) / count}
    (run / "explain_index.json").write_text(json.dumps(index))
    page = write_gallery(run)
    ids = [e["image_id"] for e in index["images"]]
    for sort, order, expected in [("adcc", "worst", ids[::-1]), ("adcc", "best", ids), ("deletion", "worst", ids),
                                  ("", "worst", ids)]:
        result = _render(chromium, page, tmp_path / "profile", sort=sort, order=order)
        assert (result["sort"], result["order"]) == (sort, order)
        assert result["visible_ids"] == expected, (sort, order)
        assert result["broken"] == []


def test_cards_show_the_input_and_raw_maps_at_a_readable_size(chromium: Path, raw_gallery: Path,
                                                               tmp_path: Path) -> None:
    """Without postprocessing each map is the model's grid (2×2 here): drawn 160 px wide, nearest-neighbour,
    beside the input image itself."""
    images = _index(raw_gallery)["images"]
    result = _render(chromium, raw_gallery, tmp_path / "profile")
    assert result["broken"] == [] and result["pending"] == 0
    inputs = [shown for shown in result["shown"] if shown["kind"] == "input"]
    raw = [shown for shown in result["shown"] if shown["kind"] == "raw"]
    assert sorted(shown["natural_width"] for shown in inputs) == sorted(e["original_size"][1] for e in images)
    assert len(raw) == sum(1 for entry in images for name in entry["files"] if name.endswith("_saliency_map.png"))
    assert raw and all(shown["natural_width"] <= 4 and shown["width"] == 160 for shown in raw), raw[:3]
    page = raw_gallery.read_text()
    assert "image-rendering:pixelated" in page  # nearest-neighbour: the grid's cells stay visible

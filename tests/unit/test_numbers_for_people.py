"""Numbers for people: 3 significant digits in the gallery, the CSV and the CLI summary; the index keeps all."""

from __future__ import annotations

import csv
import json
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from otx_xai.cli import _print_explain_summary
from otx_xai.report import write_csv_index, write_gallery
from otx_xai.report.numbers import for_people

LONG = 0.5555555555555556  # the pointing game of 5 hits in 9, as the index holds it
METRIC = 0.123456789
SCORE = 0.987654321


def _significant(text: str) -> str:
    """The significant digits of a fixed-point number's text."""
    return text.lstrip("-").replace(".", "").lstrip("0")


@given(st.floats(min_value=1e-4, max_value=999.0, allow_nan=False) | st.floats(min_value=-999.0, max_value=-1e-4))
def test_three_significant_digits_as_python_rounds_them(value: float) -> None:
    shown = for_people(value)
    assert float(shown) == float(f"{value:.3g}")  # the same rounding as Python's own 3-significant-digit format
    assert len(_significant(shown)) == 3 and "e" not in shown


@pytest.mark.parametrize(("value", "shown"), [
    (LONG, "0.556"), (0.9996, "1.00"), (12345.6, "12300"), (1.0, "1.00"), (0.0, "0"), (7, "7"), (True, "True"),
    (2.5e-7, "2.50e-07"), (3.2e9, "3.20e+09"), (float("nan"), "nan"), ("ResNet", "ResNet"),
])
def test_edges(value: object, shown: str) -> None:
    assert for_people(value) == shown


class _Text(HTMLParser):
    """The text a browser shows (script and style left out)."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skip = False

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self._skip = tag in ("script", "style")

    def handle_endtag(self, tag: str) -> None:
        self._skip = False

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


@pytest.fixture
def run(tmp_path: Path) -> Path:
    run = tmp_path / "20260101_000000"
    run.mkdir()
    entry = {"image_id": "img_a", "source_path": str(tmp_path / "img_a.png"), "original_size": [40, 60],
             "predicted": [{"index": 0, "label": "circle", "score": SCORE}], "files": [], "error": None,
             "pointing_game": LONG, "metrics": {"adcc": METRIC}}
    document = {"version": 1, "task": "classification", "label_names": ["circle"],
                "summary": {"explained": 1, "failed": 0, "pointing_game": LONG}, "images": [entry]}
    (run / "explain_index.json").write_text(json.dumps(document))
    return run


def test_gallery_and_csv_round_for_people_and_the_index_keeps_full_precision(run: Path) -> None:
    index_before = (run / "explain_index.json").read_bytes()
    page = _Text()
    page.feed(write_gallery(run).read_text(encoding="utf-8"))
    text = " ".join(page.parts)
    assert "0.556" in text and "0.988" in text and "0.123" in text
    for long in (repr(LONG), repr(SCORE), repr(METRIC), "0.5556", "0.9877", "0.1235"):
        assert long not in text
    with open(write_csv_index(run), newline="", encoding="utf-8") as handle:
        row = next(csv.DictReader(handle))
    assert (row["predicted_scores"], row["pointing_game"], row["adcc"]) == ("0.988", "0.556", "0.123")
    assert (run / "explain_index.json").read_bytes() == index_before
    index = json.loads(index_before)
    assert index["summary"]["pointing_game"] == LONG and index["images"][0]["metrics"]["adcc"] == METRIC


def test_cli_summary_rounds_for_people(run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    summary = {"explained": 9, "failed": 0, "pointing_game": LONG,
               "sanity_check": {"flagged": True, "median_spearman": 0.8765432}}
    _print_explain_summary(SimpleNamespace(last_explain_dir=run, last_explain_summary=summary), dump=True)
    out = capsys.readouterr().out
    assert "quality: pointing_game=0.556" in out and "median Spearman 0.877" in out
    assert repr(LONG) not in out

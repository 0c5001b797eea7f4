"""Fuzzing the input edges with hypothesis (a few seconds each): image decoding, ExplainConfig, CLI, recipes.

Every input must end in a valid result or in the module's own one-line error type, never anything else.
"""

from __future__ import annotations

from argparse import ArgumentError
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from otx_xai.cli import build_parser
from otx_xai.data.image_io import ImageReadError, read_image_rgb
from otx_xai.engine.recipe import RecipeError, recipe_from_dict
from otx_xai.explain.config import ExplainConfig, TargetExplainGroup

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
VALID_IMAGES = [cv2.imencode(ext, np.full((9, 7, 3), 90, np.uint8))[1].tobytes() for ext in (".png", ".jpg", ".bmp")]


def _check_decoded(path: Path) -> None:
    try:
        image = read_image_rgb(path)
    except ImageReadError as error:
        assert "\n" not in str(error) and str(path) in str(error)
        return
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3


@FAST
@given(data=st.binary(max_size=2048))
def test_random_bytes_decode_or_fail_cleanly(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "fuzz.png"
    path.write_bytes(data)
    _check_decoded(path)


@FAST
@given(which=st.integers(0, len(VALID_IMAGES) - 1), cut=st.integers(0, 400), flips=st.lists(
    st.tuples(st.integers(0, 400), st.integers(0, 255)), max_size=8))
@example(which=2, cut=0, flips=[(21, 1)])  # a BMP whose header claims a width beyond OpenCV's limit: cv2.error
def test_mutated_images_decode_or_fail_cleanly(tmp_path: Path, which: int, cut: int, flips: list) -> None:
    data = bytearray(VALID_IMAGES[which][: max(1, len(VALID_IMAGES[which]) - cut)])
    for position, value in flips:
        data[position % len(data)] = value
    path = tmp_path / "mutated.jpg"
    path.write_bytes(bytes(data))
    _check_decoded(path)


@FAST
@given(group=st.one_of(st.text(max_size=12), st.sampled_from([g.value.lower() for g in TargetExplainGroup])),
       threshold=st.floats(allow_nan=True, allow_infinity=True), chunk=st.integers(-5, 10**6))
def test_explain_config_is_valid_or_one_line_value_error(group: str, threshold: float, chunk: int) -> None:
    try:
        config = ExplainConfig(target_explain_group=group, predicted_maps_conf_thr=threshold, max_explain_chunk=chunk)
    except ValueError as error:
        assert "\n" not in str(error)
        return
    assert isinstance(config.target_explain_group, TargetExplainGroup)
    assert 0.0 <= config.predicted_maps_conf_thr <= 1.0 and config.max_explain_chunk >= 1


FLAGS = ["--work_dir", "--data_root", "--checkpoint", "--dump", "--explain_config.target_explain_group",
         "--explain_config.postprocess", "--explain_config.predicted_maps_conf_thr", "--data.input_size",
         "--data.batch_size", "--metrics", "--fail_under", "--resume", "--unknown_flag", "--explain_confi.postprocess"]
VALUES = st.one_of(st.sampled_from(["True", "false", "PREDICTIONS", "ALL", "IMAGE", "0.5", "-1", "[64,64]", "[1]",
                                    "x", "", "nan", "{}"]), st.text(max_size=8))


@FAST
@given(argv=st.lists(st.tuples(st.sampled_from(FLAGS), VALUES), max_size=5))
def test_cli_parsing_accepts_or_raises_argument_error(argv: list[tuple[str, str]]) -> None:
    parser = build_parser()
    flat = ["explain"] + [token for pair in argv for token in pair]
    try:
        namespace = parser.parse_args(flat)
    except ArgumentError:
        return
    assert namespace.stage == "explain"


@FAST
@given(values=st.dictionaries(st.sampled_from(["task", "model", "data", "max_epochs", "typo"]),
                              st.one_of(st.none(), st.integers(), st.text(max_size=5),
                                        st.dictionaries(st.sampled_from(["batch_size", "input_size", "class_path",
                                                                         "init_args", "oops"]),
                                                        st.one_of(st.integers(1, 9), st.text(max_size=4)),
                                                        max_size=3)),
                              max_size=4))
def test_recipes_build_or_raise_recipe_error(values: dict) -> None:
    try:
        recipe_from_dict(values)
    except RecipeError as error:
        assert "\n" not in str(error)


def test_fuzz_found_regressions() -> None:
    """Inputs fuzzing found; each must stay a clean outcome."""
    with pytest.raises(ValueError, match="predicted_maps_conf_thr"):
        ExplainConfig(predicted_maps_conf_thr=float("nan"))

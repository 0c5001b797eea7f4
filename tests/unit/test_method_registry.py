"""The method registry: every entry imports to a real implementation whose name, tasks and defaults are the
ones declared; lookups and validation read it; the registry module itself imports no method."""

from __future__ import annotations

import ast
import inspect
import logging
from pathlib import Path

import pytest

import otx_xai.explain.registry as registry_module
from otx_xai.errors import UserError
from otx_xai.explain.black_box.presets import BlackBoxConfig
from otx_xai.explain.black_box.protocol import black_box_method, black_box_names
from otx_xai.explain.config import ExplainConfig
from otx_xai.explain.methods.base import ExplainAlgo
from otx_xai.explain.registry import (
    BACKENDS,
    FAMILIES,
    METHODS,
    TASKS,
    explains_through_runner,
    load_entry,
    method_spec,
    methods,
)
from otx_xai.explain.select import explain_time_method

WHITE_BOX = [spec for spec in METHODS if not explains_through_runner(spec)]
PERTURBATION = [spec for spec in METHODS if explains_through_runner(spec)]  # and I-GOS: through a ModelRunner


def test_names_are_unique_and_fields_are_known_values() -> None:
    assert len({spec.name for spec in METHODS}) == len(METHODS)
    for spec in METHODS:
        assert spec.family in FAMILIES and set(spec.tasks) <= set(TASKS) and set(spec.backends) <= set(BACKENDS)
        assert spec.tasks and spec.backends and spec.summary and spec.cost
        assert spec.entry.startswith(f"otx_xai.explain.methods.{spec.family}."), spec.entry


@pytest.mark.parametrize("spec", WHITE_BOX, ids=lambda spec: spec.name)
def test_a_white_box_entry_is_the_explain_algorithm_of_that_name_with_the_declared_defaults(spec) -> None:
    algo = load_entry(spec)
    assert issubclass(algo, ExplainAlgo) and algo.name == spec.name
    parameters = inspect.signature(algo.__init__).parameters
    for setting, default in spec.settings.items():
        if setting == "max_explain_chunk":  # an ExplainConfig field the model hands to its method
            assert default == ExplainConfig().max_explain_chunk
        else:
            assert parameters[setting].default == default, setting


@pytest.mark.parametrize("spec", PERTURBATION, ids=lambda spec: spec.name)
def test_a_perturbation_entry_builds_the_method_per_declared_task_with_the_declared_defaults(spec) -> None:
    assert set(load_entry(spec)) == set(spec.tasks)
    for task in spec.tasks:
        recorded = black_box_method(task, spec.name, BlackBoxConfig()).settings()
        declared = {key: value for key, value in spec.settings.items() if key in recorded}
        if spec.name == "AISE" and task == "detection":  # per-box budget: its own iteration count
            declared = {key: value for key, value in declared.items() if key != "iterations"}
            assert recorded["iterations"] == 50 and recorded["inferences_per_box"] == 150
        assert declared and all(
            tuple(recorded[key]) == value if isinstance(value, tuple) else recorded[key] == value
            for key, value in declared.items()), (task, recorded)


def test_lookups_filter_by_task_backend_and_family() -> None:
    assert {s.name for s in methods(task="instance_segmentation")} == {"InstSegMaskAggregation", "ActivationMap"}
    assert {s.name for s in methods(family="perturbation", task="detection")} == {"RISE", "DRISE", "AISE"}
    assert black_box_names("classification") == [s.name for s in methods(task="classification")
                                                 if explains_through_runner(s)]
    assert {"IGOS", "IGOSPlusPlus", "SAG"} <= set(black_box_names("classification"))
    assert all(s.family == "perturbation" or s.name in ("IGOS", "IGOSPlusPlus")
               for s in methods() if explains_through_runner(s))
    assert all("ir" in s.backends for s in methods(backend="ir"))
    assert method_spec("EigenCAM").family == "forward"


def test_an_unknown_name_is_a_one_line_user_error_naming_every_method() -> None:
    with pytest.raises(UserError) as error:
        method_spec("GradCAMM")
    message = str(error.value)
    assert "\n" not in message and "'GradCAMM'" in message
    assert all(spec.name in message for spec in METHODS)


def test_validation_accepts_every_registered_method_of_the_task_and_names_them_on_error(
        caplog: pytest.LogCaptureFixture) -> None:
    for task in TASKS:
        for spec in methods(task=task):
            assert explain_time_method("m", task, spec.name, "own", has_white_box=True) == spec.name
        with pytest.raises(UserError) as error:
            explain_time_method("m", task, "NoSuchMethod", "own", has_white_box=True)
        assert all(spec.name in str(error.value) for spec in methods(task=task))
    with caplog.at_level(logging.WARNING):
        assert explain_time_method("m", "detection", "auto", "none", has_white_box=False) == "AISE"


def test_the_registry_module_imports_no_method_module() -> None:
    tree = ast.parse(Path(registry_module.__file__).read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert {name for name in imported if name.startswith("otx_xai")} == {"otx_xai.errors"}

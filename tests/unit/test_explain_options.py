"""Engine.explain's options objects: the CLI builds them from its unchanged flags, IR-only options are a
one-line error on a checkpoint, and an old keyword names where it went."""

from __future__ import annotations

import pytest

from otx_xai.cli import _ir_options, _method_options, _output_options, build_parser
from otx_xai.engine.explain_options import IROptions, MethodOptions, OutputOptions, reject_moved_keywords
from otx_xai.errors import UserError
from otx_xai.explain.black_box.presets import BlackBoxConfig
from otx_xai.openvino.foreign_metadata import ForeignIROptions


def _explain_args(*flags: str):
    return build_parser().parse_args(["explain", *flags]).explain


def test_the_cli_flags_fill_the_options_objects() -> None:
    args = _explain_args("--explain_method", "RISE", "--black_box.num_masks", "40", "--black_box.seed", "3",
                         "--dump", "True", "--resume", "True", "--ir_precision", "bf16",
                         "--ir.performance_hint", "latency", "--ir.labels", "a,b", "--ir.multilabel", "True")
    assert _method_options(args) == MethodOptions(name="RISE", black_box=BlackBoxConfig(num_masks=40, seed=3))
    assert _output_options(args) == OutputOptions(dump=True, resume=True, keep_results=False)
    assert _ir_options(args) == IROptions(precision="bf16", performance_hint="latency",
                                          foreign=ForeignIROptions(labels=["a", "b"], multilabel=True))


def test_the_defaults_of_the_flags_are_the_defaults_of_the_objects() -> None:
    args = _explain_args()
    assert _method_options(args) == MethodOptions()
    assert _output_options(args) == OutputOptions(keep_results=False)  # the CLI returns nothing to a caller
    assert _ir_options(args) == IROptions()


@pytest.mark.parametrize(("options", "named"), [
    (IROptions(precision="bf16"), "ir_precision='bf16'"),
    (IROptions(performance_hint="latency"), "ir_performance_hint='latency'"),
    (IROptions(foreign=ForeignIROptions(labels="a,b")), "--ir.* flags"),
])
def test_ir_options_on_a_checkpoint_are_a_one_line_error(options: IROptions, named: str) -> None:
    with pytest.raises(UserError, match=named.replace("*", r"\*")) as error:
        options.require_checkpoint_defaults()
    assert "\n" not in str(error.value)
    IROptions().require_checkpoint_defaults()  # the defaults pass


def test_an_old_keyword_names_its_new_place() -> None:
    with pytest.raises(UserError, match=r"explain_method, resume: pass method=MethodOptions\(name=...\); "
                                        r"output=OutputOptions\(resume=...\)"):
        reject_moved_keywords({"explain_method": "RISE", "resume": True, "devices": 2})
    reject_moved_keywords({"devices": 2, "strategy": "ddp"})  # Trainer keywords pass

"""otx_xai.quiet hides exactly the third-party notices it names; everything else still shows."""

from __future__ import annotations

import logging
import warnings

import pytest
from lightning.pytorch.utilities.rank_zero import rank_zero_info, rank_zero_warn

from otx_xai.quiet import THIRD_PARTY_WARNINGS, quiet


def _warn_from(module: str, message: str, category: type[Warning]) -> None:
    """Raise a warning attributed to ``module`` (as if a line of it warned)."""
    exec(compile("warnings.warn(message, category)", module.replace(".", "/") + ".py", "exec"),
         {"__name__": module, "warnings": warnings, "message": message, "category": category})


def test_named_notices_are_hidden_and_the_rest_shows() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        quiet()
        _warn_from("lightning.pytorch.utilities._pytree",
                   "`isinstance(treespec, LeafSpec)` is deprecated, use ...", FutureWarning)
        _warn_from("torch.jit._trace", "`torch.jit.trace` is deprecated. Please switch to ...", FutureWarning)
        _warn_from("torch.jit._trace", "`torch.jit.trace_method` is deprecated. Please ...", FutureWarning)
        # the same words from another module, another category, or another message still show
        _warn_from("my_project.train", "`torch.jit.trace` is deprecated. Please switch to ...", FutureWarning)
        _warn_from("torch.jit._trace", "`torch.jit.trace` is deprecated. Please switch to ...", UserWarning)
        _warn_from("torch.jit._trace", "the traced output differs from the model's", FutureWarning)
        _warn_from("lightning.pytorch.trainer", "your data has one class", UserWarning)
    shown = [(w.category, str(w.message)) for w in caught]
    assert shown == [
        (FutureWarning, "`torch.jit.trace` is deprecated. Please switch to ..."),
        (UserWarning, "`torch.jit.trace` is deprecated. Please switch to ..."),
        (FutureWarning, "the traced output differs from the model's"),
        (UserWarning, "your data has one class"),
    ]
    assert len(THIRD_PARTY_WARNINGS) == 2


def test_lightning_tips_are_dropped_and_its_warnings_kept(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    level = logger.level
    try:
        with caplog.at_level(logging.INFO, logger="lightning.pytorch.utilities.rank_zero"), \
                warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            quiet()
            logger.setLevel(logging.INFO)  # even with its info lines on, the tips go
            rank_zero_info("💡 Tip: For seamless cloud logging and experiment tracking, try installing [litlogger]")
            rank_zero_info("Restoring states from the checkpoint")
            rank_zero_warn("The dataloader does not have many workers")
        assert [r.getMessage() for r in caplog.records] == ["Restoring states from the checkpoint"]
        assert [str(w.message) for w in caught] == ["The dataloader does not have many workers"]
    finally:
        logger.setLevel(level)

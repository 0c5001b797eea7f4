"""Quiet output for the CLI and the demo: third-party notices that say nothing about the user's work.

Each filter names one message and the module that raises it; nothing else is hidden, so warnings that
concern the user's data, model or run (ours, Lightning's, torch's) still show. ``quiet()`` is applied
by ``otx_xai.cli.main`` and ``otx_xai.demo.main``; the Python API leaves the caller's settings alone.
"""

from __future__ import annotations

import logging
import warnings

# (category, message regex matched at its start, module regex of the line that warns)
THIRD_PARTY_WARNINGS: tuple[tuple[type[Warning], str, str], ...] = (
    # Lightning 2.6's own pytree helper uses torch's deprecated LeafSpec on every batch it moves.
    (FutureWarning, r"`isinstance\(treespec, LeafSpec\)` is deprecated", r"lightning\.pytorch\.utilities\._pytree"),
    # openvino.convert_model traces with torch.jit.trace, which torch 2.14 marks as deprecated.
    (FutureWarning, r"`torch\.jit\.trace(_method)?` is deprecated", r"torch\.jit\._trace"),
)
LIGHTNING_LOGGERS = ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero")
LIGHTNING_NOTICES = ("💡 Tip:",)  # advertisements for litlogger / litmodels, at every Trainer


class _DropNotices(logging.Filter):
    """Drops Lightning's tips, whatever level the logger is at."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.getMessage()).startswith(LIGHTNING_NOTICES)


_DROP_NOTICES = _DropNotices()


def quiet() -> None:
    """Hide the third-party notices above (idempotent); Lightning's info lines (devices found, the
    fit's end) go too, since each stage prints its own summary."""
    for category, message, module in THIRD_PARTY_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category, module=module)
    for name in LIGHTNING_LOGGERS:
        logger = logging.getLogger(name)
        logger.setLevel(logging.WARNING)
        if _DROP_NOTICES not in logger.filters:
            logger.addFilter(_DROP_NOTICES)

"""Numbers as people read them: 3 significant digits (the index JSON keeps full precision)."""

from __future__ import annotations

import math
from typing import Any

SIGNIFICANT_DIGITS = 3


def for_people(value: Any, digits: int = SIGNIFICANT_DIGITS) -> str:
    """``value`` with ``digits`` significant digits, fixed-point (``0.556``, ``12.3``, ``12300``); integers,
    booleans and non-numbers as they are; exponent notation only below 1e-4 or from 1e6 on."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if not math.isfinite(value) or value == 0:
        return "0" if value == 0 else str(value)
    magnitude = abs(value)
    if magnitude < 1e-4 or magnitude >= 1e6:
        return f"{value:.{digits - 1}e}"
    exponent = math.floor(math.log10(magnitude))
    decimals = digits - 1 - exponent
    rounded = round(value, decimals)
    if abs(rounded) >= 10 ** (exponent + 1):  # 0.9996 → 1.00, not 1.000
        decimals -= 1
        rounded = round(value, decimals)
    return f"{rounded:.{max(decimals, 0)}f}"

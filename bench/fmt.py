"""Numbers as people read them: four significant digits, never in exponent notation."""

from __future__ import annotations

import math
from typing import Optional

__all__ = ["fmt_num", "fmt_ci"]


def fmt_num(value: Optional[float], digits: int = 4) -> str:
    """Four significant digits, never in exponent notation (2.08, 478.5, 58740)."""
    if value is None:
        return "-"
    if value == 0 or abs(value) >= 10 ** (digits - 1):
        return f"{value:.0f}"
    decimals = digits - 1 - math.floor(math.log10(abs(value)))
    return f"{value:.{decimals}f}"


def fmt_ci(low: Optional[float], high: Optional[float], digits: int = 4) -> str:
    return f"[{fmt_num(low, digits)}, {fmt_num(high, digits)}]"

"""Numbers as people read them: four significant digits, never in exponent notation."""

from __future__ import annotations

import math
from typing import Optional

__all__ = ["terminal_width", "fmt_num", "fmt_ci", "csv_cell"]


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


# What a spreadsheet takes for the start of a formula (OWASP's "CSV injection").
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: object) -> object:
    """A CSV cell a spreadsheet opens as text: a string that starts with = + - @, a tab or a carriage
    return gets a leading single quote (OWASP's advice against CSV injection: a tag or a hardware name
    ``=HYPERLINK(...)`` from someone else's record stays a name). A number stays as it is, in a string
    (``-3.5``) or not."""
    if not isinstance(value, str) or not value.startswith(_FORMULA_START):
        return value
    try:
        float(value)
    except ValueError:
        return "'" + value
    return value


def terminal_width(default: int = 100) -> int:
    """The terminal's columns: $COLUMNS, else what the terminal says, else ``default``."""
    import shutil

    return shutil.get_terminal_size((default, 24)).columns

"""How figures are written, on the pages and in the appendix alike: metrics with three
decimals, intervals as ``0.712 (95% CI 0.650–0.780)``, shares as percentages with one decimal,
counts with thousands separators."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime


def fmt(x: float | None, digits: int = 3) -> str:
    """A metric with ``digits`` decimals; ``n/a`` when undefined."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return f"{x:.{digits}f}"


def fmt_ci(value: float | None, ci: Sequence[float | None] | None, digits: int = 3) -> str:
    """``0.712 (95% CI 0.650–0.780)``; the value alone when there is no interval."""
    if not ci or any(c is None or (isinstance(c, float) and math.isnan(c)) for c in ci):
        return fmt(value, digits)
    return f"{fmt(value, digits)} (95% CI {fmt(ci[0], digits)}–{fmt(ci[1], digits)})"


def fmt_bounded_share(value: float, ci: Sequence[float], bound_only: bool) -> str:
    """A corrected share as :func:`fmt_share`, or, when the coded texts only bound it (none of
    them in the category), ``≤ 3.6% (exact 95% bound)``: never a certain-looking 0.0%."""
    if bound_only:
        return f"≤ {100 * ci[1]:.1f}% (exact 95% bound)"
    return fmt_share(value, ci)


def fmt_share(value: float, ci: Sequence[float]) -> str:
    """``12.3% (95% CI 10.1–14.5%)``."""
    return f"{100 * value:.1f}% (95% CI {100 * ci[0]:.1f}–{100 * ci[1]:.1f}%)"


def fmt_count(x: int | None) -> str:
    return "n/a" if x is None else f"{int(x):,}"


def plural(n: int, word: str, plural: str | None = None) -> str:
    """``word`` or its plural, as fits ``n``."""
    return word if n == 1 else (plural or word + "s")


def fmt_date(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d") if value else "an unrecorded date"


def first_upper(text: str) -> str:
    """``text`` with its first letter in upper case and the rest as it is (``str.capitalize``
    would write "the LLM's" as "the llm's")."""
    return text[:1].upper() + text[1:]

"""The one clock every record uses."""

from datetime import UTC, datetime


def utcnow() -> datetime:
    """The current time as an aware UTC datetime (what every record stores)."""
    return datetime.now(UTC)


def fmt_duration(seconds: float) -> str:
    """A duration as people plan with it: '40 s', '6 min', '1 h 20 min' (rounded; never 0)."""
    s = max(0.0, float(seconds))
    if s < 57.5:
        return f"{max(1, round(s / 5) * 5 if s >= 10 else round(s))} s"
    minutes = max(1, round(s / 60))
    if minutes < 60:
        return f"{minutes} min"
    hours, rest = divmod(minutes, 60)
    return f"{hours} h {rest} min" if rest else f"{hours} h"

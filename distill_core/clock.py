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


def fmt_done(count: int, noun: str, seconds: float | None) -> str:
    """'100,000 texts in 6 min': how many things were done and how long they took. Without a
    recorded time (0 or None) the count alone, never 'in 0 s'."""
    done = f"{count:,} {noun}"
    return f"{done} in {fmt_duration(seconds)}" if seconds and seconds > 0 else done

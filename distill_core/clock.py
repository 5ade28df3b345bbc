"""The one clock every record uses."""

from datetime import UTC, datetime


def utcnow() -> datetime:
    """The current time as an aware UTC datetime (what every record stores)."""
    return datetime.now(UTC)

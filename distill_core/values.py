"""One reading of a table cell for the whole package: missing, blank, an id, text, JSON.

Uploads, imports of codes, samples and agreement all ask "is this cell empty?"; they ask here,
so a cell that one step counts as missing is missing for every other step too.
"""

from __future__ import annotations

import datetime as _dt
import decimal
import math
from typing import Any

import numpy as np


def is_missing(value: Any) -> bool:
    if value is None or type(value).__name__ in ("NAType", "NaTType"):
        return True
    if isinstance(value, float | np.floating):
        return bool(np.isnan(value))
    if isinstance(value, np.datetime64 | np.timedelta64):
        return bool(np.isnat(value))
    return False


def cell_to_text(value: Any) -> str:
    """A cell as text: integral floats without ".0", dates in ISO form, bytes decoded."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, _dt.datetime | _dt.date | _dt.time):
        return value.isoformat()
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", errors="replace")
    return str(value)


def to_json(value: Any) -> Any:
    """Any cell as a JSON-serialisable python value (NaN/NaT/NA → None)."""
    if isinstance(value, str | bool | int) and not isinstance(value, np.generic):
        return value
    if isinstance(value, list | tuple | np.ndarray):
        return [to_json(v) for v in list(value)]
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    if is_missing(value):
        return None
    if isinstance(value, np.generic):
        value = value.item()
        if isinstance(value, bytes | _dt.datetime | _dt.timedelta):
            return to_json(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, int | bool | str):
        return value
    if isinstance(value, _dt.datetime | _dt.date | _dt.time):
        return value.isoformat()
    if isinstance(value, _dt.timedelta):
        return str(value)
    if isinstance(value, decimal.Decimal):
        return float(value) if value.is_finite() else None
    if isinstance(value, bytes | bytearray):
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            return None
    return str(value)


def id_text(value) -> str:
    """An id cell as text: 17.0 (a number column read as floats) becomes "17"; spaces stripped."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def is_blank(value) -> bool:
    """A cell with nothing in it: None, NaN/NA, or only whitespace."""
    if value is None:
        return True
    if not isinstance(value, str) and is_missing(value):
        return True
    return str(value).strip() == ""


def json_safe(value: Any) -> Any:
    """``value`` as JSON can store it: NaN and infinities become None, tuples lists, and
    anything else that is not JSON its string."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, str | int | bool):
        return value
    return str(value)


def content_key(text: str | None) -> str:
    """What makes two texts the same text for the held-out rule: Unicode-normalised (NFKC),
    case-folded, with runs of white space made one space and the ends trimmed; hashed."""
    import hashlib
    import unicodedata

    folded = " ".join(unicodedata.normalize("NFKC", text or "").casefold().split())
    return hashlib.sha256(folded.encode("utf-8")).hexdigest()

"""Preparing a corpus: choose the text and id columns of a read `Table`, check them, and report
empty, repeated and very long texts (kept, never dropped)."""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from dataclasses import dataclass
from itertools import repeat
from typing import Any

import numpy as np
import pandas as pd

from distill_core.corpus.readers import (
    _MAX_LISTED_COLUMNS,
    _MAX_LISTED_IDS,
    LONG_TEXT_CHARS,
    CorpusError,
    IngestReport,
    PreparedCorpus,
    Table,
    _count,
)
from distill_core.values import cell_to_text, is_missing, to_json

# --------------------------------------------------------------------------------------------
# Choosing columns


def _is_text_like(col: pd.Series) -> bool:
    if pd.api.types.is_string_dtype(col.dtype) and not pd.api.types.is_object_dtype(col.dtype):
        return True
    if pd.api.types.is_object_dtype(col.dtype):
        present = col.dropna()
        if present.empty:
            return False
        sample = present.iloc[:1000]
        return sum(isinstance(v, str) for v in sample) * 2 > len(sample)
    return False


def text_columns(frame: pd.DataFrame) -> list[str]:
    """Usable text (string) columns, best first: the longest mean length (missing counts as 0).

    Columns whose values are mostly single tokens (dates, URLs, codes) rank after columns of words.
    """
    scored = []
    for position, name in enumerate(frame.columns):
        col = frame[name]
        if not _is_text_like(col):
            continue
        strings = col.astype("str").fillna("").str.strip()
        lengths = strings.str.len()
        nonempty = int((lengths > 0).sum())
        if nonempty == 0:
            continue
        sample = strings[lengths > 0].iloc[:2000]
        wordy = bool(sample.str.contains(r"\s", regex=True).mean() >= 0.5)
        scored.append((not wordy, -float(lengths.mean()), position, str(name)))
    return [name for *_, name in sorted(scored)]


def suggest_text_column(frame: pd.DataFrame) -> str | None:
    """The string column with the longest mean length, or None when no column holds text."""
    columns = text_columns(frame)
    return columns[0] if columns else None


#: Column names that say "id" (compared lower-case, without spaces, hyphens or underscores),
#: besides any name ending in a separated or capitalised "id" (doc_id, Tweet ID, docId).
ID_NAMES = frozenset({"id", "docid", "textid", "rowid", "uid", "uuid", "guid", "identifier", "key"})
_ID_SUFFIX = re.compile(r"(?:[\s_.\-](?i:id)|[a-z0-9](?:Id|ID))$")
#: A value of a column "plainly an id" by its values alone: one token, short.
_ID_VALUE = re.compile(r"\S{1,64}")


@dataclass(frozen=True)
class IdSuggestion:
    """The id column an upload plainly has (None: generate ids) and the sentence saying why."""

    column: str | None
    sentence: str


def suggest_id_column(frame: pd.DataFrame, text_column: str | None = None) -> IdSuggestion:
    """The column that is plainly an id: the first named as one (``id``, ``doc_id``, ``Tweet
    ID``… case-insensitive) whose values can be ids (present and unique), else the first
    column of whole numbers or single short tokens, present and unique in every row. Never
    the text column; a column named as an id that cannot be one is said so."""
    columns = [c for c in frame.columns if c != text_column]
    rejected = ""
    for column in [c for c in columns if named_as_id(str(c))]:
        values = _id_values(frame[column])
        problem = "empty" if "" in values else "repeated" if len(set(values)) < len(values) else ""
        if not problem:
            return IdSuggestion(
                str(column), f"Ids from “{column}”: it is named as an id and unique in every row."
            )
        rejected = rejected or f"“{column}” has {problem} values"
    for column in columns:
        if _plain_ids(frame[column]):
            because = f" ({rejected})" if rejected else ""
            return IdSuggestion(str(column), f"Ids from “{column}”: unique in every row{because}.")
    because = f"{rejected} and no other" if rejected else "no"
    return IdSuggestion(
        None,
        f"Ids are generated from the texts (the same on every upload): {because} column is "
        "unique in every row.",
    )


def named_as_id(name: str) -> bool:
    """Whether a column's name says it holds ids (``id``, ``doc_id``, ``Tweet ID``, ``docId``…)."""
    folded = re.sub(r"[\s_\-.]", "", name.strip().lower())
    return folded in ID_NAMES or bool(_ID_SUFFIX.search(name.strip()))


def _plain_ids(col: pd.Series) -> bool:
    """Whole numbers, or single short tokens, present and unique in every row."""
    if len(col) == 0 or col.isna().any():
        return False
    if pd.api.types.is_integer_dtype(col.dtype):
        return bool(col.is_unique)
    if not _is_text_like(col):
        return False
    values = col.astype(str).str.strip()
    return bool(values.str.fullmatch(_ID_VALUE.pattern).all() and values.is_unique)


# --------------------------------------------------------------------------------------------
# Preparing a corpus


def prepare_corpus(
    table: Table,
    text_column: str,
    id_column: str | None = None,
    *,
    long_text_chars: int = LONG_TEXT_CHARS,
) -> PreparedCorpus:
    """Pick the text and id columns of a `Table` and check them; report empty/repeated/long texts.

    Ids come from `id_column` (as strings; they must be non-empty and unique) or, without one,
    from `generate_ids`. Texts are kept as they are ("" when missing); repeats and empties are
    counted, never dropped.
    """
    frame = table.frame
    name = table.filename
    _require_column(frame, text_column)
    if id_column is not None:
        _require_column(frame, id_column)
        if id_column == text_column:
            raise CorpusError(
                f"The id column and the text column are both '{text_column}'; choose a different "
                "id column or none."
            )
    text_col = frame[text_column]
    if not _is_text_like(text_col):
        usable = text_columns(frame)
        if not usable:
            raise CorpusError(
                f"The file {name} has no text column: every column holds numbers, dates or nothing."
            )
        raise CorpusError(
            f"The column '{text_column}' holds {_kind_of(text_col)}, not text; choose a text "
            f"column ({_list_names(usable)})."
        )
    texts = _texts_of(text_col)
    stripped_empty = [not t.strip() for t in texts]
    n_empty = sum(stripped_empty)
    if n_empty == len(texts):
        raise CorpusError(
            f"The column '{text_column}' in {name} has no text: every value is empty."
        )

    if id_column is None:
        ids = generate_ids(texts)
        ids_generated = True
    else:
        ids = _ids_of(frame[id_column], id_column, name)
        ids_generated = False

    empty_ids = tuple(i for i, e in zip(ids, stripped_empty, strict=True) if e)[:_MAX_LISTED_IDS]
    series = pd.Series(texts, dtype=object)
    nonempty = ~pd.Series(stripped_empty)
    repeated = series.duplicated(keep="first") & nonempty
    duplicate_texts = int(repeated.sum())
    duplicate_groups = int(series[repeated].nunique()) if duplicate_texts else 0
    lengths = series.str.len()
    long_mask = lengths > long_text_chars
    long_texts = int(long_mask.sum())
    long_ids = tuple(ids[i] for i in np.flatnonzero(long_mask.to_numpy())[:_MAX_LISTED_IDS])

    extra_names = [c for c in frame.columns if c not in (text_column, id_column)]
    extras = _extras(frame, extra_names)
    report = IngestReport(
        rows=len(texts),
        empty_texts=n_empty,
        empty_ids=empty_ids,
        duplicate_texts=duplicate_texts,
        duplicate_groups=duplicate_groups,
        long_texts=long_texts,
        long_ids=long_ids,
        encoding=table.encoding,
        ids_generated=ids_generated,
        warnings=table.warnings,
        long_text_chars=long_text_chars,
    )
    return PreparedCorpus(
        text_column=text_column,
        id_column=id_column,
        ids=ids,
        texts=texts,
        extras=extras,
        report=report,
    )


def generate_ids(texts: list[str]) -> list[str]:
    """Ids that survive re-uploads and reordering: "t" + sha1(text)[:12], "-k" on the k-th repeat."""
    sha1 = hashlib.sha1
    bases = ["t" + sha1(t.encode("utf-8")).hexdigest()[:12] for t in texts]
    if len(set(bases)) == len(bases):
        return bases
    ids: list[str] = []
    seen: dict[str, int] = {}
    owner: dict[str, str] = {}
    for text, base in zip(texts, bases, strict=True):
        first = owner.setdefault(base, text)
        if first is not text and first != text:  # a 48-bit prefix collision: widen this one
            base = "t" + sha1(text.encode("utf-8")).hexdigest()[:24]
        k = seen.get(base, 0) + 1
        seen[base] = k
        ids.append(base if k == 1 else f"{base}-{k}")
    return ids


def _require_column(frame: pd.DataFrame, column: str) -> None:
    if column not in frame.columns:
        raise CorpusError(
            f"The column '{column}' is not in the file (columns: {_list_names(list(frame.columns))})."
        )


def _list_names(names: list[Any]) -> str:
    shown = ", ".join(str(n) for n in names[:_MAX_LISTED_COLUMNS])
    if len(names) > _MAX_LISTED_COLUMNS:
        shown += f", … and {len(names) - _MAX_LISTED_COLUMNS} more"
    return shown


def _kind_of(col: pd.Series) -> str:
    if pd.api.types.is_bool_dtype(col.dtype):
        return "true/false values"
    if pd.api.types.is_numeric_dtype(col.dtype):
        return "numbers"
    if pd.api.types.is_datetime64_any_dtype(col.dtype):
        return "dates"
    if col.isna().all():
        return "no values"
    return "values that are not text"


def _texts_of(col: pd.Series) -> list[str]:
    if pd.api.types.is_string_dtype(col.dtype) and not pd.api.types.is_object_dtype(col.dtype):
        return col.fillna("").tolist()
    return ["" if is_missing(v) else cell_to_text(v) for v in col.tolist()]


def _id_values(col: pd.Series) -> list[str]:
    """A column's values as ids: text, stripped; "" where missing."""
    if pd.api.types.is_integer_dtype(col.dtype) and not col.isna().any():
        return [str(v) for v in col.tolist()]
    if pd.api.types.is_string_dtype(col.dtype) and not pd.api.types.is_object_dtype(col.dtype):
        return col.str.strip().fillna("").tolist()
    return ["" if is_missing(v) else cell_to_text(v).strip() for v in col.tolist()]


def _ids_of(col: pd.Series, column: str, name: str) -> list[str]:
    ids = _id_values(col)
    empty = [i for i, v in enumerate(ids) if v == ""]
    if empty:
        raise CorpusError(
            f"The id column '{column}' in {name} has {_count(len(empty), 'empty value')} "
            f"(first in row {empty[0] + 1}); every row needs an id."
        )
    if len(set(ids)) != len(ids):
        counts = Counter(ids)
        repeats = [(v, n) for v, n in counts.items() if n > 1]
        value, n = repeats[0]
        raise CorpusError(
            f"The id column '{column}' in {name} has repeated values (e.g. '{value}' appears "
            f"{n} times, {_count(len(repeats), 'repeated id')} in all); ids must be unique."
        )
    return ids


def _extras(frame: pd.DataFrame, names: list[str]) -> list[dict]:
    """Each row's other columns as JSON-ready python values (None for missing)."""
    if not names:
        return [{} for _ in range(len(frame))]
    columns = [_json_column(frame[n]) for n in names]
    keys = [str(n) for n in names]
    return list(map(dict, map(zip, repeat(keys), zip(*columns, strict=True))))


def _json_column(col: pd.Series) -> list[Any]:
    dtype = col.dtype
    if pd.api.types.is_bool_dtype(dtype) and not col.isna().any():
        return [bool(v) for v in col.tolist()]
    if pd.api.types.is_integer_dtype(dtype) and not col.isna().any():
        return [int(v) for v in col.tolist()]
    if pd.api.types.is_float_dtype(dtype) and not isinstance(dtype, pd.ArrowDtype):
        values = col.to_numpy(dtype="float64", na_value=np.nan)
        finite = np.isfinite(values)
        out = values.tolist()
        if not finite.all():
            for i in np.flatnonzero(~finite):
                out[i] = None
        return out
    if pd.api.types.is_string_dtype(dtype) and not pd.api.types.is_object_dtype(dtype):
        return col.astype(object).where(col.notna(), None).tolist()
    return [to_json(v) for v in col.tolist()]

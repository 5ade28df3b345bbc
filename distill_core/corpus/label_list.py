"""A codebook's labels in bulk: a list of names with definitions, from a CSV, TSV or Excel
file or from text pasted out of a spreadsheet (tab-separated) or a document (one label a
line, "name: definition" or "name, definition").

Two columns, name then definition; a first row that names them (name/label/category…,
definition/description…) is a header and is skipped, any other first row is a label. A
single column is names without definitions (the editor asks for them). Every problem is a
``CodebookError`` with one sentence. The file is read by the corpus reader (`read_table`),
so encodings, delimiters and Excel work as for an upload.
"""

from __future__ import annotations

import csv
import io
import re

import pandas as pd

from distill_core.codebook import CodebookError, Label
from distill_core.corpus.readers import CorpusError, read_table
from distill_core.values import cell_to_text, is_blank

__all__ = ["LABEL_LIST_SUFFIXES", "labels_from_file", "labels_from_text"]

#: File types a label list may come in (a JSON file is a whole codebook instead).
LABEL_LIST_SUFFIXES = (".csv", ".tsv", ".txt", ".xlsx")

_NAME_HEADERS = {"name", "names", "label", "labels", "label name", "category", "categories"}
_NAME_HEADERS |= {"code", "codes", "class", "topic", "topics", "category name"}
_DEFINITION_HEADERS = {"definition", "definitions", "description", "descriptions"}
_DEFINITION_HEADERS |= {"meaning", "explanation", "rule", "rules", "includes", "notes"}
_PASTED = "The pasted text"
#: A column the reader named itself because the first row's cell was empty.
_GENERATED = re.compile(r"^column_\d+$")
#: "name: definition" or "name - definition" on one pasted line.
_LINE = re.compile(r"^\s*(?P<name>[^:\t]+?)\s*(?::|\s[-–—]\s)\s*(?P<definition>.*)$")


def labels_from_file(data: bytes, filename: str) -> list[Label]:
    """The labels of a CSV, TSV, text or Excel file of two columns (name, definition)."""
    return _read(data, filename, filename)


def _read(data: bytes, filename: str, source: str) -> list[Label]:
    suffix = "." + filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    if suffix not in LABEL_LIST_SUFFIXES:
        raise CodebookError(
            f"The file {filename} is not a label list: use CSV, TSV or Excel with two columns "
            "(name, definition), or a JSON codebook."
        )
    try:
        table = read_table(data, filename)
    except CorpusError as exc:
        raise CodebookError(str(exc).replace(f"The file {filename}", _what(source))) from None
    return _labels(table.frame, source)


def labels_from_text(text: str) -> list[Label]:
    """The labels of pasted text: rows copied from a spreadsheet (tab between name and
    definition), comma-separated lines, or one label a line as "name: definition"."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        raise CodebookError("Nothing was pasted: paste one label a line.")
    if any("\t" in line for line in lines):  # cells copied from a spreadsheet
        rows = [_trimmed(r) for r in csv.reader(io.StringIO("\n".join(lines)), delimiter="\t")]
    elif all(_LINE.match(line) for line in lines):
        rows = [[m["name"], m["definition"]] for m in map(_LINE.match, lines)]
    else:
        return _read("\n".join(lines).encode("utf-8"), "pasted.csv", _PASTED)
    width = max(len(r) for r in rows)
    rows = [r + [""] * (width - len(r)) for r in rows]
    header = [c or f"column_{i + 1}" for i, c in enumerate(rows[0])]
    return _labels(pd.DataFrame(rows[1:], columns=header), _PASTED)


def _trimmed(row: list[str]) -> list[str]:
    """A pasted row without the empty cells a spreadsheet copies after the last one."""
    while row and not row[-1].strip():
        row = row[:-1]
    return row


def _labels(frame: pd.DataFrame, source: str) -> list[Label]:
    """Labels from a frame whose column names are the file's first row."""
    columns = [str(c) for c in frame.columns]
    name_col, def_col = _header(columns)
    if name_col is None:  # no header: the first row is a label
        if len(columns) > 2:
            raise CodebookError(
                f"{_what(source)} has {len(columns)} columns, but a label list has two (name "
                "and definition), or a first row naming them."
            )
        first = [("" if _GENERATED.match(c) else c) for c in columns]
        rows = [first, *frame.itertuples(index=False, name=None)]
        pairs = [(r[0], r[1] if len(r) > 1 else None) for r in rows]
    else:
        names = frame[name_col].tolist()
        definitions = frame[def_col].tolist() if def_col is not None else [None] * len(names)
        pairs = list(zip(names, definitions, strict=True))
    labels: list[Label] = []
    for i, (name, definition) in enumerate(pairs, start=1 if name_col is None else 2):
        if is_blank(name):
            if is_blank(definition):
                continue
            raise CodebookError(f"Row {i} of {_of(source)} has a definition but no name.")
        labels.append(
            Label(
                cell_to_text(name).strip(),
                "" if is_blank(definition) else cell_to_text(definition).strip(),
            )
        )
    if not labels:
        raise CodebookError(f"{_what(source)} has no labels.")
    return labels


def _header(columns: list[str]) -> tuple[str | None, str | None]:
    """The name and definition columns where the first row names them, else (None, None)."""
    lowered = [c.strip().lower() for c in columns]
    name = next((c for c, low in zip(columns, lowered, strict=True) if low in _NAME_HEADERS), None)
    definition = next(
        (c for c, low in zip(columns, lowered, strict=True) if low in _DEFINITION_HEADERS), None
    )
    if name is None and definition is not None:
        name = next((c for c in columns if c != definition), None)
    if name is not None and definition is None and len(columns) > 1:
        definition = next(c for c in columns if c != name)
    return name, definition


def _what(source: str) -> str:
    return source if source.startswith("The ") else f"The file {source}"


def _of(source: str) -> str:
    return source[0].lower() + source[1:] if source.startswith("The ") else source

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
    return _frame_labels(table.frame, source)


def labels_from_text(text: str) -> list[Label]:
    """The labels of pasted text: rows copied from a spreadsheet (tab between name and
    definition), comma-separated lines, or one label a line as "name: definition"."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        raise CodebookError("Nothing was pasted: paste one label a line.")
    if any("\t" in line for line in lines):  # cells copied from a spreadsheet
        try:
            rows = [_trimmed(r) for r in csv.reader(io.StringIO("\n".join(lines)), delimiter="\t")]
        except csv.Error as exc:  # a cell over the csv module's limit, for one
            raise CodebookError(f"The pasted text cannot be read as rows ({exc}).") from None
    elif all(_LINE.match(line) for line in lines):
        rows = [[m["name"], m["definition"]] for m in map(_LINE.match, lines)]
    else:
        return _read("\n".join(lines).encode("utf-8"), "pasted.csv", _PASTED)
    return _labels(rows[0], rows[1:], _PASTED)


def _trimmed(row: list[str]) -> list[str]:
    """A pasted row without the empty cells a spreadsheet copies after the last one."""
    while row and not row[-1].strip():
        row = row[:-1]
    return row


def _frame_labels(frame: pd.DataFrame, source: str) -> list[Label]:
    """Labels from a file read by `read_table`, whose column names are its first row."""
    first = ["" if _GENERATED.match(str(c)) else str(c) for c in frame.columns]
    return _labels(first, list(frame.itertuples(index=False, name=None)), source)


def _labels(first: list, body: list, source: str) -> list[Label]:
    """Labels from a list's first row (a header, or a label) and the rows after it."""
    columns = _header([str(c) for c in first])
    if columns is None:  # no header: the first row is a label
        width = max(len([c for c in first if not is_blank(c)]), 1)
        if len(first) > 2 and width > 2:
            raise CodebookError(
                f"{_what(source)} has {len(first)} columns, but a label list has two (name "
                "and definition), or a first row naming them."
            )
        columns, body, start = (0, 1), [first, *body], 1
    else:
        start = 2
    name_at, definition_at = columns
    labels: list[Label] = []
    for i, row in enumerate(body, start=start):
        name = row[name_at] if name_at < len(row) else None
        definition = (
            row[definition_at] if definition_at is not None and definition_at < len(row) else None
        )
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


def _header(columns: list[str]) -> tuple[int, int | None] | None:
    """Where the name and definition columns are when the first row names them, else None."""
    lowered = [c.strip().lower() for c in columns]
    name = next((i for i, low in enumerate(lowered) if low in _NAME_HEADERS), None)
    definition = next((i for i, low in enumerate(lowered) if low in _DEFINITION_HEADERS), None)
    if name is None and definition is None:
        return None
    others = [i for i in range(len(columns)) if i not in (name, definition)]
    if name is None:
        name = others.pop(0) if others else None
        if name is None:
            return None
    if definition is None and others:
        definition = others[0]
    return name, definition


def _what(source: str) -> str:
    return source if source.startswith("The ") else f"The file {source}"


def _of(source: str) -> str:
    return source[0].lower() + source[1:] if source.startswith("The ") else source

"""Exports of a project: the labelled corpus (CSV, Excel, Parquet, Stata), the human codes,
the LLM audit log, the student model as a zip, and (through ``appendix``) the methods appendix.

Choices a user of the files should know:

* CSV is UTF-8 **with** a byte-order mark (``utf-8-sig``) and ``\\r\\n`` line ends (RFC 4180,
  and a text holding a lone carriage return is then quoted): Excel opens accents right only
  with the mark, and pandas, R's readr and Stata's ``import delimited`` skip it. It is written
  in chunks of :data:`CHUNK_ROWS` rows (:func:`iter_csv`), so a large corpus never exists as
  one big string besides the frame and the finished bytes.
* Excel files of a table have one sheet, ``data`` (the sample for outside coders has three:
  ``sample``, ``codebook`` and ``instructions``). Their XML keeps line ends as ``\\n`` (a carriage
  return reads back as a line feed) and drops control characters Excel forbids.
* CSV and Excel cells are protected against formula injection (:func:`escape_formulas`): a
  text cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return gets a leading
  apostrophe, as OWASP advises; numbers (and text that is a plain number such as ``-3``) are
  left alone. Parquet and Stata are data formats no spreadsheet evaluates: not escaped.
* Stata files are version 118 (Stata 14+, UTF-8). Label columns are value-labelled integers
  (the codebook's order), long texts are ``strL``, and column names Stata does not accept are
  renamed (:func:`stata_names`); every renamed column keeps its original name as its variable
  label, and :func:`write` returns the renames.
* No export holds an API key: keys never reach the store (see ``distill_core.llm.Endpoint``).
"""

from __future__ import annotations

import io
import re
import unicodedata
import zipfile
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from distill_core.store.models import LabelRun, StudentModel, User
from distill_core.study import activity, assignments, projects, runs, students, validation
from distill_core.study.access import Capability, entry

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from distill_core.config import Settings

#: Rows per CSV chunk: the most of the corpus that is ever text at once besides the result.
CHUNK_ROWS = 10_000
#: Excel's row limit (one row is the header) and cell limit, in characters.
EXCEL_MAX_ROWS = 1_048_576
EXCEL_MAX_CELL = 32_767
#: Stata 118: longest ``str#`` in bytes (longer strings become ``strL``); longest name and label.
STATA_MAX_STR = 2045
STATA_MAX_NAME = 32
STATA_MAX_LABEL = 80

#: Corpus file formats: (MIME type, file extension).
TABLE_FORMATS = {
    "csv": ("text/csv", ".csv"),
    "xlsx": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", ".xlsx"),
    "parquet": ("application/vnd.apache.parquet", ".parquet"),
    "dta": ("application/x-stata-dta", ".dta"),
}
#: Every export :func:`export_project` makes: (MIME type, file extension).
FORMATS = TABLE_FORMATS | {
    "codes": ("text/csv", ".csv"),
    "audit": ("application/jsonl", ".jsonl"),
    "appendix-md": ("text/markdown", ".md"),
    "appendix-html": ("text/html", ".html"),
    "model": ("application/zip", ".zip"),
    "sample-xlsx": (TABLE_FORMATS["xlsx"][0], ".xlsx"),
    "sample-csv": ("text/csv", ".csv"),
    "codebook-csv": ("text/csv", ".csv"),
}

#: What each provenance column of :func:`labelled_corpus` holds (Stata variable labels too).
COLUMN_LABELS = {
    "doc_id": "Document id",
    "text": "Text",
    "llm_label": "LLM label (the modal answer over repeats)",
    "llm_confidence": "LLM's confidence in its label (0-1)",
    "llm_consistency": "Share of repeated LLM answers that agree with the label",
    "llm_status": "LLM answer: ok, invalid (no codebook label) or error",
    "llm_model": "LLM that gave the label",
    "codebook_version": "Codebook version the LLM labelled with",
    "codebook_note": "Marked when that codebook was saved after the held-out score was seen",
    "student_label": "Label predicted by the fine-tuned student model",
    "student_probability": "Student's probability of its label",
    "student_model": "Student model (base model #model id)",
    "human_gold": "Human label: the adjudicated code, else the coders' majority (ties empty)",
    "adjudicated_label": "Gold code an expert chose where coders disagreed",
    "adjudication_reason": "The expert's reason for the adjudicated code",
    "gold_source": "Where human_gold comes from: adjudicated, unanimous, majority, one coder, tie",
    "sample_part": "Validation sample part: dev or held-out test (empty: not sampled)",
}
_LLM_COLUMNS = ["llm_label", "llm_confidence", "llm_consistency", "llm_status", "llm_model"]
_STUDENT_COLUMNS = ["student_label", "student_probability"]


class ExportError(ValueError):
    """Nothing to export, or a file format's limit reached; one sentence."""


# ---------------------------------------------------------------- the labelled corpus


@entry(Capability.READ)
def labelled_corpus(
    session: Session, user: User, project_id: int, *, probabilities: bool = False
) -> pd.DataFrame:
    """Every document of the project's corpus, in corpus order, with where its labels came from.

    Columns: ``doc_id``, ``text``, the file's other columns (one that clashes with a column
    below is prefixed ``file_``), then ``llm_label``, ``llm_confidence``, ``llm_consistency``,
    ``llm_status``, ``llm_model``, ``codebook_version`` (from ``runs.provenance_run``),
    ``codebook_note`` (marked when that codebook was saved after the held-out score was seen),
    ``student_label``, ``student_probability`` (and ``prob_<label>`` per class with
    ``probabilities``), ``student_model`` (from the latest corpus pass of a student), one
    ``human_<coder>`` per coder, ``human_gold`` (``validation.gold_rule``: the adjudicated
    code, else the majority of coders), ``adjudicated_label`` and ``adjudication_reason``
    (an expert's code where coders disagreed), ``gold_source`` and ``sample_part``
    (dev/test in the current validation sample). A part the project does not have yet is an
    empty column. Label columns are categoricals in the codebook's order (Stata value labels).
    """
    corpus = projects.get_corpus(session, user, project_id)
    if corpus is None:
        raise ExportError("The project has no corpus yet: upload one on the Data page first.")
    frame = projects.load_documents(session, user, project_id)
    run = runs.provenance_run(session, user, project_id, corpus.id)
    labels = runs.label_names(session, user, project_id, run)
    frame = _prefix_clashes(frame)
    ids = frame["doc_id"]
    _add_llm(session, frame, run)
    _add_student(session, user, frame, project_id, corpus.id, labels, probabilities)
    codes = validation.codes_frame(session, user, project_id)
    for coder in sorted(codes["coder"].unique()):
        own = codes[codes["coder"] == coder]
        frame[f"human_{coder}"] = ids.map(dict(zip(own["doc_id"], own["label"], strict=True)))
    gold = validation.gold_rule(codes)
    frame["human_gold"] = ids.map(gold.labels)
    settled = codes.dropna(subset=["adjudicated"]).drop_duplicates("doc_id").set_index("doc_id")
    frame["adjudicated_label"] = ids.map(settled["adjudicated"])
    frame["adjudication_reason"] = ids.map(settled["adjudication_reason"])
    frame["gold_source"] = pd.Categorical(
        ids.map(gold.source), categories=list(validation.GOLD_SOURCES)
    )
    sample = validation.current_sample(session, user, project_id)
    parts = {}
    if sample is not None and sample.corpus_id == corpus.id:
        parts = {
            d.doc_id: d.part for d in validation.sample_docs(session, user, project_id, sample)
        }
    frame["sample_part"] = pd.Categorical(ids.map(parts), categories=list(validation.PARTS))
    label_cols = ["llm_label", "student_label", "human_gold", "adjudicated_label"]
    label_cols += [c for c in frame.columns if str(c).startswith("human_") and c != "human_gold"]
    for col in label_cols:
        frame[col] = _categorical(frame[col], labels)
    frame["llm_status"] = _categorical(frame["llm_status"], list(runs.STATUSES))
    return frame


def _prefix_clashes(frame: pd.DataFrame) -> pd.DataFrame:
    """Rename file columns that would clash with the provenance columns (``file_`` + name)."""
    ours = set(COLUMN_LABELS) - {"doc_id", "text"}
    clash = {
        c: f"file_{c}"
        for c in frame.columns[2:]
        if c in ours or str(c).startswith(("human_", "prob_"))
    }
    return frame.rename(columns=clash) if clash else frame


def _add_llm(session: Session, frame: pd.DataFrame, run: LabelRun | None) -> None:
    ids = frame["doc_id"]
    if run is None:
        for col in _LLM_COLUMNS:
            frame[col] = np.nan if col in ("llm_confidence", "llm_consistency") else None
        frame["codebook_version"] = pd.array([None] * len(frame), dtype="Int64")
        frame["codebook_note"] = None
        return
    results = runs.items_frame(session, run.id, with_text=False)
    for col, values in runs.llm_columns(ids, results).items():
        frame[col] = values
    items = results.set_index("doc_id")
    has = ids.isin(items.index).to_numpy()
    frame["llm_model"] = pd.Series(np.where(has, run.model, None), index=frame.index)
    version = projects.version_number(session, run.codebook_version_id)
    frame["codebook_version"] = pd.array(
        np.where(has & (version is not None), version, None), dtype="Int64"
    )
    marked = version is not None and version.after_seen
    frame["codebook_note"] = pd.Series(
        np.where(has & marked, projects.AFTER_SEEN, None), index=frame.index
    )


def _add_student(
    session: Session,
    user: User,
    frame: pd.DataFrame,
    project_id: int,
    corpus_id: int,
    labels: list[str],
    probabilities: bool,
) -> None:
    ids = frame["doc_id"]
    pass_ = students.latest_prediction_run(session, user, project_id)
    if pass_ is None or pass_.corpus_id != corpus_id:
        frame["student_label"] = None
        frame["student_probability"] = np.nan
        if probabilities:
            for label in labels:
                frame[f"prob_{label}"] = np.nan
        frame["student_model"] = None
        return
    preds = students.predictions_frame(
        session, user, project_id, pass_.id, probabilities=probabilities
    )
    preds = preds.set_index("doc_id")
    frame["student_label"] = ids.map(preds["pred_label"])
    frame["student_probability"] = ids.map(preds["pred_confidence"]).astype(float)
    for col in preds.columns:
        if col.startswith("prob_"):
            frame[col] = ids.map(preds[col]).astype(float)
    model = session.get(StudentModel, pass_.model_id)
    name = f"{model.base_model} #{model.id}" if model is not None else None
    has = ids.isin(preds.index).to_numpy()
    frame["student_model"] = pd.Series(np.where(has, name, None), index=frame.index)


def _categorical(values: pd.Series, labels: list[str]) -> pd.Categorical:
    """A categorical with the codebook's labels first, then any other label seen (sorted)."""
    seen = {v for v in values.dropna().unique()}
    extra = sorted(str(v) for v in seen if v not in set(labels))
    return pd.Categorical(values.where(values.notna(), None), categories=list(labels) + extra)


# ---------------------------------------------------------------- formula injection


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def escape_cell(value: Any) -> Any:
    """``value`` with a leading apostrophe if it is text a spreadsheet could run as a formula:
    it starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return and is not a plain
    number (``-3`` stays ``-3``). Anything else is returned unchanged."""
    if isinstance(value, str) and value.startswith(_FORMULA_START) and not _NUMBER.fullmatch(value):
        return "'" + value
    return value


def escape_formulas(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with every text cell and column name passed through :func:`escape_cell`
    (OWASP's advice against CSV injection). Numeric columns are untouched; the input is not
    changed. Used by the CSV and the Excel writers; a reader of those files sees the
    apostrophe in the (rare) texts that start with one of those characters."""
    out = frame.copy(deep=False)
    for i in range(frame.shape[1]):
        values = frame.iloc[:, i]
        if isinstance(values.dtype, pd.CategoricalDtype):
            cats = [escape_cell(c) for c in values.cat.categories]
            if cats != list(values.cat.categories):
                if len(set(cats)) == len(cats):
                    out.isetitem(i, values.cat.rename_categories(cats))
                else:
                    out.isetitem(i, values.astype(object).map(escape_cell))
        elif pd.api.types.is_object_dtype(values.dtype) or pd.api.types.is_string_dtype(
            values.dtype
        ):
            escaped = values.map(escape_cell, na_action="ignore")
            if not escaped.equals(values):
                out.isetitem(i, escaped)
    out.columns = [escape_cell(str(c)) if isinstance(c, str) else c for c in frame.columns]
    return out


# ---------------------------------------------------------------- writers


def iter_csv(data: pd.DataFrame | Iterable[pd.DataFrame], *, chunk_rows: int = CHUNK_ROWS):
    """The CSV of ``data`` (one frame, or frames with the same columns) as UTF-8 byte chunks:
    a byte-order mark and the header first, then at most ``chunk_rows`` rows per chunk, each
    escaped with :func:`escape_formulas`. ``b"".join(iter_csv(frame))`` is the whole file;
    a Streamlit download callable or an HTTP response can send the chunks as they come."""
    first = True
    for chunk in _chunks(data, chunk_rows):
        text = escape_formulas(chunk).to_csv(index=False, header=first, lineterminator="\r\n")
        yield (b"\xef\xbb\xbf" if first else b"") + text.encode("utf-8")
        first = False


def _chunks(data: pd.DataFrame | Iterable[pd.DataFrame], rows: int) -> Iterator[pd.DataFrame]:
    if not isinstance(data, pd.DataFrame):
        for frame in data:
            yield from _chunks(frame, rows)
        return
    if data.empty:
        yield data
        return
    for start in range(0, len(data), max(1, int(rows))):
        yield data.iloc[start : start + rows]


def csv_bytes(data: pd.DataFrame | Iterable[pd.DataFrame], *, chunk_rows: int = CHUNK_ROWS):
    """The whole CSV as bytes, built from :func:`iter_csv`'s chunks (no full-size string)."""
    buffer = bytearray()
    for chunk in iter_csv(data, chunk_rows=chunk_rows):
        buffer += chunk
    return bytes(buffer)


def write(
    frame: pd.DataFrame,
    fmt: str,
    target: str | Path | IO[bytes],
    *,
    variable_labels: dict[str, str] | None = None,
) -> dict[str, str]:
    """Write ``frame`` as ``fmt`` (csv, xlsx, parquet or dta) to a path or a binary file.

    Returns the columns renamed on the way ({original: new}; only Stata renames).
    ``variable_labels`` (Stata) describe columns; :data:`COLUMN_LABELS` are the defaults.
    """
    if fmt not in TABLE_FORMATS:
        raise ExportError(
            f"Unknown table format '{fmt}'; choose one of {', '.join(TABLE_FORMATS)}."
        )
    if isinstance(target, str | Path):
        with open(target, "wb") as fh:
            return write(frame, fmt, fh, variable_labels=variable_labels)
    if fmt == "csv":
        for chunk in iter_csv(frame):
            target.write(chunk)
        return {}
    if fmt == "xlsx":
        _write_xlsx(frame, target)
        return {}
    if fmt == "parquet":
        _uniform_objects(frame).to_parquet(target, engine="pyarrow", index=False)
        return {}
    return _write_dta(frame, target, variable_labels or {})


def to_bytes(frame: pd.DataFrame, fmt: str) -> bytes:
    """The file :func:`write` makes, as bytes (e.g. for a download button)."""
    if fmt == "csv":
        return csv_bytes(frame)
    buffer = io.BytesIO()
    write(frame, fmt, buffer)
    return buffer.getvalue()


def _write_xlsx(frame: pd.DataFrame, fh: IO[bytes]) -> None:
    """One sheet "data" (see :func:`_write_workbook`)."""
    _write_workbook({"data": frame}, fh)


def _write_workbook(
    sheets: dict[str, pd.DataFrame],
    fh: IO[bytes],
    *,
    choices: dict[str, tuple[str, str]] | None = None,
) -> None:
    """A workbook of one sheet per frame, each written row by row (openpyxl's write-only
    mode keeps memory flat). ``choices`` maps a sheet to ``(column, other sheet)``: that
    column's cells offer the other sheet's first column as a drop-down list.

    Characters Excel forbids (control characters other than tab and line ends) are dropped;
    a text longer than an Excel cell holds is an error, not silently cut. (A carriage return
    reads back as a line feed: XML normalises line ends.)
    """
    from openpyxl import Workbook
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
    from openpyxl.utils import get_column_letter
    from openpyxl.worksheet.datavalidation import DataValidation

    for frame in sheets.values():
        if len(frame) >= EXCEL_MAX_ROWS:
            raise ExportError(
                f"{len(frame):,} rows are more than an Excel sheet holds; export CSV or Parquet."
            )
    sheets = {name: escape_formulas(frame) for name, frame in sheets.items()}
    longest = max(
        (_longest_text(f.iloc[:, i]) for f in sheets.values() for i in range(f.shape[1])),
        default=0,
    )
    if longest > EXCEL_MAX_CELL:
        raise ExportError(
            f"A cell has {longest:,} characters, more than the {EXCEL_MAX_CELL:,} an Excel cell "
            "holds; export CSV or Parquet."
        )

    def cell(value: Any) -> Any:
        if value is None or value is pd.NA or value is pd.NaT:
            return None
        if isinstance(value, str):
            return ILLEGAL_CHARACTERS_RE.sub("", value)
        if isinstance(value, pd.Timestamp):
            if value.tzinfo is not None:
                value = value.tz_convert("UTC").tz_localize(None)
            return value.to_pydatetime()
        if isinstance(value, float) and value != value:
            return None
        if isinstance(value, np.generic):
            return cell(value.item())
        return value

    book = Workbook(write_only=True)
    for name, frame in sheets.items():
        sheet = book.create_sheet(name)
        if name in (choices or {}):
            column, source = choices[name]
            letter = get_column_letter(list(frame.columns).index(column) + 1)
            listed = DataValidation(
                type="list",
                formula1=f"={source}!$A$2:$A${len(sheets[source]) + 1}",
                allow_blank=True,
            )
            listed.add(f"{letter}2:{letter}{len(frame) + 1}")
            sheet.data_validations.append(listed)
        sheet.append([cell(str(c)) for c in frame.columns])
        for row in frame.itertuples(index=False, name=None):
            sheet.append([cell(v) for v in row])
    book.save(fh)


def _longest_text(values: pd.Series) -> int:
    """Characters in the column's longest text (0 for a column without text)."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        values = pd.Series(values.cat.categories)
    elif not (pd.api.types.is_object_dtype(values.dtype) or pd.api.types.is_string_dtype(values)):
        return 0
    lengths = values.map(lambda v: len(v) if isinstance(v, str) else 0, na_action="ignore")
    return int(lengths.max()) if lengths.notna().any() else 0


def _uniform_objects(frame: pd.DataFrame) -> pd.DataFrame:
    """Columns of mixed Python objects (a file column with numbers and words) as text, all-empty
    object columns as empty text: what Parquet and Stata need (one type per column)."""
    out = frame.copy(deep=False)
    for i in range(frame.shape[1]):
        values = frame.iloc[:, i]
        if not pd.api.types.is_object_dtype(values.dtype):
            continue
        present = values.dropna()
        if len(present) and all(isinstance(v, bool | int | float) for v in present):
            out.isetitem(i, pd.to_numeric(values.where(values.notna(), np.nan), errors="coerce"))
        else:
            out.isetitem(i, values.map(str, na_action="ignore").astype("str"))
    return out


def _write_dta(frame: pd.DataFrame, fh: IO[bytes], variable_labels: dict[str, str]) -> dict:
    names = stata_names(frame.columns)
    out = _uniform_objects(frame)
    out.columns = [names[c] for c in frame.columns]
    strl = []
    for name in out.columns:
        values = out[name]
        if pd.api.types.is_string_dtype(values.dtype) and not isinstance(
            values.dtype, pd.CategoricalDtype
        ):
            filled = values.fillna("").astype(str)
            out[name] = filled
            if max((len(s.encode("utf-8")) for s in filled), default=0) > STATA_MAX_STR:
                strl.append(name)
        elif pd.api.types.is_datetime64_any_dtype(values.dtype) and values.dt.tz is not None:
            out[name] = values.dt.tz_convert("UTC").dt.tz_localize(None)
    labels = {}
    for original, name in names.items():
        text = variable_labels.get(original) or _column_label(original)
        if name != original and not text:
            text = str(original)
        elif name != original:
            text = f"{original}: {text}"
        if text:
            labels[name] = _truncate_utf8(text, STATA_MAX_LABEL)
    dates = {n: "tc" for n in out.columns if pd.api.types.is_datetime64_any_dtype(out[n].dtype)}
    out.to_stata(
        fh,
        version=118,
        write_index=False,
        convert_strl=strl,
        convert_dates=dates,
        variable_labels=labels,
        data_label="Exported by Distill",
    )
    return {str(c): n for c, n in names.items() if str(c) != n}


def _column_label(column: Any) -> str:
    column = str(column)
    if column in COLUMN_LABELS:
        return COLUMN_LABELS[column]
    if column.startswith("prob_"):
        return f"Student's probability of {column[5:]}"
    if column.startswith("human_"):
        return f"Code of human coder {column[6:]}"
    return ""


def _truncate_utf8(text: str, limit: int) -> str:
    """At most ``limit`` characters (Stata counts a label's length in UTF-8 bytes: cut both)."""
    text = text[:limit]
    while len(text.encode("utf-8")) > limit:
        text = text[:-1]
    return text


_STATA_RESERVED = {
    "_all", "_b", "byte", "_coef", "_cons", "double", "float", "if", "in", "int", "long",
    "_n", "_N", "_pi", "_pred", "_rc", "_skip", "strL", "using", "with",
}  # fmt: skip


def stata_names(columns: Iterable[Any]) -> dict[Any, str]:
    """A valid, unique Stata name for each column: accents dropped (é → e), other characters
    outside letters, digits and ``_`` replaced by ``_``, a ``v`` before a leading digit,
    reserved words suffixed ``_``, at most 32 characters, repeats numbered ``_2``, ``_3``…
    Valid names are kept as they are."""
    out: dict[Any, str] = {}
    used: set[str] = set()
    for column in columns:
        ascii_ = unicodedata.normalize("NFKD", str(column)).encode("ascii", "ignore").decode()
        name = re.sub(r"[^A-Za-z0-9_]", "_", ascii_) or "var"
        if name[0].isdigit():
            name = "v" + name
        if name in _STATA_RESERVED or re.fullmatch(r"str\d+", name):
            name += "_"
        name = name[:STATA_MAX_NAME]
        candidate, k = name, 2
        while candidate in used:
            suffix = f"_{k}"
            candidate, k = name[: STATA_MAX_NAME - len(suffix)] + suffix, k + 1
        used.add(candidate)
        out[column] = candidate
    return out


# ---------------------------------------------------------------- other exports


@entry(Capability.READ)
def human_codes(session: Session, user: User, project_id: int) -> pd.DataFrame:
    """Every human code, one row per coder and text, ordered by document and coder:
    ``doc_id``, ``coder``, ``label`` (the code now), the document's ``sample_part``, then
    ``validation.CODE_COLUMNS``' others (``first_label``, ``blind_label``, ``note``,
    ``codebook_version``…), the text's ``adjudicated`` code, ``adjudication_reason`` and
    ``adjudicated_by``, its ``gold`` label and ``gold_source`` (``validation.gold_rule``), and
    the current sample's assignment: ``assigned`` (the text is in this coder's queue),
    ``assigned_coders`` (how many coders the text is assigned to; two or more: the overlap)
    and ``assignment_design`` (the design in words)."""
    codes = validation.codes_frame(session, user, project_id)
    sample = validation.current_sample(session, user, project_id)
    parts = (
        {d.doc_id: d.part for d in validation.sample_docs(session, user, project_id, sample)}
        if sample
        else {}
    )
    codes.insert(3, "sample_part", codes["doc_id"].map(parts))
    gold = validation.gold_rule(codes)
    codes["gold"] = codes["doc_id"].map(gold.labels)
    codes["gold_source"] = codes["doc_id"].map(gold.source)
    assigned = assignments.assigned_pairs(session, user, project_id, sample) if sample else set()
    design = assignments.current_design(session, user, project_id, sample) if sample else None
    per_text = Counter(d for d, _ in assigned)
    who = zip(codes["doc_id"], codes["coder"], strict=True)
    codes["assigned"] = [pair in assigned for pair in who]
    codes["assigned_coders"] = [per_text.get(d, 0) for d in codes["doc_id"]]
    codes["assignment_design"] = design.design.describe() if design else ""
    return codes.sort_values(["doc_id", "coder"], kind="stable").reset_index(drop=True)


@entry(Capability.READ)
def write_audit_log(
    session: Session, user: User, project_id: int, fh: IO[bytes], *, run_id: int | None = None
) -> int:
    """The audit log of the project's label runs (or only ``run_id``), oldest run first
    (``runs.write_audit_log``); returns the number of records."""
    found = runs.project_runs(session, user, project_id, with_results=True)
    if run_id is not None:
        found = [r for r in found if r.id == run_id]
    if not found:
        raise ExportError("The project has no LLM label run yet: there is no audit log.")
    return runs.write_audit_log(session, [r.id for r in reversed(found)], fh)


def model_zip(
    model_dir: str | Path, fh: IO[bytes] | None = None, *, root: str | None = None
) -> bytes | None:
    """Zip a saved model folder (``save_pretrained`` files, ``distill.json``, ``README.md``)
    under one top folder ``root`` (default: the folder's name). Weights are stored, the rest
    deflated. Writes to ``fh`` and returns None, or returns the zip's bytes."""
    folder = Path(model_dir)
    if not (folder / "config.json").is_file():
        raise ExportError(f"{folder} is not a saved model folder (it has no config.json).")
    root = root or folder.name
    target = fh if fh is not None else io.BytesIO()
    with zipfile.ZipFile(target, "w") as zf:
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            stored = path.suffix in (".safetensors", ".bin", ".pt", ".pth")
            zf.write(
                path,
                f"{root}/{path.relative_to(folder).as_posix()}",
                compress_type=zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED,
            )
    return None if fh is not None else target.getvalue()


@entry(Capability.READ)
def student_zip(
    session: Session,
    user: User,
    project_id: int,
    fh: IO[bytes] | None = None,
    *,
    settings: Settings | None = None,
    model_id: int | None = None,
) -> bytes | None:
    """:func:`model_zip` of one of the project's ready students (default: the newest), as
    ``distill-model-<id>/``."""
    model = (
        session.get(StudentModel, model_id)
        if model_id
        else students.latest_model(session, user, project_id)
    )
    if model is None or model.project_id != project_id or model.status != "ready":
        raise ExportError("The project has no trained student model yet.")
    folder = students.model_dir(model, settings)
    if not folder.is_dir():
        raise ExportError(f"The folder of model {model.id} ({folder}) is missing.")
    return model_zip(folder, fh, root=f"distill-model-{model.id}")


# ---------------------------------------------------------------- the sample for outside coders

#: The columns of the validation sample handed to coders who work outside Distill (in Excel):
#: they write a codebook label in ``code``. The file imports back on the Import codes tab.
SAMPLE_COLUMNS = ("id", "text", "code")


@dataclass(frozen=True)
class CodingSample:
    """The current validation sample as outside coders get it: the texts with an empty code
    column, the codebook's labels and definitions, and how to fill it in."""

    texts: pd.DataFrame
    codebook: pd.DataFrame
    instructions: pd.DataFrame


@entry(Capability.READ)
def coding_sample(session: Session, user: User, project_id: int) -> CodingSample:
    """The current validation sample's texts in coding order (both parts: coders code blind,
    and no LLM label is in it), with the newest codebook."""
    sample = validation.current_sample(session, user, project_id)
    if sample is None:
        raise ExportError("Draw a validation sample first (Validate page, Sample tab).")
    docs = validation.sample_docs(session, user, project_id, sample)
    version = projects.latest_codebook(session, user, project_id)
    if version is None:
        raise ExportError("Save a codebook first (Codebook page).")
    codebook = projects.as_codebook(version)
    id_, text, code = SAMPLE_COLUMNS
    texts = pd.DataFrame(
        {id_: [d.doc_id for d in docs], text: [d.text for d in docs], code: [""] * len(docs)}
    )
    labels = pd.DataFrame(
        {
            "label": [label.name for label in codebook.labels],
            "definition": [label.definition for label in codebook.labels],
        }
    )
    instructions = pd.DataFrame(
        [
            ("codebook", f"{codebook.name} (version {version.version})"),
            ("instructions", codebook.instructions),
            (
                "how to code",
                f"Write one label of the codebook sheet in the '{code}' column of each text "
                "(Excel offers them in a list); leave it empty for a text you cannot code. Keep "
                f"the '{id_}' column as it is: it matches your codes to the texts.",
            ),
            (
                "sending it back",
                "The filled file imports on Distill's Validate page, Import codes tab (your "
                "name as the coder).",
            ),
            ("texts", f"{len(docs):,}"),
        ],
        columns=["item", "value"],
    )
    return CodingSample(texts, labels, instructions)


def _write_coding_sample(
    session: Session, user: User, project_id: int, fh: IO[bytes], fmt: str
) -> None:
    sample = coding_sample(session, user, project_id)
    if fmt == "sample-csv":
        write(sample.texts, "csv", fh)
    elif fmt == "codebook-csv":
        write(sample.codebook, "csv", fh)
    else:
        _write_workbook(
            {
                "sample": sample.texts,
                "codebook": sample.codebook,
                "instructions": sample.instructions,
            },
            fh,
            choices={"sample": (SAMPLE_COLUMNS[2], "codebook")},
        )


# ---------------------------------------------------------------- one entry point


@entry(Capability.READ)
def export_project(
    session: Session,
    user: User,
    project_id: int,
    fmt: str,
    fh: IO[bytes],
    *,
    settings: Settings | None = None,
    probabilities: bool = False,
    model_id: int | None = None,
    run_id: int | None = None,
) -> dict[str, str]:
    """Write one export of the project to a binary file: a table format of
    :func:`labelled_corpus`, ``codes`` (CSV of :func:`human_codes`), ``audit`` (JSON Lines; only ``run_id`` if given),
    ``appendix-md``/``appendix-html`` or ``model`` (zip of ``model_id``, default the newest).
    Returns Stata's renames."""
    writers: dict[str, Callable[[], dict[str, str] | None]] = {
        "codes": lambda: _write_codes(session, user, project_id, fh),
        "audit": lambda: write_audit_log(session, user, project_id, fh, run_id=run_id),
        "appendix-md": lambda: _write_appendix(session, user, project_id, fh, "markdown"),
        "appendix-html": lambda: _write_appendix(session, user, project_id, fh, "html"),
        "model": lambda: student_zip(
            session, user, project_id, fh, settings=settings, model_id=model_id
        ),
        **{
            kind: (lambda kind=kind: _write_coding_sample(session, user, project_id, fh, kind))
            for kind in ("sample-xlsx", "sample-csv", "codebook-csv")
        },
    }
    if fmt in FORMATS:
        activity.record(session, user, project_id, "exported", format=fmt)
    if fmt in TABLE_FORMATS:
        frame = labelled_corpus(session, user, project_id, probabilities=probabilities)
        return write(frame, fmt, fh)
    if fmt not in writers:
        raise ExportError(f"Unknown export '{fmt}'; choose one of {', '.join(FORMATS)}.")
    return writers[fmt]() or {}


def _write_codes(session: Session, user: User, project_id: int, fh: IO[bytes]) -> None:
    codes = human_codes(session, user, project_id)
    if codes.empty:
        raise ExportError("The project has no human codes yet.")
    write(codes, "csv", fh)


def _write_appendix(
    session: Session, user: User, project_id: int, fh: IO[bytes], kind: str
) -> None:
    from distill_core.reports.appendix import methods_appendix

    fh.write(getattr(methods_appendix(session, user, project_id), kind).encode("utf-8"))

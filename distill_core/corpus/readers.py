"""Reading and validating uploaded corpora: bytes in, validated records out (no I/O beyond reading).

`read_table` turns an upload (CSV/TSV, Excel, Parquet, JSON Lines, Stata) into a `Table`, refusing
anything it cannot read faithfully with a `CorpusError` whose message is one sentence for the user.
`prepare_corpus` then picks the text and id columns and returns ids, texts, the other columns as
JSON-ready dicts, and an `IngestReport` (empty, duplicate and very long texts are reported, and kept).
"""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import json
import math
import os
import re
import zipfile
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from distill_core.config import MAX_UPLOAD_BYTES, UPLOAD_LIMITS, UploadLimits
from distill_core.values import cell_to_text, is_missing

__all__ = [
    "LONG_TEXT_CHARS",
    "SUPPORTED_SUFFIXES",
    "CorpusError",
    "IngestReport",
    "PreparedCorpus",
    "Table",
    "read_path",
    "read_table",
]


class CorpusError(ValueError):
    """A user-caused problem with an upload; str(e) is ONE clear sentence for the user."""


#: File name endings accepted; `.txt` is read as delimited text (comma, semicolon, tab or pipe).
SUPPORTED_SUFFIXES: tuple[str, ...] = (
    ".csv",
    ".tsv",
    ".txt",
    ".xlsx",
    ".parquet",
    ".jsonl",
    ".ndjson",
    ".dta",
)

#: Texts longer than this many characters are reported as very long (and kept).
LONG_TEXT_CHARS = 5000

_SUPPORTED_WORDS = (
    "CSV (.csv), TSV (.tsv, .txt), Excel (.xlsx), Parquet (.parquet), "
    "JSON Lines (.jsonl, .ndjson) and Stata (.dta)"
)
_FORMAT_OF_SUFFIX = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".txt": "csv",
    ".xlsx": "xlsx",
    ".parquet": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".dta": "dta",
}
_FORMAT_LABEL = {
    "csv": "CSV",
    "tsv": "TSV",
    "xlsx": "Excel (.xlsx)",
    "parquet": "Parquet",
    "jsonl": "JSON Lines",
    "dta": "Stata (.dta)",
}
_SUFFIX_HINTS = {
    ".xls": "old Excel files (.xls) are not supported; save it as .xlsx (Excel workbook) or CSV",
    ".xlsm": "save it as .xlsx (Excel workbook) or CSV",
    ".json": "save it as JSON Lines (.jsonl, one object per line) or CSV",
    ".sav": "SPSS files are not supported; save it as CSV, .xlsx or .dta",
    ".rds": "R files are not supported; save it as CSV (write.csv) or Parquet",
    ".rdata": "R files are not supported; save it as CSV (write.csv) or Parquet",
    ".ods": "save it as .xlsx (Excel workbook) or CSV",
}
_ENCODING_NAMES = {
    "utf-8": "UTF-8",
    "utf-8-sig": "UTF-8 (with BOM)",
    "utf-16": "UTF-16",
    "cp1252": "Windows-1252 (cp1252)",
    "latin-1": "Latin-1 (ISO-8859-1)",
}
_MAX_LISTED_IDS = 20
_MAX_LISTED_COLUMNS = 20

# Leading bytes of file types people upload by mistake: (signature, description, supported format).
_SIGNATURES: tuple[tuple[bytes, str, str | None], ...] = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image", None),
    (b"\xff\xd8\xff", "a JPEG image", None),
    (b"GIF87a", "a GIF image", None),
    (b"GIF89a", "a GIF image", None),
    (b"%PDF", "a PDF document", None),
    (b"PK\x03\x04", "a ZIP archive", None),
    (b"PK\x05\x06", "a ZIP archive", None),
    (
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1",
        "an old-format (.xls/.doc) or password-protected Office file",
        None,
    ),
    (b"\x1f\x8b", "a gzip-compressed file", None),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive", None),
    (b"Rar!\x1a\x07", "a RAR archive", None),
    (b"SQLite format 3\x00", "an SQLite database", None),
    (b"{\\rtf", "an RTF document", None),
    (b"PAR1", "a Parquet file", "parquet"),
    (b"<stata_dta>", "a Stata file", "dta"),
)
_SUFFIX_OF_FORMAT = {"parquet": ".parquet", "dta": ".dta", "xlsx": ".xlsx", "jsonl": ".jsonl"}


# --------------------------------------------------------------------------------------------
# Records


@dataclass(frozen=True)
class Table:
    """What was read from a file, before choosing columns: every column, strings as `str`."""

    frame: pd.DataFrame
    filename: str
    file_format: str
    encoding: str | None
    warnings: tuple[str, ...]
    sha256: str


@dataclass(frozen=True)
class IngestReport:
    """What `prepare_corpus` found: counts a user should know about before labelling."""

    rows: int
    empty_texts: int
    empty_ids: tuple[str, ...]
    duplicate_texts: int
    duplicate_groups: int
    long_texts: int
    long_ids: tuple[str, ...]
    encoding: str | None
    ids_generated: bool
    warnings: tuple[str, ...]
    long_text_chars: int = LONG_TEXT_CHARS

    def summary_lines(self) -> list[str]:
        """Human-readable lines for the upload page and the command line."""
        lines = [_count(self.rows, "row")]
        if self.encoding is not None:
            lines.append(f"Encoding: {_ENCODING_NAMES.get(self.encoding, self.encoding)}")
        lines.append(
            "Ids generated from the texts (no id column chosen)"
            if self.ids_generated
            else "Ids taken from the id column"
        )
        if self.empty_texts:
            lines.append(f"{_count(self.empty_texts, 'empty text')} (kept)")
        if self.duplicate_texts:
            lines.append(
                f"{_count(self.duplicate_texts, 'repeated text')} "
                f"({_count(self.duplicate_groups, 'text')} occurring more than once; kept)"
            )
        if self.long_texts:
            lines.append(
                f"{_count(self.long_texts, 'text')} longer than "
                f"{self.long_text_chars:,} characters (kept)"
            )
        lines.extend(self.warnings)
        return lines

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (tuples become lists)."""
        out = asdict(self)
        for key, value in out.items():
            if isinstance(value, tuple):
                out[key] = list(value)
        return out


@dataclass(frozen=True)
class PreparedCorpus:
    """A validated corpus: unique ids, texts ("" when missing) and the other columns per row."""

    text_column: str
    id_column: str | None
    ids: list[str]
    texts: list[str]
    extras: list[dict]
    report: IngestReport


# --------------------------------------------------------------------------------------------
# Reading


def read_path(
    path: str | os.PathLike,
    *,
    max_bytes: int = MAX_UPLOAD_BYTES,
    limits: UploadLimits = UPLOAD_LIMITS,
) -> Table:
    """Read a corpus file from disk (its size is checked before it is read) into a `Table`."""
    p = Path(path)
    try:
        size = p.stat().st_size
    except FileNotFoundError:
        raise CorpusError(f"The file {p} does not exist.") from None
    except OSError as exc:
        raise CorpusError(f"The file {p} cannot be opened ({exc.strerror or exc}).") from None
    if p.is_dir():
        raise CorpusError(f"{p} is a folder, not a file.")
    _check_size(size, p.name, max_bytes)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise CorpusError(f"The file {p} cannot be read ({exc.strerror or exc}).") from None
    return read_table(data, p.name, max_bytes=max_bytes, limits=limits)


def read_table(
    data: bytes,
    filename: str,
    *,
    max_bytes: int = MAX_UPLOAD_BYTES,
    limits: UploadLimits = UPLOAD_LIMITS,
) -> Table:
    """Read an uploaded file's bytes into a `Table`; raise `CorpusError` for anything unreadable.

    The format comes from the name's suffix and is checked against the content. Text files may be
    UTF-8 (with or without BOM), UTF-16 with BOM, or else Windows-1252/Latin-1 (with a warning).
    What a file unpacks and holds is bounded by ``limits`` (rows, columns, a value's length, an
    .xlsx's XML, a Parquet file's data and row groups); any error of a reader, expected or not,
    becomes a `CorpusError` of one sentence.
    """
    name = Path(filename).name or "upload"
    _check_size(len(data), name, max_bytes)
    suffix = Path(name).suffix.lower()
    if suffix not in _FORMAT_OF_SUFFIX:
        shown = f"'{suffix}'" if suffix else "no suffix"
        hint = _SUFFIX_HINTS.get(suffix)
        if hint:
            raise CorpusError(f"The file {name} has an unsupported type ({shown}): {hint}.")
        raise CorpusError(
            f"The file {name} has an unsupported type ({shown}); supported formats are "
            f"{_SUPPORTED_WORDS}."
        )
    if not data.strip():
        raise CorpusError(f"The file {name} has no rows.")
    file_format = _FORMAT_OF_SUFFIX[suffix]
    try:
        return _read_table(data, name, suffix, file_format, limits)
    except CorpusError:
        raise
    except MemoryError:
        raise CorpusError(
            f"The file {name} needs more memory to read than this server has; "
            "split it into smaller files."
        ) from None
    except Exception as exc:  # any reader's surprise: one sentence, never a traceback
        raise CorpusError(
            f"The file {name} could not be read as {_FORMAT_LABEL[file_format]} ({_short(exc)})."
        ) from None


def _read_table(
    data: bytes, name: str, suffix: str, file_format: str, limits: UploadLimits
) -> Table:
    sha256 = hashlib.sha256(data).hexdigest()
    warnings: list[str] = []
    encoding: str | None = None

    if file_format in ("csv", "tsv", "jsonl"):
        _check_text_signature(data, name, file_format)
        text, encoding, enc_warning = _decode(data, name)
        if enc_warning:
            warnings.append(enc_warning)
        _check_text_content(text, name, file_format)
        if file_format == "jsonl":
            frame = _parse_jsonl(text, name)
        else:
            frame, delimiter, parse_warnings = _parse_delimited(text, name, suffix, limits)
            warnings.extend(parse_warnings)
            file_format = "tsv" if delimiter == "\t" else "csv"
    elif file_format == "xlsx":
        frame, xl_warnings = _read_xlsx(data, name, limits)
        warnings.extend(xl_warnings)
    elif file_format == "parquet":
        frame = _read_parquet(data, name, limits)
    else:
        frame, dta_warnings = _read_stata(data, name)
        warnings.extend(dta_warnings)

    _check_shape(frame.shape[0], frame.shape[1], name, limits)
    frame, norm_warnings = _normalise_frame(frame, name, from_text=file_format in ("csv", "tsv"))
    warnings.extend(norm_warnings)
    if len(frame) == 0 or frame.shape[1] == 0:
        raise CorpusError(f"The file {name} has no rows.")
    _check_cells(frame, name, limits)
    return Table(
        frame=frame,
        filename=name,
        file_format=file_format,
        encoding=encoding,
        warnings=tuple(warnings),
        sha256=sha256,
    )


def _check_shape(rows: int, columns: int, name: str, limits: UploadLimits) -> None:
    """Refuse more data rows or columns than ``limits`` allow."""
    if rows > limits.max_rows:
        raise CorpusError(
            f"The file {name} has more than {_count(limits.max_rows, 'row')}, the most one "
            "upload may hold; split it into smaller files."
        )
    if columns > limits.max_columns:
        raise CorpusError(
            f"The file {name} has {_count(columns, 'column')}; the most one upload may hold is "
            f"{limits.max_columns:,}, so keep only the columns you need."
        )


def _too_long(name: str, limits: UploadLimits, where: str) -> CorpusError:
    return CorpusError(
        f"The file {name} has a value longer than {limits.max_cell_chars:,} characters{where}, "
        "the most one value may hold; shorten or split that text."
    )


def _check_cells(frame: pd.DataFrame, name: str, limits: UploadLimits) -> None:
    """Refuse a text value longer than ``limits.max_cell_chars`` (CSV's reader stops at it)."""
    for column in frame.columns:
        col = frame[column]
        if not pd.api.types.is_string_dtype(col.dtype) or pd.api.types.is_object_dtype(col.dtype):
            continue
        lengths = col.str.len()
        longest = lengths.max()
        if not is_missing(longest) and longest > limits.max_cell_chars:
            row = int(lengths.to_numpy(dtype=float, na_value=0).argmax()) + 1
            raise _too_long(name, limits, f" (column '{column}', data row {row:,})")


def _check_size(size: int, name: str, max_bytes: int) -> None:
    if size > max_bytes:
        raise CorpusError(
            f"The file {name} is {_format_size(size, exact=False)}; "
            f"the limit is {_format_size(max_bytes, exact=True)}."
        )


def _format_size(n: int, *, exact: bool) -> str:
    """250.3 MB / 200 MB / 1.5 KB / 100 bytes; `exact` drops a trailing .0 (for limits)."""
    for unit, scale in (("MB", 1024 * 1024), ("KB", 1024)):
        if n >= scale:
            value = n / scale
            text = f"{value:.1f}"
            if exact and value == int(value):
                text = str(int(value))
            elif not exact and text.endswith(".0") and n % scale:
                text = f"{value:.2f}"
            return f"{text} {unit}"
    return _count(n, "byte")


def _describe_signature(data: bytes) -> tuple[str, str | None] | None:
    for signature, description, fmt in _SIGNATURES:
        if data.startswith(signature):
            if signature.startswith(b"PK"):
                return _describe_zip(data), None
            return description, fmt
    if len(data) > 4 and data[0] in range(102, 116) and data[1] in (1, 2) and data[2] == 1:
        return "a Stata file", "dta"
    return None


def _describe_zip(data: bytes) -> str:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            names = zf.namelist()
    except (zipfile.BadZipFile, OSError, ValueError):
        return "a ZIP archive"
    if any(n.startswith("xl/") for n in names):
        return "an Excel workbook"
    if any(n.startswith("word/") for n in names):
        return "a Word document"
    if any(n.startswith("ppt/") for n in names):
        return "a PowerPoint file"
    if "content.xml" in names:
        return "an OpenDocument file"
    return "a ZIP archive"


def _not_a(name: str, file_format: str, description: str, real_format: str | None) -> CorpusError:
    hint = ""
    if description == "an Excel workbook" and file_format != "xlsx":
        hint = " (rename it to .xlsx)"
    elif real_format and real_format != file_format:
        hint = f" (rename it to {_SUFFIX_OF_FORMAT[real_format]})"
    label = _FORMAT_LABEL[file_format]
    article = "an" if label[0] in "AEIOU" else "a"
    return CorpusError(
        f"The file {name} is not {article} {label} file; it looks like {description}{hint}."
    )


def _check_text_signature(data: bytes, name: str, file_format: str) -> None:
    found = _describe_signature(data)
    if found is not None:
        raise _not_a(name, file_format, *found)


def _decode(data: bytes, name: str) -> tuple[str, str, str | None]:
    """Decode text bytes: UTF-8 (BOM or not), UTF-16 with BOM, else cp1252, else Latin-1."""
    if data.startswith(b"\xef\xbb\xbf"):
        try:
            return data[3:].decode("utf-8"), "utf-8-sig", None
        except UnicodeDecodeError:
            data = data[3:]
    elif data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16"), "utf-16", None
        except UnicodeDecodeError:
            raise CorpusError(
                f"The file {name} starts like UTF-16 text but cannot be decoded; "
                "save it as UTF-8 CSV."
            ) from None
    if b"\x00" in data:
        raise CorpusError(
            f"The file {name} contains binary data, not text; upload a CSV, TSV, Excel, Parquet, "
            "JSON Lines or Stata file."
        )
    try:
        return data.decode("utf-8"), "utf-8", None
    except UnicodeDecodeError:
        pass
    # Mostly-valid UTF-8 with a few broken bytes: decoding it as cp1252 would garble every accent.
    loose = data.decode("utf-8", errors="replace")
    original_fffd = data.count(b"\xef\xbf\xbd")
    replaced = loose.count("\ufffd") - original_fffd
    # Bytes beyond the first of each valid multi-byte character; a genuine cp1252 file has ~none.
    extra_bytes = len(data) - len(loose) - 2 * original_fffd
    if extra_bytes > 2 * replaced:
        return (
            loose,
            "utf-8",
            f"The file is UTF-8 with {_count(replaced, 'invalid byte')}, shown as \ufffd; "
            "check those characters.",
        )
    for encoding in ("cp1252", "latin-1"):
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        return (
            text,
            encoding,
            f"The file is not UTF-8; it was read as {_ENCODING_NAMES[encoding]}. "
            "Check that accented characters look right.",
        )
    raise CorpusError(f"The file {name} cannot be decoded as text.")  # pragma: no cover


_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0e-\x1a\x1c-\x1f\x7f]")


def _check_text_content(text: str, name: str, file_format: str) -> None:
    head = text[:65536]
    if len(_CONTROL_RE.findall(head)) > max(8, len(head) // 100):
        raise CorpusError(
            f"The file {name} contains binary data, not text; upload a CSV, TSV, Excel, Parquet, "
            "JSON Lines or Stata file."
        )
    start = head.lstrip()[:200].lower()
    label = _FORMAT_LABEL[file_format]
    article = "an" if label[0] in "AEIOU" else "a"
    if start.startswith(("<!doctype html", "<html", "<head", "<body")):
        raise CorpusError(
            f"The file {name} is not {article} {label} file; it looks like a web page (HTML), "
            "perhaps a download that failed."
        )
    if start.startswith("<?xml"):
        raise CorpusError(f"The file {name} is not {article} {label} file; it looks like XML.")
    if file_format != "jsonl" and start.startswith(("{", "[")):
        first = head.lstrip().split("\n", 1)[0].strip()
        try:
            json.loads(first)
        except ValueError:
            try:
                json.loads(text)
            except ValueError:
                return
        raise CorpusError(
            f"The file {name} is not {article} {label} file; it looks like JSON "
            "(save it as JSON Lines with the suffix .jsonl)."
        )


# ---- delimited text -------------------------------------------------------------------------

_DELIMITERS = (",", ";", "\t", "|")
_DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe", "\x1f": "none"}
_SINGLE_COLUMN = "\x1f"  # a delimiter that does not occur: each line is one value


class _Lines:
    """Iterates a text's lines (CSV line ends only) and remembers the last one given out."""

    __slots__ = ("_it", "last")

    def __init__(self, text: str) -> None:
        self._it = iter(io.StringIO(text, newline=""))
        self.last = ""

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        self.last = next(self._it)
        return self.last


_SNIFF_CHARS = 262144


def _sniff_delimiter(text: str, suffix: str) -> str:
    """Pick the delimiter whose field count is most consistent with the header's."""
    sample = text[:_SNIFF_CHARS]
    cut = max(sample.rfind("\n"), sample.rfind("\r"))
    if 0 < cut < len(text) - 1:
        sample = sample[: cut + 1]
    first_line = next((line for line in sample.splitlines() if line.strip()), "")
    preferred = {".tsv": "\t", ".txt": "\t"}.get(suffix, ",")
    best: tuple[float, int, int, str] | None = None
    for delimiter in _DELIMITERS:
        if delimiter not in first_line:
            continue
        try:
            records = [
                r for r in csv.reader(io.StringIO(sample, newline=""), delimiter=delimiter) if r
            ][:2000]
        except csv.Error:
            continue
        if not records:
            continue
        width = len(_trim_trailing_empty(records[0]))
        if width < 2:
            continue
        body = records[1:-1] if len(records) > 2 else records[1:]
        if body:
            ok = sum(
                len(_trim_trailing_empty(r)) <= width and len(r) >= min(2, width) for r in body
            )
            exact = sum(len(_trim_trailing_empty(r)) == width for r in body)
            score = (ok + exact) / (2 * len(body))
        else:
            score = 1.0
        key = (score, width, int(delimiter == preferred), delimiter)
        if best is None or key[:3] > best[:3]:
            best = key
    return best[3] if best else _SINGLE_COLUMN


def _trim_trailing_empty(record: list[str]) -> list[str]:
    end = len(record)
    while end > 0 and record[end - 1] == "":
        end -= 1
    return record[:end]


def _parse_delimited(
    text: str, name: str, suffix: str, limits: UploadLimits = UPLOAD_LIMITS
) -> tuple[pd.DataFrame, str, list[str]]:
    """Parse CSV/TSV strictly: unmatched quotes and rows wider than the header are errors; a
    value longer than ``limits.max_cell_chars`` or more rows than ``limits.max_rows`` stop it."""
    csv.field_size_limit(limits.max_cell_chars)
    try:
        return _parse_delimited_text(text, name, suffix, limits)
    except csv.Error as exc:  # whatever the careful reader did not explain
        if "field larger than field limit" in str(exc):
            raise _too_long(name, limits, "") from None
        raise CorpusError(f"The file {name} could not be read as CSV ({_short(exc)}).") from None


def _parse_delimited_text(
    text: str, name: str, suffix: str, limits: UploadLimits
) -> tuple[pd.DataFrame, str, list[str]]:
    warnings: list[str] = []
    first_line_end = text.find("\n")
    first_line = text[: first_line_end if first_line_end >= 0 else len(text)].strip()
    explicit = re.fullmatch(r"sep=(.)", first_line, flags=re.IGNORECASE)
    line_offset = 0
    if explicit:  # Excel's "sep=;" hint line
        delimiter = explicit.group(1)
        text = text[first_line_end + 1 :] if first_line_end >= 0 else ""
        line_offset = 1
    else:  # the sample is parsed whole, so a long value in it must not hide its delimiter
        csv.field_size_limit(max(limits.max_cell_chars, _SNIFF_CHARS))
        delimiter = _sniff_delimiter(text, suffix)
        csv.field_size_limit(limits.max_cell_chars)

    max_records = 2 * (limits.max_rows + 1)  # blank lines count too, so a file of them is bounded
    try:
        raw = _read_records_fast(text, delimiter, max_records)
        ends: list[int] | None = None
    except csv.Error:
        raw, ends = _read_records_careful(text, delimiter, name, line_offset, limits, max_records)
    if len(raw) > max_records:
        _check_shape(max_records, 0, name, limits)

    def start_lines() -> list[int]:
        """The line on which each non-blank record starts (computed only for error messages)."""
        nonlocal ends
        if ends is None:
            ends = _read_records_careful(text, delimiter, name, line_offset, limits, max_records)[1]
        previous = [0, *ends[:-1]]
        return [p + 1 + line_offset for p, r in zip(previous, raw, strict=True) if r]

    records = raw if all(raw) else [r for r in raw if r]  # blank lines give []
    if not records:
        raise CorpusError(f"The file {name} has no rows.")
    _check_shape(len(records) - 1, len(records[0]), name, limits)
    header = [h.strip() for h in records[0]]
    if len(header) > 1 and header[-1] == "":
        # A trailing delimiter on the header line: drop empty trailing names.
        header = _trim_trailing_empty(header) or header
    width = len(header)
    body = records[1:]
    if not body:
        raise CorpusError(f"The file {name} has no rows.")

    widths = np.fromiter(map(len, body), dtype=np.int64, count=len(body))
    for i in np.flatnonzero(widths != width).tolist():
        record = body[i]
        n = len(record)
        if n > width:
            if any(record[width:]):
                raise CorpusError(
                    f"The file {name} has {n} fields on line {start_lines()[i + 1]} but the "
                    f"header has {width} columns "
                    f"({_DELIMITER_NAMES.get(delimiter, repr(delimiter))}-separated); check the "
                    "delimiter and quoting of that line."
                )
            del record[width:]
        else:
            record.extend([""] * (width - n))

    physical_lines = (
        text.count("\n")
        + text.count("\r")
        - text.count("\r\n")
        + (0 if text.endswith(("\n", "\r")) else 1)
    )
    if physical_lines != len(raw):  # some quoted value holds a line break
        _check_merged_rows(records, start_lines, delimiter, width, name)
    frame = pd.DataFrame(body, dtype=object)
    frame.columns = header
    return frame, delimiter, warnings


def _read_records_fast(text: str, delimiter: str, max_records: int) -> list[list[str]]:
    """The records, one more than ``max_records`` at most (so too many shows); raises csv.Error
    at the first quoting problem or a value past ``csv.field_size_limit``."""
    reader = csv.reader(
        io.StringIO(text, newline=""), delimiter=delimiter, quotechar='"', strict=True
    )
    return list(itertools.islice(reader, max_records + 1))


def _read_records_careful(
    text: str,
    delimiter: str,
    name: str,
    line_offset: int,
    limits: UploadLimits,
    max_records: int,
) -> tuple[list[list[str]], list[int]]:
    """Like `_read_records_fast`, but explains unmatched quotes and tolerates a stray quote
    that opens and closes within one line (`1,"Hi" she said,x`), reading that line leniently."""
    lines = _Lines(text)
    reader = csv.reader(lines, delimiter=delimiter, quotechar='"', strict=True)
    records: list[list[str]] = []
    ends: list[int] = []
    previous_line = 0
    while len(records) <= max_records:
        try:
            record = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            start = previous_line + 1 + line_offset
            here = reader.line_num + line_offset
            message = str(exc)
            if "field larger than field limit" in message:
                raise _too_long(
                    name, limits, f" (or a quote never closed) in the row starting on line {start}"
                ) from None
            if "end of data" in message or "newline inside string" in message:
                raise CorpusError(
                    f"The file {name} has an unterminated quote: the quoted value that starts on "
                    f"line {start} is never closed, so rows would be merged."
                ) from None
            line = lines.last
            if here != start or line.count('"') % 2:
                raise CorpusError(
                    f"The file {name} has an unmatched quote (the value starting on line {start} "
                    f"runs on to line {here}), so rows would be merged; fix the quoting and try "
                    "again."
                ) from None
            record = next(csv.reader([line], delimiter=delimiter, quotechar='"'), [])
            literal = next(csv.reader([line], delimiter=delimiter, quoting=csv.QUOTE_NONE), [])
            if len(literal) == len(record):  # keep the quotes as typed when that splits the same
                record = literal
        records.append(record)
        ends.append(reader.line_num)
        previous_line = reader.line_num
    return records, ends


def _check_merged_rows(
    records: list[list[str]],
    start_lines: Callable[[], list[int]],
    delimiter: str,
    width: int,
    name: str,
) -> None:
    """Catch a stray quote that closed by chance: a quoted value swallowing whole rows.

    When the first column's values share one shape with digits in it (ids like 17, d17, bill-17),
    a line break inside a value followed by such an id, the delimiter, and (nearly) the header's
    number of fields is taken to be a swallowed row.
    """
    if width < 2 or delimiter == _SINGLE_COLUMN:
        return
    multiline = [i for i, r in enumerate(records) if "\n" in "".join(r) or "\r" in "".join(r)]
    if not multiline:
        return
    firsts = [r[0].strip() for r in records[1:501]]
    shapes = Counter(re.sub(r"[0-9]+", "#", f) for f in firsts)
    shape, n = shapes.most_common(1)[0]
    if "#" not in shape or n < 0.9 * len(firsts):
        return
    pattern = "".join(
        r"[0-9]+" if part == "#" else re.escape(part) for part in re.split("(#)", shape)
    )
    row_start = re.compile(r"[\r\n][ \t]*" + pattern + re.escape(delimiter))
    for i in multiline:
        for field in records[i]:
            for m in row_start.finditer(field):
                rest = field[m.start() :].lstrip("\r\n").splitlines()[0]
                swallowed = next(csv.reader([rest], delimiter=delimiter), [])
                if len(_trim_trailing_empty(swallowed)) >= max(2, width - 1):
                    raise CorpusError(
                        f"The file {name} has an unmatched quote in the row starting on line "
                        f"{start_lines()[i]}: its value runs over the next row(s), which would be merged; "
                        "fix the quoting and try again."
                    )


# ---- JSON Lines -------------------------------------------------------------------------------


def _parse_jsonl(text: str, name: str) -> pd.DataFrame:
    stripped = text.lstrip()
    if stripped.startswith("["):
        try:
            value = json.loads(text)
        except ValueError:
            value = None
        if isinstance(value, list) and all(isinstance(v, dict) for v in value):
            return pd.DataFrame.from_records(value) if value else pd.DataFrame()
    rows: list[dict] = []
    decode = json.JSONDecoder().decode
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = decode(line)
        except ValueError:
            raise CorpusError(
                f"The file {name} is not valid JSON Lines: line {number} is not a JSON object."
            ) from None
        if not isinstance(value, dict):
            raise CorpusError(
                f"The file {name} is not valid JSON Lines: line {number} is a JSON "
                f"{type(value).__name__.replace('dict', 'object').replace('list', 'array')}, "
                "not an object."
            )
        rows.append(value)
    if not rows:
        raise CorpusError(f"The file {name} has no rows.")
    return pd.DataFrame.from_records(rows)


# ---- binary formats ---------------------------------------------------------------------------


def _read_xlsx(
    data: bytes, name: str, limits: UploadLimits = UPLOAD_LIMITS
) -> tuple[pd.DataFrame, list[str]]:
    """The first sheet, read by calamine (pandas' ``calamine`` engine: a million rows in about
    6 s where openpyxl took 29 s) once the workbook's parts are known to unpack within
    ``limits.max_xlsx_unpacked_mb``."""
    found = _describe_signature(data)
    if found is None or found[0] != "an Excel workbook":
        if found is None:
            raise CorpusError(f"The file {name} is not an Excel (.xlsx) workbook.")
        raise _not_a(name, "xlsx", *found)
    _check_unpacked(data, name, limits.max_xlsx_unpacked_mb * 1024 * 1024)
    warnings: list[str] = []
    try:
        book = pd.ExcelFile(io.BytesIO(data), engine="calamine")
        sheets = book.sheet_names
        if not sheets:
            raise CorpusError(f"The file {name} has no rows.")
        frame = book.parse(sheets[0], nrows=limits.max_rows + 1)
    except CorpusError:
        raise
    except Exception as exc:  # calamine raises many kinds on broken workbooks
        raise CorpusError(
            f"The file {name} could not be read as an Excel workbook ({_short(exc)})."
        ) from None
    if len(sheets) > 1:
        warnings.append(
            f"The workbook has {len(sheets)} sheets; only the first ('{sheets[0]}') was read."
        )
    return frame, warnings


def _check_unpacked(data: bytes, name: str, max_bytes: int) -> None:
    """Refuse a ZIP whose parts unpack to more than ``max_bytes`` (a ZIP bomb), before any XML
    parser sees it. The sizes the archive declares are summed, then every part is inflated in
    chunks and thrown away: Python's zipfile stops a part at its declared size and fails its
    CRC when the part is longer, so a lying size cannot slip through to the workbook reader."""
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        infos = zf.infolist()
        declared = sum(i.file_size for i in infos)
        if declared > max_bytes:
            raise CorpusError(
                f"The file {name} unpacks to {_format_size(declared, exact=False)} of XML; the "
                f"limit is {_format_size(max_bytes, exact=True)}, so save it as CSV or split it."
            )
        for info in infos:
            with zf.open(info) as part:
                while part.read(1 << 20):
                    pass


def _read_parquet(data: bytes, name: str, limits: UploadLimits = UPLOAD_LIMITS) -> pd.DataFrame:
    """A Parquet file whose footer promises no more rows, columns, row groups and uncompressed
    data than ``limits`` allow (checked before any data is read)."""
    if not (data.startswith(b"PAR1") and data.endswith(b"PAR1")):
        found = _describe_signature(data)
        if found is not None and found[1] != "parquet":
            raise _not_a(name, "parquet", *found)
        raise CorpusError(f"The file {name} is not a Parquet file (or it is incomplete).")
    import pyarrow.parquet as pq

    try:
        meta = pq.ParquetFile(io.BytesIO(data)).metadata
    except Exception as exc:  # pyarrow errors
        raise CorpusError(
            f"The file {name} could not be read as Parquet ({_short(exc)})."
        ) from None
    _check_shape(meta.num_rows, meta.num_columns, name, limits)
    if meta.num_row_groups > limits.max_parquet_row_groups:
        raise CorpusError(
            f"The file {name} has {_count(meta.num_row_groups, 'row group')}; the most one upload "
            f"may hold is {limits.max_parquet_row_groups:,}, so write it with larger row groups."
        )
    unpacked = sum(
        meta.row_group(i).column(j).total_uncompressed_size
        for i in range(meta.num_row_groups)
        for j in range(meta.num_columns)
    )
    if unpacked > limits.max_parquet_unpacked_mb * 1024 * 1024:
        raise CorpusError(
            f"The file {name} unpacks to {_format_size(unpacked, exact=False)} of data; the "
            f"limit is {_format_size(limits.max_parquet_unpacked_mb * 1024 * 1024, exact=True)}, "
            "so split it into smaller files."
        )
    try:
        return pd.read_parquet(io.BytesIO(data))
    except Exception as exc:  # pyarrow errors
        raise CorpusError(
            f"The file {name} could not be read as Parquet ({_short(exc)})."
        ) from None


def _read_stata(data: bytes, name: str) -> tuple[pd.DataFrame, list[str]]:
    found = _describe_signature(data)
    if found is None or found[1] != "dta":
        if found is None:
            raise CorpusError(f"The file {name} is not a Stata (.dta) file.")
        raise _not_a(name, "dta", *found)
    import warnings as _warnings

    try:
        with _warnings.catch_warnings():
            _warnings.simplefilter("ignore")
            return pd.read_stata(io.BytesIO(data), convert_categoricals=True), []
    except ValueError as exc:
        if "label" not in str(exc).lower():
            raise CorpusError(
                f"The file {name} could not be read as a Stata file ({_short(exc)})."
            ) from None
    except Exception as exc:
        raise CorpusError(
            f"The file {name} could not be read as a Stata file ({_short(exc)})."
        ) from None
    try:  # value labels that pandas cannot turn into categories: keep the codes
        with _warnings.catch_warnings():
            _warnings.simplefilter("ignore")
            frame = pd.read_stata(io.BytesIO(data), convert_categoricals=False)
    except Exception as exc:
        raise CorpusError(
            f"The file {name} could not be read as a Stata file ({_short(exc)})."
        ) from None
    return frame, ["Some value labels could not be applied; those columns hold the numeric codes."]


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:150].rstrip(".")


# ---- normalisation ----------------------------------------------------------------------------


def _normalise_frame(
    frame: pd.DataFrame, name: str, *, from_text: bool
) -> tuple[pd.DataFrame, list[str]]:
    """Clean column names, turn text-like columns into `str`, drop fully empty rows and columns.

    Delimited text arrives as strings: a column becomes numeric only when every value is a number
    written exactly as Python would (so ids like "007" or "1.10" stay text).
    """
    warnings: list[str] = []
    names = [_column_name(c) for c in frame.columns]
    unnamed = [i for i, n in enumerate(names) if n == ""]
    columns: dict[str, pd.Series] = {}
    renamed: list[str] = []
    dropped_unnamed = 0
    for i, (raw_name, col) in enumerate(
        zip(names, (frame.iloc[:, j] for j in range(frame.shape[1])), strict=True)
    ):
        col = _normalise_column(col, from_text=from_text)
        if i in unnamed and col.isna().all():
            dropped_unnamed += 1
            continue
        new = raw_name or f"column_{i + 1}"
        base, k = new, 1
        while new in columns:
            k += 1
            new = f"{base}_{k}"
        if new != raw_name:
            renamed.append(f"'{raw_name}' → '{new}'" if raw_name else f"'{new}'")
        columns[new] = col.reset_index(drop=True)
    if renamed:
        warnings.append(
            "Some columns had an empty or repeated name and were renamed: "
            + ", ".join(renamed[:10])
            + (", …" if len(renamed) > 10 else "")
            + "."
        )
    out = pd.DataFrame(columns) if columns else pd.DataFrame(index=range(len(frame)))
    if columns:
        empty_rows = np.ones(len(out), dtype=bool)
        for col in columns.values():
            empty_rows &= col.isna().to_numpy()
        n_empty = int(empty_rows.sum())
        if n_empty and n_empty < len(out):
            out = out.loc[~empty_rows].reset_index(drop=True)
            warnings.append(f"{_count(n_empty, 'completely empty row')} skipped.")
        elif n_empty == len(out):
            raise CorpusError(f"The file {name} has no rows.")
    return out, warnings


def _column_name(c: Any) -> str:
    if c is None or (isinstance(c, float) and math.isnan(c)):
        return ""
    if isinstance(c, float) and c.is_integer():
        c = int(c)
    text = str(c).strip()
    return "" if text.startswith("Unnamed: ") and text[9:].isdigit() else text


def _normalise_column(col: pd.Series, *, from_text: bool) -> pd.Series:
    if from_text:  # strings from CSV/TSV: "" is missing; numbers only when they read back exactly
        arr = pa.array(col.to_numpy(dtype=object), type=pa.string(), from_pandas=True)
        arr = pc.if_else(pc.equal(arr, ""), pa.scalar(None, pa.string()), arr)
        numeric = _maybe_numeric(arr, col.index)
        if numeric is not None:
            return numeric
        return pd.Series(pd.array(arr, dtype="str"), index=col.index)
    if isinstance(col.dtype, pd.CategoricalDtype):
        col = col.astype(object).where(col.notna(), None)
    if pd.api.types.is_string_dtype(col.dtype) and not pd.api.types.is_object_dtype(col.dtype):
        return col.astype("str")
    if pd.api.types.is_object_dtype(col.dtype):
        present = col[col.notna()]
        if len(present) == 0:
            return col
        is_str = present.map(lambda v: isinstance(v, str))
        if bool(is_str.all()):
            return col.astype("str")
        if bool(is_str.any()):
            return pd.Series(
                [None if is_missing(v) else cell_to_text(v) for v in col],
                index=col.index,
                dtype="str",
            )
    return col


_NUMBER_START = re.compile(r"-?[0-9][0-9.eE+-]*")
_CANONICAL_DECIMAL = r"^-?(?:0|[1-9][0-9]*)(?:\.[0-9]*[1-9])?$"


def _maybe_numeric(arr: pa.Array, index: pd.Index) -> pd.Series | None:
    """A numeric column for strings (nulls = missing) when every value reads back exactly.

    "007", "+5" or "1.10" stay text: as numbers they would lose characters (and ids could collide).
    """
    present = arr.drop_null()
    if len(present) == 0:
        return None
    if not all(_NUMBER_START.fullmatch(v) for v in present.slice(0, 50).to_pylist()):
        return None
    try:
        ints = pc.cast(arr, pa.int64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        ints = None
    if ints is not None:
        if not pc.all(pc.equal(pc.cast(ints, pa.string()), arr)).as_py():
            return None
        if ints.null_count == 0:
            return pd.Series(ints.to_numpy(), index=index)
        nulls = ints.is_null().to_numpy(zero_copy_only=False)
        data = ints.fill_null(0).to_numpy()
        return pd.Series(pd.arrays.IntegerArray(data, nulls), index=index)
    try:
        floats = pc.cast(arr, pa.float64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    canonical = pc.or_(
        pc.match_substring_regex(arr, _CANONICAL_DECIMAL),
        pc.equal(pc.cast(floats, pa.string()), arr),
    )
    if not pc.all(canonical).as_py():
        return None
    return pd.Series(floats.to_numpy(zero_copy_only=False), index=index, dtype="float64")


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"

"""Every upload is bounded in what it unpacks and reads; past a limit, and on any reader's error,
one sentence (fault injection: long cells, zip bombs, lying ZIP sizes, huge Parquet footers)."""

from __future__ import annotations

import csv
import io
import struct
import zipfile

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from distill_core.config import UPLOAD_LIMITS, UploadLimits
from distill_core.corpus import CorpusError, read_path, read_table
from tests.unit.corpus.test_corpus import check_sentence, expect_error, xlsx_bytes

pytestmark = pytest.mark.faults

SMALL = UploadLimits(
    max_rows=10,
    max_columns=5,
    max_cell_chars=1_000,
    max_xlsx_unpacked_mb=1,
    max_parquet_unpacked_mb=1,
    max_parquet_row_groups=4,
)


@pytest.fixture(autouse=True)
def _restore_csv_limit():
    """The small limits here set csv's process-wide field limit; later tests get it back."""
    before = csv.field_size_limit()
    yield
    csv.field_size_limit(before)


def test_the_limits_are_generous_for_real_corpora():
    assert UPLOAD_LIMITS.max_rows >= 1_048_576  # a full Excel sheet
    assert UPLOAD_LIMITS.max_cell_chars > 131_072  # csv's own default limit, which used to crash


@pytest.mark.parametrize(("sep", "filename"), [(",", "long.csv"), ("\t", "long.tsv")])
def test_a_cell_past_csvs_default_limit_reads(sep, filename):
    long_text = "word " * 40_000  # 200,000 characters: csv's default field_size_limit is 131,072
    data = f'id{sep}text\n1{sep}"{long_text}"\n2{sep}short\n'.encode()
    table = read_table(data, filename)
    assert table.frame["text"].tolist() == [long_text, "short"]


@pytest.mark.parametrize(("sep", "filename"), [(",", "long.csv"), ("\t", "long.tsv")])
def test_a_cell_past_the_limit_is_one_sentence(sep, filename):
    for value in ("x" * 1_001, '"' + "y" * 1_001 + '"'):
        data = f"id{sep}text\n1{sep}ok\n2{sep}{value}\n".encode()
        message = expect_error(data, filename, "longer than 1,000 characters", limits=SMALL)
        assert "_csv" not in message and "field limit" not in message
    assert csv.field_size_limit() == SMALL.max_cell_chars  # what the reader set it to


def test_an_unterminated_quote_past_the_cell_limit_names_its_line():
    data = ('id,text\n1,ok\n2,"starts here\n' + "more text\n" * 200).encode()
    message = expect_error(data, "open.csv", "line 3", limits=SMALL)
    assert "quote" in message


def test_long_cells_in_other_formats_are_refused_too():
    frame = pd.DataFrame({"id": [1, 2], "text": ["ok", "z" * 1_001]})
    expect_error(xlsx_bytes(frame), "long.xlsx", "column 'text', data row 2", limits=SMALL)
    jsonl = b'{"id": 1, "text": "ok"}\n{"id": 2, "text": "' + b"z" * 1_001 + b'"}\n'
    expect_error(jsonl, "long.jsonl", "longer than 1,000 characters", limits=SMALL)


def test_too_many_rows_in_csv_and_a_file_of_blank_lines():
    rows = "".join(f"{i},text {i}\n" for i in range(11))
    expect_error(("id,text\n" + rows).encode(), "many.csv", "more than 10 rows", limits=SMALL)
    read_table(("id,text\n" + rows[: rows.index("10,")]).encode(), "ten.csv", limits=SMALL)
    blanks = b"id,text\n1,a\n" + b"\n" * 100 + b"2,b\n"
    expect_error(blanks, "blank.csv", "more than 10 rows", limits=SMALL)


def test_too_many_columns_in_every_format():
    wide = pd.DataFrame([[f"v{j}" for j in range(6)]], columns=[f"c{j}" for j in range(6)])
    expect_error(wide.to_csv(index=False).encode(), "w.csv", "6 columns", limits=SMALL)
    expect_error(xlsx_bytes(wide), "w.xlsx", "6 columns", limits=SMALL)
    expect_error(
        wide.to_json(orient="records", lines=True).encode(), "w.jsonl", "6 columns", limits=SMALL
    )
    buf = io.BytesIO()
    wide.to_parquet(buf)
    expect_error(buf.getvalue(), "w.parquet", "6 columns", limits=SMALL)


def _bomb(sheet_rows: int) -> bytes:
    """A valid workbook whose sheet holds ``sheet_rows`` identical rows (no cell references,
    which Excel may omit): it compresses several hundred times, like the 333 KB file that held
    a million rows."""
    small = xlsx_bytes(pd.DataFrame({"id": [1], "text": ["a"]}))
    row = '<row><c t="inlineStr"><is><t>the same text</t></is></c></row>'
    sheet = (
        '<?xml version="1.0" encoding="UTF-8"?><worksheet '
        'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
        '<row><c t="inlineStr"><is><t>text</t></is></c></row>'
        + row * sheet_rows
        + "</sheetData></worksheet>"
    )
    buf = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(small)) as src,
        zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as out,
    ):
        for info in src.infolist():
            data = sheet if info.filename == "xl/worksheets/sheet1.xml" else src.read(info)
            out.writestr(info.filename, data)
    return buf.getvalue()


def test_an_xlsx_that_unpacks_past_the_limit_is_refused_before_it_is_read(monkeypatch):
    data = _bomb(30_000)  # tens of KB that unpack to several MB of XML
    unpacked = sum(i.file_size for i in zipfile.ZipFile(io.BytesIO(data)).infolist())
    assert unpacked > 1024 * 1024 > 100 * len(data)

    def never(*args, **kwargs):
        raise AssertionError("the workbook reader was reached")

    monkeypatch.setattr(pd, "ExcelFile", never)
    message = expect_error(data, "bomb.xlsx", "the limit is 1 MB", limits=SMALL)
    assert "unpacks to" in message


def _lie_about_size(data: bytes, part: str, size: int) -> bytes:
    """Rewrite the uncompressed size a ZIP declares for ``part`` (local and central headers)."""
    out = bytearray(data)
    name = part.encode()
    pos = 0
    while (pos := out.find(b"PK\x03\x04", pos)) >= 0:
        n, m = struct.unpack_from("<HH", out, pos + 26)
        if out[pos + 30 : pos + 30 + n] == name:
            struct.pack_into("<I", out, pos + 22, size)
        pos += 30 + n + m
    pos = 0
    while (pos := out.find(b"PK\x01\x02", pos)) >= 0:
        n = struct.unpack_from("<H", out, pos + 28)[0]
        if out[pos + 46 : pos + 46 + n] == name:
            struct.pack_into("<I", out, pos + 24, size)
        pos += 46
    return bytes(out)


def test_an_xlsx_that_lies_about_its_sizes_is_one_sentence():
    data = _lie_about_size(_bomb(30_000), "xl/worksheets/sheet1.xml", 1_000)
    declared = sum(i.file_size for i in zipfile.ZipFile(io.BytesIO(data)).infolist())
    assert declared < 1024 * 1024  # passes the declared-size check
    message = expect_error(data, "liar.xlsx", "could not be read as Excel", limits=SMALL)
    assert "Traceback" not in message


def test_a_compressed_workbook_within_the_limit_reads():
    table = read_table(_bomb(10_000), "dense.xlsx", limits=UploadLimits(max_rows=20_000))
    assert len(table.frame) == 10_000 and set(table.frame["text"]) == {"the same text"}


def test_a_workbook_reads_with_calamine():
    frame = pd.DataFrame(
        {"id": range(3), "text": ["a", "b", "c"], "when": pd.date_range("2024-01-01", periods=3)}
    )
    table = read_table(xlsx_bytes(frame), "ok.xlsx")
    assert table.frame["text"].tolist() == ["a", "b", "c"]
    assert table.frame["id"].tolist() == [0, 1, 2]


def _parquet(frame: pd.DataFrame, **kwargs) -> bytes:
    buf = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), buf, **kwargs)
    return buf.getvalue()


def test_parquet_rows_row_groups_and_data_are_checked_from_its_footer(monkeypatch):
    def never(*args, **kwargs):
        raise AssertionError("the Parquet data was read")

    monkeypatch.setattr(pd, "read_parquet", never)
    many = pd.DataFrame({"id": range(11), "text": ["t"] * 11})
    expect_error(_parquet(many), "many.parquet", "more than 10 rows", limits=SMALL)
    five = many.head(5)
    expect_error(_parquet(five, row_group_size=1), "groups.parquet", "5 row groups", limits=SMALL)
    big = pd.DataFrame({"id": range(2), "text": ["q" * 600_000, "r" * 600_000]})
    expect_error(
        _parquet(big, compression="zstd"), "big.parquet", "of data; the limit is 1 MB", limits=SMALL
    )


@pytest.mark.parametrize(
    ("filename", "reader", "error"),
    [
        ("a.parquet", "read_parquet", RuntimeError("arrow exploded\nwith details")),
        ("a.dta", "read_stata", KeyError("boom")),
        ("a.xlsx", "ExcelFile", ZeroDivisionError("x")),
        ("a.csv", "DataFrame", TypeError("no frame")),
        ("a.jsonl", "DataFrame", MemoryError()),
    ],
)
def test_any_readers_unexpected_error_is_one_sentence(monkeypatch, filename, reader, error):
    frame = pd.DataFrame({"id": [1, 2], "text": ["a", "b"]})
    if filename.endswith(".parquet"):
        data = _parquet(frame)
    elif filename.endswith(".dta"):
        buf = io.BytesIO()
        frame.to_stata(buf, write_index=False)
        data = buf.getvalue()
    elif filename.endswith(".xlsx"):
        data = xlsx_bytes(frame)
    elif filename.endswith(".csv"):
        data = frame.to_csv(index=False).encode()
    else:
        data = frame.to_json(orient="records", lines=True).encode()

    def fail(*args, **kwargs):
        raise error

    monkeypatch.setattr(pd, reader, fail)
    with pytest.raises(CorpusError) as info:
        read_table(data, filename)
    message = check_sentence(info.value, "a.")
    assert "\n" not in message


def test_read_path_passes_the_limits(tmp_path):
    path = tmp_path / "wide.csv"
    path.write_text("a,b,c,d,e,f\n1,2,3,4,5,6\n")
    with pytest.raises(CorpusError, match="6 columns"):
        read_path(path, limits=SMALL)

"""Tests for distill_core.corpus: every supported format reads, every bad upload gets one sentence."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from distill_core.config import MAX_UPLOAD_BYTES
from distill_core.corpus import (
    LONG_TEXT_CHARS,
    SUPPORTED_SUFFIXES,
    CorpusError,
    Table,
    generate_ids,
    prepare_corpus,
    read_path,
    read_table,
    suggest_text_column,
    text_columns,
)

SHARED_DATA = Path(__file__).resolve().parents[4] / "shared" / "data"

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00\x00"


def sample_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": [1, 2, 3],
            "text": ["The senate passed the bill.", "Café au lait, s'il vous plaît 😀", None],
            "score": [0.5, np.nan, 2.0],
            "when": pd.to_datetime(["2024-01-02", "2024-03-04 05:06:07", None], format="ISO8601"),
            "label": ["a", "b", "a"],
        }
    )


def xlsx_bytes(frame: pd.DataFrame, extra_sheet: bool = False) -> bytes:
    buf = io.BytesIO()
    with pd.ExcelWriter(buf, engine="openpyxl") as writer:
        frame.to_excel(writer, index=False, sheet_name="Data")
        if extra_sheet:
            frame.to_excel(writer, index=False, sheet_name="Notes")
    return buf.getvalue()


def zip_bytes() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("notes.txt", "hello")
    return buf.getvalue()


def expect_error(data: bytes, filename: str, fragment: str, **kwargs) -> str:
    """read_table must raise CorpusError whose message is one sentence containing `fragment`."""
    with pytest.raises(CorpusError) as info:
        read_table(data, filename, **kwargs)
    return check_sentence(info.value, fragment)


def check_sentence(error: CorpusError, fragment: str) -> str:
    message = str(error)
    assert fragment in message
    assert "\n" not in message and "Traceback" not in message
    assert message.endswith(".")
    return message


# --------------------------------------------------------------------------------------------
# Formats


def test_supported_suffixes_cover_the_formats():
    for suffix in (".csv", ".tsv", ".txt", ".xlsx", ".parquet", ".jsonl", ".ndjson", ".dta"):
        assert suffix in SUPPORTED_SUFFIXES


def test_csv_reads_types_and_sha(tmp_path):
    data = b'id,text,score,code\n1,hello world,0.5,007\n2,"quoted, with comma",3,010\n'
    table = read_table(data, "tweets.csv")
    assert table.file_format == "csv"
    assert table.encoding == "utf-8"
    assert table.warnings == ()
    assert list(table.frame.columns) == ["id", "text", "score", "code"]
    assert table.frame["text"].tolist() == ["hello world", "quoted, with comma"]
    assert pd.api.types.is_integer_dtype(table.frame["id"].dtype)
    assert table.frame["score"].tolist() == [0.5, 3.0]
    assert table.frame["code"].tolist() == ["007", "010"]  # leading zeros stay text
    import hashlib

    assert table.sha256 == hashlib.sha256(data).hexdigest()
    path = tmp_path / "tweets.csv"
    path.write_bytes(data)
    assert read_path(path).frame.equals(table.frame)


@pytest.mark.parametrize(
    ("delimiter", "filename", "fmt"),
    [(";", "x.csv", "csv"), ("\t", "x.tsv", "tsv"), ("\t", "x.txt", "tsv"), ("|", "x.csv", "csv")],
)
def test_delimiter_is_sniffed(delimiter, filename, fmt):
    rows = [["id", "text", "label"], ["1", "one, two, three", "a"], ["2", "four, five", "b"]]
    data = "\n".join(delimiter.join(r) for r in rows).encode()
    table = read_table(data, filename)
    assert list(table.frame.columns) == ["id", "text", "label"]
    assert table.frame["text"].tolist() == ["one, two, three", "four, five"]
    assert table.file_format == fmt


def test_excel_sep_hint_line():
    table = read_table(b"sep=;\r\nid;text\r\n1;a, b\r\n", "x.csv")
    assert table.frame["text"].tolist() == ["a, b"]


def test_utf8_bom():
    table = read_table("\ufeffid,text\n1,café\n".encode(), "bom.csv")
    assert table.encoding == "utf-8-sig"
    assert list(table.frame.columns) == ["id", "text"]
    assert table.frame["text"].tolist() == ["café"]
    assert table.warnings == ()


def test_cp1252_fallback_warns():
    table = read_table(b"id,text\n1,caf\xe9 \x93quoted\x94\n", "win.csv")
    assert table.encoding == "cp1252"
    assert table.frame["text"].tolist() == ["café \u201cquoted\u201d"]
    assert any("not UTF-8" in w and "cp1252" in w for w in table.warnings)


def test_latin1_when_not_cp1252():
    table = read_table(b"id,text\n1,caf\xe9 \x81\n", "old.csv")
    assert table.encoding == "latin-1"
    assert any("Latin-1" in w for w in table.warnings)


def test_mostly_utf8_with_a_bad_byte_stays_utf8():
    data = "id,text\n1,café naïve déjà\n2,bad".encode() + b"\xe9\n"
    table = read_table(data, "x.csv")
    assert table.encoding == "utf-8"
    assert table.frame["text"][0] == "café naïve déjà"
    assert any("invalid byte" in w for w in table.warnings)


def test_quoted_newlines_and_escaped_quotes_are_kept():
    data = b'id,text\n1,"line one\nline two"\n2,"she said ""hi"""\n3,plain\n'
    table = read_table(data, "x.csv")
    assert table.frame["text"].tolist() == ["line one\nline two", 'she said "hi"', "plain"]


def test_stray_quote_within_one_line_is_tolerated():
    table = read_table(b'id,text\n1,"Hi" she said\n2,ok\n', "x.csv")
    assert table.frame["text"].tolist() == ['"Hi" she said', "ok"]


def test_short_rows_blank_lines_and_trailing_delimiters():
    data = b"id,text,label,\n1,a,x,\n\n2,b\n,,,\n"
    table = read_table(data, "x.csv")
    assert list(table.frame.columns) == ["id", "text", "label"]
    assert table.frame["text"].tolist() == ["a", "b"]
    assert table.frame["label"].isna().tolist() == [False, True]
    assert any("empty row" in w for w in table.warnings)


def test_xlsx_first_sheet_dates_and_numbers():
    table = read_table(xlsx_bytes(sample_frame(), extra_sheet=True), "book.xlsx")
    assert table.file_format == "xlsx"
    assert table.encoding is None
    assert any("2 sheets" in w for w in table.warnings)
    assert table.frame["text"].tolist()[:2] == sample_frame()["text"].tolist()[:2]
    assert pd.api.types.is_numeric_dtype(table.frame["score"].dtype)
    assert text_columns(table.frame) == ["text", "label"]


def test_parquet():
    buf = io.BytesIO()
    sample_frame().to_parquet(buf)
    table = read_table(buf.getvalue(), "x.parquet")
    assert table.file_format == "parquet"
    assert table.frame["text"].tolist()[:2] == sample_frame()["text"].tolist()[:2]
    assert pd.isna(table.frame["text"][2])


@pytest.mark.parametrize("suffix", [".jsonl", ".ndjson"])
def test_json_lines(suffix):
    lines = [{"id": "a1", "text": "first text", "meta": {"k": [1, 2]}}, {"id": "a2", "text": "two"}]
    data = ("\n".join(json.dumps(r) for r in lines) + "\n\n").encode()
    table = read_table(data, "x" + suffix)
    assert table.file_format == "jsonl"
    corpus = prepare_corpus(table, "text", "id")
    assert corpus.ids == ["a1", "a2"]
    assert corpus.extras[0] == {"meta": {"k": [1, 2]}}
    assert corpus.extras[1] == {"meta": None}


def test_stata_value_labels_become_strings():
    frame = pd.DataFrame(
        {"id": [1, 2, 3], "text": ["alpha beta", "gamma", "delta"], "party": [1, 2, 1]}
    )
    buf = io.BytesIO()
    frame.to_stata(buf, write_index=False, value_labels={"party": {1: "Dem", 2: "Rep"}})
    table = read_table(buf.getvalue(), "survey.dta")
    assert table.file_format == "dta"
    assert table.frame["party"].tolist() == ["Dem", "Rep", "Dem"]
    corpus = prepare_corpus(table, "text", "id")
    assert corpus.ids == ["1", "2", "3"]
    assert [e["party"] for e in corpus.extras] == ["Dem", "Rep", "Dem"]


# --------------------------------------------------------------------------------------------
# Bad uploads


@pytest.mark.parametrize("data", [b"", b"  \n\r\n\t", b"id,text\n", b"id,text\r\n\r\n"])
def test_empty_or_header_only(data):
    expect_error(data, "empty.csv", "The file empty.csv has no rows.")


def test_empty_xlsx_sheet():
    expect_error(xlsx_bytes(pd.DataFrame({"text": []})), "e.xlsx", "has no rows")


def test_png_renamed_csv_and_xlsx():
    expect_error(PNG, "photo.csv", "is not a CSV file; it looks like a PNG image")
    expect_error(PNG, "photo.xlsx", "is not an Excel (.xlsx) file; it looks like a PNG image")


def test_zip_renamed_parquet_and_xlsx():
    expect_error(zip_bytes(), "data.parquet", "is not a Parquet file; it looks like a ZIP archive")
    expect_error(zip_bytes(), "data.xlsx", "it looks like a ZIP archive")


def test_xlsx_renamed_csv_suggests_suffix():
    expect_error(xlsx_bytes(sample_frame()), "data.csv", "rename it to .xlsx")


def test_parquet_renamed_csv_suggests_suffix():
    buf = io.BytesIO()
    sample_frame().to_parquet(buf)
    expect_error(buf.getvalue(), "data.csv", "rename it to .parquet")


def test_truncated_parquet():
    buf = io.BytesIO()
    sample_frame().to_parquet(buf)
    expect_error(buf.getvalue()[:-10], "cut.parquet", "not a Parquet file")


def test_csv_renamed_dta():
    expect_error(b"id,text\n1,a\n", "x.dta", "is not a Stata (.dta) file")


def test_html_named_csv():
    expect_error(b"<!DOCTYPE html>\n<html><body>Login</body></html>", "x.csv", "web page (HTML)")


def test_json_lines_that_is_not_json():
    expect_error(b'{"text": "ok"}\nid,text\n', "x.jsonl", "line 2 is not a JSON object")
    expect_error(b'{"text": "ok"}\n[1, 2]\n', "x.jsonl", "line 2 is a JSON array")


def test_unterminated_quote_on_last_line():
    data = b'id,text\n1,fine\n2,"never closed\n'
    message = expect_error(data, "q.csv", "unterminated quote")
    assert "line 3" in message


def test_unterminated_quote_in_middle_is_an_error():
    # The stray quote on line 2 is "closed" by the opening quote on line 4.
    data = b'id,text,label\n1,"oops,a\n2,two,b\n3,"three",c\n4,four,d\n'
    message = expect_error(data, "q.csv", "quote")
    assert "line 2" in message


def test_unterminated_quote_in_middle_closed_by_a_later_stray_quote():
    # Every field count matches the header; only the id-like "2," after a line break gives it away.
    data = b'id,text\n1,"unterminated\n2,ends with a quote"\n3,fine\n'
    message = expect_error(data, "q.csv", "unmatched quote")
    assert "line 2" in message
    data = b'id,text,label\nd1,"unterminated\nd2,x",a\nd3,y,b\n'
    expect_error(data, "q.csv", "unmatched quote")


def test_unterminated_quote_in_middle_swallowing_to_end():
    data = b'id,text\n1,ok\n2,"open\n3,more\n4,rest\n'
    message = expect_error(data, "q.csv", "unterminated quote")
    assert "line 3" in message


def test_ragged_row_names_the_line():
    data = b"id,text\n1,fine\n2,too,many\n3,fine\n"
    message = expect_error(data, "r.csv", "3 fields on line 3")
    assert "2 columns" in message


def test_ragged_row_line_number_counts_multiline_values():
    data = b'id,text\n1,"two\nlines"\n2,too,many\n'
    expect_error(data, "r.csv", "on line 4")


def test_binary_data_named_csv():
    expect_error(bytes(range(256)) * 20, "blob.csv", "contains binary data")
    expect_error(b"\x01\x02\x03\x04\x05\x06\x07\x08" * 100, "blob.tsv", "contains binary data")


def test_over_limit():
    expect_error(b"id,text\n1,a\n", "x.csv", "is 12 bytes; the limit is 5 bytes", max_bytes=5)
    data = b"id,text\n" + b"x" * (2 * 1024 * 1024 + 300 * 1024)
    expect_error(
        data, "big.csv", "The file big.csv is 2.3 MB; the limit is 2 MB.", max_bytes=2 * 1024 * 1024
    )
    assert MAX_UPLOAD_BYTES == 200 * 1024 * 1024


def test_read_path_checks_size_before_reading(tmp_path, monkeypatch):
    path = tmp_path / "big.csv"
    path.write_bytes(b"id,text\n" + b"1,abc\n" * 1000)

    def no_read(self):
        raise AssertionError("read before the size check")

    monkeypatch.setattr(Path, "read_bytes", no_read)
    with pytest.raises(CorpusError) as info:
        read_path(path, max_bytes=1024)
    check_sentence(info.value, "the limit is 1 KB")


def test_read_path_missing_file(tmp_path):
    with pytest.raises(CorpusError) as info:
        read_path(tmp_path / "nope.csv")
    check_sentence(info.value, "does not exist")


@pytest.mark.parametrize("filename", ["report.pdf", "data.xls", "README", "data.json"])
def test_unsupported_suffix(filename):
    message = expect_error(b"id,text\n1,a\n", filename, "unsupported type")
    if filename in ("report.pdf", "README"):
        assert "CSV (.csv)" in message and "Stata (.dta)" in message


def test_missing_columns():
    table = read_table(b"a,b,c\nx y,2,3\n", "x.csv")
    with pytest.raises(CorpusError) as info:
        prepare_corpus(table, "text")
    check_sentence(info.value, "The column 'text' is not in the file (columns: a, b, c).")
    with pytest.raises(CorpusError) as info:
        prepare_corpus(table, "a", id_column="doc_id")
    check_sentence(info.value, "The column 'doc_id' is not in the file (columns: a, b, c).")


def test_no_text_column():
    table = read_table(b"id,score,year\n1,0.5,2020\n2,0.7,2021\n", "numbers.csv")
    assert suggest_text_column(table.frame) is None
    assert text_columns(table.frame) == []
    with pytest.raises(CorpusError) as info:
        prepare_corpus(table, "score")
    check_sentence(info.value, "has no text column")


def test_numeric_column_chosen_as_text():
    table = read_table(b"id,text,score\n1,hello there,0.5\n", "x.csv")
    with pytest.raises(CorpusError) as info:
        prepare_corpus(table, "score")
    check_sentence(info.value, "The column 'score' holds numbers, not text")


def test_all_empty_text_column():
    table = read_table(b"id,text,label\n1,,a\n2,,b\n", "x.csv")
    with pytest.raises(CorpusError) as info:
        prepare_corpus(table, "text")
    check_sentence(info.value, "every value is empty")


def test_duplicate_ids():
    table = read_table(b"id,text\n7,a\n8,b\n7,c\n", "dup.csv")
    with pytest.raises(CorpusError) as info:
        prepare_corpus(table, "text", "id")
    check_sentence(info.value, "'7' appears 2 times")


def test_empty_ids():
    table = read_table(b"id,text\nx1,a\n,b\nx3,c\n", "gap.csv")
    with pytest.raises(CorpusError) as info:
        prepare_corpus(table, "text", "id")
    check_sentence(info.value, "1 empty value (first in row 2)")


def test_same_column_for_text_and_id():
    table = read_table(b"id,text\n1,a\n", "x.csv")
    with pytest.raises(CorpusError):
        prepare_corpus(table, "text", "text")


# --------------------------------------------------------------------------------------------
# Ids, report, extras


def test_id_values_become_strings():
    frame = pd.DataFrame({"id": [1.0, 2.0, 3.5], "text": ["a", "b", "c"]})
    table = Table(frame, "f.parquet", "parquet", None, (), "")
    assert prepare_corpus(table, "text", "id").ids == ["1", "2", "3.5"]
    table = read_table(b"id,text\n1,a\n2,b\n3,c\n", "x.csv")
    assert prepare_corpus(table, "text", "id").ids == ["1", "2", "3"]
    table = read_table(b"id,text\n007,a\n 8 ,b\n", "x.csv")
    assert prepare_corpus(table, "text", "id").ids == ["007", "8"]


def test_generate_ids_format_and_repeats():
    import hashlib

    ids = generate_ids(["a", "b", "a", "a", ""])
    base_a = "t" + hashlib.sha1(b"a").hexdigest()[:12]
    assert ids[0] == base_a
    assert ids[2] == base_a + "-2"
    assert ids[3] == base_a + "-3"
    assert len(set(ids)) == len(ids)


def test_generated_ids_are_stable_across_reads_and_reordering():
    data = b"text,label\nhello,a\nworld,b\nhello,c\nthird,d\n"
    first = prepare_corpus(read_table(data, "x.csv"), "text")
    second = prepare_corpus(read_table(data, "x.csv"), "text")
    assert first.ids == second.ids
    assert first.report.ids_generated
    reordered = b"text,label\nthird,d\nworld,b\nhello,a\n"
    again = prepare_corpus(read_table(reordered, "x.csv"), "text")
    by_text = dict(zip(first.texts, first.ids, strict=False))  # first occurrence wins
    assert {t: i for t, i in zip(again.texts, again.ids, strict=True)} == {
        "third": by_text["third"],
        "world": by_text["world"],
        "hello": first.ids[0],
    }


def test_report_counts_empty_duplicate_and_long_texts():
    long_text = "word " * (LONG_TEXT_CHARS // 5 + 10)
    rows = ["id,text", "1,same", "2,", "3,same", "4,other", "5,same", "6,other", "7,  ", "8,unique"]
    rows.append(f"9,{long_text}")
    table = read_table(("\n".join(rows) + "\n").encode(), "x.csv")
    corpus = prepare_corpus(table, "text", "id")
    report = corpus.report
    assert report.rows == 9
    assert report.empty_texts == 2
    assert report.empty_ids == ("2", "7")
    assert report.duplicate_texts == 3  # same ×2 repeats, other ×1 repeat; empties not counted
    assert report.duplicate_groups == 2
    assert report.long_texts == 1 and report.long_ids == ("9",)
    assert corpus.texts[1] == "" and corpus.texts[6] == "  "
    assert len(corpus.texts) == 9  # everything kept
    lines = report.summary_lines()
    assert lines[0] == "9 rows"
    assert "2 empty texts (kept)" in lines
    assert any(line.startswith("3 repeated texts") for line in lines)
    assert any("longer than 5,000 characters" in line for line in lines)
    json.dumps(report.to_dict())
    assert report.to_dict()["empty_ids"] == ["2", "7"]


def test_extras_are_json_serialisable_with_dates_and_nan():
    table = read_table(xlsx_bytes(sample_frame()), "x.xlsx")
    corpus = prepare_corpus(table, "text", "id")
    assert corpus.texts[2] == ""
    text = json.dumps(corpus.extras, allow_nan=False)
    assert json.loads(text)[1] == {"score": None, "when": "2024-03-04T05:06:07", "label": "b"}
    assert corpus.extras[0]["when"].startswith("2024-01-02")
    assert corpus.extras[2]["when"] is None


def test_extras_from_odd_python_values():
    frame = pd.DataFrame(
        {
            "text": ["a b", "c d"],
            "arr": [np.array([1, 2]), None],
            "ts": pd.to_datetime(["2020-01-01", None]),
            "i64": pd.array([1, None], dtype="Int64"),
            "flt": [np.inf, 1.5],
            "raw": [b"bytes", b"\xff"],
            "cat": pd.Categorical(["x", None]),
        }
    )
    corpus = prepare_corpus(Table(frame, "f", "parquet", None, (), ""), "text")
    assert corpus.extras[0] == {
        "arr": [1, 2],
        "ts": "2020-01-01T00:00:00",
        "i64": 1,
        "flt": None,
        "raw": "bytes",
        "cat": "x",
    }
    json.dumps(corpus.extras, allow_nan=False)


def test_suggest_text_column_picks_the_longest_string_column():
    frame = pd.DataFrame(
        {
            "id": ["a1", "a2", "a3"],
            "short": ["yes it is", "no", "maybe so"],
            "body": ["a much longer text here", "another long text here", "x"],
            "n": [1, 2, 3],
        }
    )
    assert suggest_text_column(frame) == "body"
    assert text_columns(frame) == ["body", "short", "id"]


def test_mixed_excel_column_becomes_text():
    frame = pd.DataFrame({"id": [1, 2], "text": ["words here", 42]})
    table = read_table(xlsx_bytes(frame), "mixed.xlsx")
    assert prepare_corpus(table, "text", "id").texts == ["words here", "42"]


# --------------------------------------------------------------------------------------------
# Real data (kept next to the repository, not in it)

REAL = [
    ("davidson_hate_offensive.csv", 24_783, 0),
    ("tweeteval_hate.csv", 12_970, 8),
    ("tweeteval_emotion.csv", 5_052, 0),
    ("uscongress_bill_topics.csv", 4_449, 0),
]


@pytest.mark.parametrize(("filename", "rows", "empty"), REAL)
def test_real_data_sets(filename, rows, empty):
    path = SHARED_DATA / filename
    if not path.exists():
        pytest.skip(f"{path} not found (the shared real data sets sit next to the repository)")
    table = read_path(path)
    assert suggest_text_column(table.frame) == "text"
    corpus = prepare_corpus(table, text_column="text", id_column="id")
    assert corpus.report.rows == rows
    assert len(corpus.ids) == len(set(corpus.ids)) == rows
    assert corpus.report.empty_texts == empty
    assert table.encoding == "utf-8"
    assert set(corpus.extras[0]) == {"label", "split"}
    json.dumps(corpus.extras[:100], allow_nan=False)


def test_leading_blank_lines_utf16_and_single_column_text():
    assert list(read_table(b"\n\nid,text\n1,a\n", "x.csv").frame.columns) == ["id", "text"]
    table = read_table("id\ttext\n1\tcafé\n".encode("utf-16"), "excel_unicode.txt")
    assert table.encoding == "utf-16" and table.frame["text"].tolist() == ["café"]
    table = read_table(b"text\nhello, world\nanother, one, two\n", "lines.txt")
    assert table.frame["text"].tolist() == ["hello, world", "another, one, two"]

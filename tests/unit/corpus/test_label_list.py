"""Label lists in bulk: files (CSV, TSV, Excel) and pasted text, with and without a header
row, and bad input ending in one sentence."""

from __future__ import annotations

import io

import pandas as pd
import pytest

from distill_core.codebook import CodebookError, Label
from distill_core.corpus.label_list import labels_from_file, labels_from_text

TWO = [
    Label("health", "Hospitals, doctors, insurance."),
    Label("economy", "Taxes, jobs, growth."),
]


def test_a_csv_with_a_header_row() -> None:
    data = b'name,definition\nhealth,"Hospitals, doctors, insurance."\neconomy,"Taxes, jobs, growth."\n'
    assert labels_from_file(data, "labels.csv") == TWO


def test_a_csv_without_a_header_keeps_its_first_row_as_a_label() -> None:
    data = b'health,"Hospitals, doctors, insurance."\neconomy,"Taxes, jobs, growth."\n'
    assert labels_from_file(data, "labels.csv") == TWO


def test_header_names_in_any_order_and_case() -> None:
    data = b"Description;Category\nHospitals.;health\nTaxes.;economy\n"
    assert labels_from_file(data, "labels.csv") == [
        Label("health", "Hospitals."),
        Label("economy", "Taxes."),
    ]


def test_an_excel_file() -> None:
    buf = io.BytesIO()
    pd.DataFrame(
        {"Label": ["health", "economy"], "Definition": [t.definition for t in TWO]}
    ).to_excel(buf, index=False)
    assert labels_from_file(buf.getvalue(), "codebook.xlsx") == TWO


def test_one_column_gives_names_without_definitions() -> None:
    assert labels_from_file(b"health\neconomy\nother\n", "names.txt") == [
        Label("health"),
        Label("economy"),
        Label("other"),
    ]


def test_a_label_without_a_definition_is_kept_for_the_editor_to_ask() -> None:
    data = b"health,Hospitals.\neconomy,\n"
    assert labels_from_file(data, "labels.csv") == [Label("health", "Hospitals."), Label("economy")]


def test_pasted_spreadsheet_rows_and_lines_of_name_colon_definition() -> None:
    pasted = "health\tHospitals, doctors, insurance.\neconomy\tTaxes, jobs, growth.\n"
    assert labels_from_text(pasted) == TWO
    lines = "health: Hospitals, doctors, insurance.\n\neconomy: Taxes, jobs, growth.\n"
    assert labels_from_text(lines) == TWO
    assert labels_from_text("Name\tDefinition\nhealth\tHospitals.\n") == [
        Label("health", "Hospitals.")
    ]


@pytest.mark.parametrize(
    ("data", "filename", "words"),
    [
        (b"a,b,c\nx,y,z\n", "labels.csv", "has 3 columns"),
        (b"name,definition\n,Something without a name\n", "labels.csv", "Row 2"),
        (b"\x00\x01garbage", "labels.xlsx", "labels.xlsx"),
        (b"{}", "labels.pdf", "not a label list"),
        (b"", "labels.csv", "no rows"),
    ],
)
def test_bad_files_end_in_one_sentence(data: bytes, filename: str, words: str) -> None:
    with pytest.raises(CodebookError) as caught:
        labels_from_file(data, filename)
    message = str(caught.value)
    assert words in message
    assert message.count(". ") == 0 and message.endswith("."), message


def test_nothing_pasted_says_so() -> None:
    with pytest.raises(CodebookError, match="Nothing was pasted"):
        labels_from_text("  \n \n")
    with pytest.raises(CodebookError, match="The pasted text has 3 columns"):
        labels_from_text("a\tb\tc\n")


def test_a_pasted_line_whose_name_and_definition_are_the_same_text() -> None:
    assert labels_from_text("other: other\nhealth: Hospitals.\n") == [
        Label("other", "other"),
        Label("health", "Hospitals."),
    ]

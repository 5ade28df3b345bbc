"""The validation sample for outside coders: an Excel workbook (the texts with an empty code
column offering the codebook's labels, the codebook, how to fill it in) or CSV files, built
for members who may read; a filled file imports back with the report of unmatched ids and
unknown labels."""

from __future__ import annotations

import io

import pandas as pd
import pytest
from openpyxl import load_workbook

from distill_core.corpus import read_table
from distill_core.reports import export
from distill_core.study import demo, projects, validation
from distill_core.study.access import AccessDenied
from tests.fakes import local_user


@pytest.fixture
def demo_project(store):
    with store.session() as s:
        return demo.ensure_demo_project(s, local_user(s)).id


def _download(store, pid, fmt, user=None) -> bytes:
    with store.session() as s:
        buffer = io.BytesIO()
        export.export_project(s, user or local_user(s), pid, fmt, buffer)
        return buffer.getvalue()


def _sample_and_codebook(store, pid):
    with store.session() as s:
        user = local_user(s)
        sample = validation.current_sample(s, user, pid)
        docs = validation.sample_docs(s, user, pid, sample)
        codebook = projects.as_codebook(projects.latest_codebook(s, user, pid))
    return docs, codebook


def test_the_workbook_holds_the_sample_the_codebook_and_how_to_code(store, demo_project):
    data = _download(store, demo_project, "sample-xlsx")
    docs, codebook = _sample_and_codebook(store, demo_project)
    sheets = pd.read_excel(io.BytesIO(data), sheet_name=None, dtype=str, keep_default_na=False)
    assert list(sheets) == ["sample", "codebook", "instructions"]
    sample = sheets["sample"]
    assert list(sample.columns) == ["id", "text", "code"]
    assert list(sample["id"]) == [d.doc_id for d in docs]  # coding order, both parts
    assert list(sample["text"]) == [d.text for d in docs]
    assert (sample["code"] == "").all()
    assert not {"part", "llm_label", "label"} & set(sample.columns)  # blind: no LLM, no part
    book = sheets["codebook"]
    assert list(book["label"]) == codebook.label_names
    assert list(book["definition"]) == [label.definition for label in codebook.labels]
    notes = dict(zip(sheets["instructions"]["item"], sheets["instructions"]["value"], strict=True))
    assert notes["instructions"] == codebook.instructions
    assert notes["texts"] == str(len(docs))
    # Excel offers the codebook's labels in the code column
    rule = load_workbook(io.BytesIO(data))["sample"].data_validations.dataValidation[0]
    assert rule.type == "list"
    assert rule.formula1 == f"=codebook!$A$2:$A${len(codebook.label_names) + 1}"
    assert str(rule.sqref) == f"C2:C{len(docs) + 1}"


def test_the_csv_files_hold_the_sample_and_the_codebook(store, demo_project):
    docs, codebook = _sample_and_codebook(store, demo_project)
    sample = read_table(_download(store, demo_project, "sample-csv"), "sample.csv").frame
    assert list(sample.columns) == ["id", "text", "code"]
    assert list(sample["id"].astype(str)) == [d.doc_id for d in docs]
    assert sample["code"].isna().all()
    book = read_table(_download(store, demo_project, "codebook-csv"), "codebook.csv").frame
    assert list(book["label"]) == codebook.label_names


def _fill(frame: pd.DataFrame, labels: list[str]) -> pd.DataFrame:
    """What an outside coder sends back: 20 texts coded (one in lower-case spacing of a
    label, one with a label not in the codebook), one id mistyped, the rest left empty."""
    filled = frame.copy()
    filled["code"] = filled["code"].astype(object)
    for i in range(20):
        filled.loc[i, "code"] = labels[i % len(labels)]
    filled.loc[1, "code"] = f"  {labels[1].upper()} "  # matched ignoring case and spaces
    filled.loc[2, "code"] = "politics"  # not a label
    filled.loc[3, "id"] = "no-such-id"
    return filled


@pytest.mark.parametrize("fmt", ["sample-xlsx", "sample-csv"])
def test_a_filled_file_imports_back_with_the_report_of_what_does_not_match(
    store, demo_project, fmt
):
    docs, codebook = _sample_and_codebook(store, demo_project)
    data = _download(store, demo_project, fmt)
    if fmt == "sample-xlsx":  # filled in Excel: the workbook itself, cells typed in
        book = load_workbook(io.BytesIO(data))
        sheet = book["sample"]
        frame = pd.DataFrame(sheet.values)
        frame = frame.iloc[1:].set_axis(list(frame.iloc[0]), axis=1).reset_index(drop=True)
        filled = _fill(frame.fillna(""), codebook.label_names)
        for i, (doc_id, code) in enumerate(zip(filled["id"], filled["code"], strict=True)):
            sheet.cell(row=i + 2, column=1, value=doc_id)
            sheet.cell(row=i + 2, column=3, value=code or None)
        out = io.BytesIO()
        book.save(out)
        back, name = out.getvalue(), "filled.xlsx"
    else:
        frame = read_table(data, "sample.csv").frame
        filled = _fill(frame, codebook.label_names)
        back, name = filled.to_csv(index=False).encode("utf-8"), "filled.csv"
    table = read_table(back, name).frame
    id_column, label_column = validation.guess_code_columns(table.columns)
    assert (id_column, label_column) == ("id", "code")
    with store.session() as s:
        user = local_user(s)
        plan = validation.plan_import(
            s,
            user,
            demo_project,
            table,
            id_column=id_column,
            label_column=label_column,
            label_names=codebook.label_names,
            coder="outside_coder",
        )
        assert plan.unmatched_ids == ["no-such-id"]
        assert plan.unknown_labels == {"politics": 1}
        assert plan.empty == len(docs) - 20
        assert len(plan.codes) == 18
        lines = plan.lines()
        assert "1 ids are not in the corpus and are skipped (e.g. no-such-id)." in lines
        assert any("'politics' (1)" in line for line in lines)
        validation.apply_import(s, user, demo_project, plan, f"import:{name}")
    with store.session() as s:
        codes = validation.codes_frame(s, local_user(s), demo_project)
    mine = codes[codes["coder"] == "outside_coder"].set_index("doc_id")["label"].to_dict()
    expected = {
        d.doc_id: codebook.label_names[i % len(codebook.label_names)]
        for i, d in enumerate(docs[:20])
        if i not in (2, 3)
    }
    assert mine == expected


def test_an_id_a_spreadsheet_protected_from_formulas_still_matches(store, demo_project):
    with store.session() as s:
        user = local_user(s)
        doc = validation.sample_docs(
            s, user, demo_project, validation.current_sample(s, user, demo_project)
        )[0]
        names = projects.as_codebook(projects.latest_codebook(s, user, demo_project)).label_names
        table = pd.DataFrame({"id": [f"'{doc.doc_id}"], "code": [names[0]]})
        plan = validation.plan_import(
            s,
            user,
            demo_project,
            table,
            id_column="id",
            label_column="code",
            label_names=names,
            coder="x",
        )
    assert plan.codes == [(doc.doc_id, "x", names[0])] and not plan.unmatched_ids


def test_a_viewer_may_download_the_sample_a_coder_may_not(store, demo_project):
    with store.session() as s:
        owner = local_user(s)
        for name, role in [("vera", "viewer"), ("cody", "coder")]:
            projects.ensure_user(s, name)
            projects.set_member(s, owner, demo_project, name, role)
    with store.session() as s:
        assert _download(store, demo_project, "sample-csv", projects.ensure_user(s, "vera"))
        with pytest.raises(AccessDenied):
            _download(store, demo_project, "sample-xlsx", projects.ensure_user(s, "cody"))


def test_without_a_sample_the_download_says_what_to_do_first(store):
    with store.session() as s:
        user = local_user(s)
        pid = projects.create_project(s, user, "No sample yet").id
        with pytest.raises(export.ExportError, match="Draw a validation sample first"):
            export.export_project(s, user, pid, "sample-xlsx", io.BytesIO())


def test_guessing_the_columns_of_a_file_of_codes():
    assert validation.guess_code_columns(["id", "text", "code"]) == ("id", "code")
    assert validation.guess_code_columns(["doc", "Label", "coder"]) == ("doc", "Label")
    assert validation.guess_code_columns(["text", "doc_id", "x"]) == ("doc_id", "text")
    assert validation.guess_code_columns(["only"]) == ("only", "only")

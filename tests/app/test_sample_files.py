"""The Validate page hands the sample to outside coders (Excel, CSV, the codebook) and takes
the filled file back on the Import codes tab, its id and code columns preselected, with the
report of unmatched ids and unknown labels before anything is stored."""

from __future__ import annotations

import io

from openpyxl import load_workbook

from distill_core.config import Settings
from distill_core.reports import export
from distill_core.store import Store
from distill_core.study import projects, validation
from tests.app.conftest import open_page, open_tab, texts
from tests.fakes import local_user


def test_the_sample_tab_offers_the_sample_files(home) -> None:
    at = open_tab(open_page("steps/validate.py"), "Sample")
    assert not at.exception, [e.value for e in at.exception]
    labels = [b.label for b in at.get("download_button")]
    assert labels == ["Sample and codebook (Excel)", "Sample (CSV)", "Codebook (CSV)"]
    assert "For coders outside Distill" in texts(at)


def test_a_filled_sample_workbook_imports_back_through_the_page(home) -> None:
    at = open_tab(open_page("steps/validate.py"), "Import codes")
    store = Store(Settings.from_env().database_url)
    with store.session() as s:  # what the Excel button builds (ui.export_file calls this)
        user = local_user(s)
        pid = projects.list_projects(s, user)[0].id
        buffer = io.BytesIO()
        export.export_project(s, user, pid, "sample-xlsx", buffer)
        names = projects.as_codebook(projects.latest_codebook(s, user, pid)).label_names
    book = load_workbook(io.BytesIO(buffer.getvalue()))
    sheet = book["sample"]
    ids = [sheet.cell(row=r, column=1).value for r in range(2, 7)]
    for r, label in zip(range(2, 6), names, strict=False):  # four coded, one left empty
        sheet.cell(row=r, column=3, value=label)
    sheet.cell(row=3, column=3, value="politics")  # not in the codebook
    sheet.cell(row=4, column=1, value="demo-9999")  # not in the corpus
    filled = io.BytesIO()
    book.save(filled)

    at.file_uploader(key="codes_upload").set_value(("filled.xlsx", filled.getvalue(), "x"))
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.selectbox(key="imp_id").value == "id"
    assert at.selectbox(key="imp_label").value == "code"
    at.text_input(key="imp_coder").input("outside coder")
    at.run()
    shown = texts(at)
    assert "2 codes can be imported" in shown
    assert "demo-9999" in shown and "'politics' (1)" in shown
    next(b for b in at.button if b.label == "Import 2 codes").click()
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    with store.session() as s:
        codes = validation.codes_frame(s, local_user(s), pid)
    store.dispose()
    mine = codes[codes["coder"] == "outside coder"].set_index("doc_id")["label"]
    assert mine.to_dict() == {ids[0]: names[0], ids[3]: names[3]}

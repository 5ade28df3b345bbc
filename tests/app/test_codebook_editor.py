"""The Codebook page's label rows and bulk entry in AppTest: Save off with the reason while a
label has no definition, rows that keep their text when one above is removed, a label list
imported from CSV or Excel or pasted, and a bad file ending in one sentence."""

from __future__ import annotations

import io

import pandas as pd

from distill_core.study import projects
from tests.app.conftest import open_page, open_tab, texts
from tests.app.test_pages import store_of_home
from tests.fakes import local_user


def _save(at):
    return next(b for b in at.button if b.label == "Save as a new version")


def _put_in(at) -> None:
    next(b for b in at.button if b.label.startswith("Put it into the editor")).click()
    at.run()
    assert not at.exception, [e.value for e in at.exception]


def test_a_label_without_a_definition_blocks_saving_with_the_reason(home) -> None:
    at = open_page("steps/codebook.py")
    assert not _save(at).disabled
    next(b for b in at.button if b.label == "Add a label").click()
    at.run()
    at.text_input(key="cb_label_0_8_name").input("weather")
    at.run()
    assert "Label 9 ('weather') has no definition." in [e.value for e in at.error]
    assert "Saving is off until the problems above are fixed." in texts(at)
    assert _save(at).disabled
    at.text_area(key="cb_label_0_8_definition").input("Storms, floods, heat waves.")
    at.run()
    assert not _save(at).disabled


def test_removing_a_row_leaves_the_others_as_they_were(home) -> None:
    at = open_page("steps/codebook.py")
    before = [at.text_input(key=f"cb_label_0_{r}_name").value for r in range(8)]
    at.button(key="cb_label_0_1_remove").click()
    at.run()
    names = [w.value for w in at.text_input if w.key.startswith("cb_label_0_")]
    assert names == before[:1] + before[2:]
    assert at.text_input(key="cb_label_0_2_name").label == "Name of label 2"


def test_a_label_list_from_csv_replaces_the_labels_and_saves(home) -> None:
    at = open_tab(open_page("steps/codebook.py"), "Import / export", "cb_tab")
    csv = "Label,Definition\n" + "".join(f"topic {i},Texts on topic {i}.\n" for i in range(27))
    at.file_uploader(key="cb_import_0").set_value(("topics.csv", csv.encode(), "text/csv"))
    at.run()
    assert [s.value for s in at.success] == [
        "27 labels (the editor's 8 labels are replaced; 4 examples whose label is not in the "
        "list are left out)."
    ]
    _put_in(at)
    assert at.text_input(key="cb_label_1_26_name").value == "topic 26"
    assert at.text_area(key="cb_label_1_0_definition").value == "Texts on topic 0."
    _save(at).click()
    at.run()
    with store_of_home().session() as s:
        user = local_user(s)
        pid = projects.list_projects(s, user)[0].id
        saved = projects.latest_codebook(s, user, pid).content
    assert [x["name"] for x in saved["labels"]] == [f"topic {i}" for i in range(27)]
    assert saved["instructions"].startswith("Read the text")  # the editor's own are kept


def test_pasted_labels_and_an_excel_file_without_a_header(home) -> None:
    at = open_tab(open_page("steps/codebook.py"), "Import / export", "cb_tab")
    at.text_area(key="cb_paste_0").input("health\tHospitals.\neconomy\tTaxes.\nother\t\n")
    at.run()
    assert "3 labels, 1 of them without a definition yet" in at.success[0].value
    _put_in(at)
    assert "Label 3 ('other') has no definition." in [e.value for e in at.error]
    buf = io.BytesIO()
    pd.DataFrame([["war", "Armed conflict."], ["peace", "Treaties."]]).to_excel(
        buf, index=False, header=False
    )
    at.file_uploader(key="cb_import_1").set_value(("list.xlsx", buf.getvalue(), "application/x"))
    at.run()
    _put_in(at)
    assert [at.text_input(key=f"cb_label_2_{r}_name").value for r in range(2)] == ["war", "peace"]


def test_a_bad_label_file_ends_in_one_sentence(home) -> None:
    at = open_tab(open_page("steps/codebook.py"), "Import / export", "cb_tab")
    at.file_uploader(key="cb_import_0").set_value(("l.csv", b"a,b,c\n1,2,3\n", "text/csv"))
    at.run()
    assert not at.exception
    assert [e.value for e in at.error] == [
        "The file l.csv has 3 columns, but a label list has two (name and definition), or a "
        "first row naming them."
    ]


def test_unsaved_label_edits_survive_a_visit_to_another_page(home) -> None:
    at = open_page("steps/codebook.py")
    at.text_input(key="cb_label_0_2_name").input("schooling")
    at.run()
    at.switch_page("steps/data.py")
    at.run()
    at.switch_page("steps/codebook.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.text_input(key="cb_label_0_2_name").value == "schooling"
    assert at.text_input(key="cb_label_0_3_name").value == "environment"


def test_examples_are_rows_too_whose_label_follows_the_codebook(home) -> None:
    at = open_page("steps/codebook.py")
    assert at.selectbox(key="cb_example_0_0_label").value == "health"
    assert at.selectbox(key="cb_example_0_0_label").options[:2] == ["economy", "health"]
    # Renaming a label leaves its example's label as it was, named among the problems.
    at.text_input(key="cb_label_0_1_name").input("health care")
    at.run()
    errors = [e.value for e in at.error]
    assert any("Example 1 uses the label 'health'" in e for e in errors), errors
    assert _save(at).disabled
    at.selectbox(key="cb_example_0_0_label").select("health care")
    at.run()
    assert not at.error
    # A new example, and one removed: the others keep their text.
    next(b for b in at.button if b.label == "Add an example").click()
    at.run()
    at.text_area(key="cb_example_0_4_text").input("Interest rates rise again.")
    at.selectbox(key="cb_example_0_4_label").select("economy")
    at.button(key="cb_example_0_1_remove").click()
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    _save(at).click()
    at.run()
    with store_of_home().session() as s:
        user = local_user(s)
        pid = projects.list_projects(s, user)[0].id
        saved = projects.latest_codebook(s, user, pid).content["examples"]
    assert [x["label"] for x in saved] == ["health care", "immigration", "other", "economy"]
    assert saved[-1]["text"] == "Interest rates rise again."

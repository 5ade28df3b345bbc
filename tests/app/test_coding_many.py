"""Blind coding with a 27-label codebook in AppTest: keys only on the first nine buttons (and
the codebook panel numbers only those), every label a button with its definition as the
tooltip, a label coded through the type-ahead search, the search empty again afterwards."""

from __future__ import annotations

from distill_core.codebook import Codebook, Label
from distill_core.study import projects, validation
from tests.app.conftest import open_page
from tests.app.test_pages import store_of_home
from tests.fakes import local_user
from tests.many_labels import LABELS_27


def _codebook_of_27() -> None:
    with store_of_home().session() as s:
        user = local_user(s)
        pid = projects.list_projects(s, user)[0].id
        labels = [Label(n, f"Stories mainly about {n}.") for n in LABELS_27]
        projects.save_codebook(s, user, pid, Codebook("Major topics", "Pick one.", labels))


def test_27_labels_nine_keys_a_search_and_full_definitions(home) -> None:
    at = open_page()
    _codebook_of_27()
    at.switch_page("steps/validate.py")
    at.run()
    at.text_input(key="coder_name").input("cora")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    buttons = {b.key.removeprefix("code_"): b for b in at.button if b.key.startswith("code_")}
    assert [n for n in LABELS_27 if buttons[n].proto.shortcut] == LABELS_27[:9]
    assert [buttons[n].proto.shortcut for n in LABELS_27[:9]] == [str(k) for k in range(1, 10)]
    assert buttons[LABELS_27[20]].help == f"Stories mainly about {LABELS_27[20]}."
    panel = next(m.value for m in at.markdown if "Stories mainly about other" in m.value)
    assert panel.startswith(f"`1` **{LABELS_27[0]}**")
    assert f"`9` **{LABELS_27[8]}**" in panel
    assert f"\n\n**{LABELS_27[9]}** —" in panel and "`10`" not in panel

    search = next(s for s in at.selectbox if s.label.startswith("Find a label"))
    assert search.options == LABELS_27 and search.value is None
    search.select(LABELS_27[25]).run()
    assert not at.exception, [e.value for e in at.exception]
    with store_of_home().session() as s:
        user = local_user(s)
        pid = projects.list_projects(s, user)[0].id
        codes = validation.codes_frame(s, user, pid)
    assert codes[codes["coder"] == "cora"]["label"].tolist() == [LABELS_27[25]]
    assert next(s for s in at.selectbox if s.label.startswith("Find a label")).value is None

"""Faults on the pages: a CSV value past Python's csv limit reads, a ZIP-bomb workbook and an
over-long value are one sentence each, never a traceback (marker faults)."""

from __future__ import annotations

import pytest

from distill_core.config import UploadLimits
from distill_core.corpus import read_table
from tests.app.conftest import new_project_page, open_page, texts
from tests.unit.corpus.test_limits import _bomb

pytestmark = pytest.mark.faults


def _data_page(name: str):
    return new_project_page(name, "steps/data.py")


def test_a_value_longer_than_pythons_csv_limit_reads_on_the_data_page(home) -> None:
    at = _data_page("Long cell")
    long_text = "word " * 40_000  # 200,000 characters: csv's default limit is 131,072
    data = f'id,text\n1,"{long_text}"\n2,short\n'.encode()
    at.file_uploader[0].set_value(("long.csv", data, "text/csv"))
    at.run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert "2 rows" in texts(at)


def test_a_zip_bomb_workbook_is_one_sentence_on_the_data_page(home, monkeypatch) -> None:
    monkeypatch.setitem(read_table.__kwdefaults__, "limits", UploadLimits(max_xlsx_unpacked_mb=1))
    at = _data_page("Bomb")
    at.file_uploader[0].set_value(("bomb.xlsx", _bomb(30_000), "application/octet-stream"))
    at.run()
    assert not at.exception
    (error,) = at.error
    assert "unpacks to" in error.value and "the limit is 1 MB" in error.value
    assert "Traceback" not in texts(at)


def test_a_project_name_too_long_for_the_store_is_one_sentence(home) -> None:
    at = open_page()
    next(t for t in at.text_input if t.label == "Name").input("P" * 201)
    next(b for b in at.button if b.label == "Create project").click()
    at.run()
    assert not at.exception
    shown = [e.value for e in at.error]
    assert any("A project name has 201 characters" in e for e in shown), shown
    assert not any("reference" in e for e in shown)

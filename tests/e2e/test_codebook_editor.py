"""In Chromium, the codebook editor at machine speed: text typed with no delay into several
label rows while the app reruns (right after a rerun, and each Tab starting another) lands
in its own row and field, rows added and removed move no other row's text, and Save stays
off, with the reason shown, while a label has no definition."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from distill_core.store import Store
from distill_core.study import projects
from tests.e2e.conftest import app_page, coding_app, idle
from tests.fakes import local_user

pytestmark = pytest.mark.e2e

LABELS = {
    "economy": "Taxes, jobs, growth.",
    "health": "Hospitals, doctors, insurance.",
    "crime": "Police, courts, prisons.",
    "education": "Schools and universities.",
}


@pytest.fixture(scope="module")
def editor_app(tmp_path_factory):
    home = tmp_path_factory.mktemp("codebook-editor") / "home"
    texts = ["Taxes rise next spring", "The new hospital opens", "Police arrest two men"]
    with coding_app(home, "Editor study", texts, LABELS, seed=1) as server:
        yield server


def _name(page: Page, i: int):
    return page.get_by_role("textbox", name=f"Name of label {i}", exact=True)


def _definition(page: Page, i: int):
    return page.get_by_role("textbox", name=f"Definition of label {i}", exact=True)


def _type_into(page: Page, box, text: str) -> None:
    """Replace a field's text at machine speed: no delay between keys."""
    box.click()
    page.keyboard.press("ControlOrMeta+A")
    page.keyboard.type(text, delay=0)


def test_fast_typing_into_label_rows_never_loses_or_shifts_a_row(browser, editor_app) -> None:
    with app_page(browser, editor_app, "codebook-editor") as page:
        page.goto(f"{editor_app.url}/codebook")
        idle(page)
        expect(_name(page, 4)).to_have_value("education")
        save = page.get_by_role("button", name="Save as a new version")

        # A rerun starts (the name is committed by Tab), and typing goes on at once, row after
        # row, every Tab committing a field and starting another rerun.
        _type_into(page, page.get_by_role("textbox", name="Name", exact=True), "Editor study 2")
        page.keyboard.press("Tab")
        typed = {}
        for i, (name, definition) in enumerate(
            [
                ("macroeconomics", "The economy as a whole: taxes, budgets, growth."),
                ("health care", "Hospitals, doctors, nurses and insurance."),
                ("law and crime", "Police, courts, prisons and sentences."),
            ],
            start=1,
        ):
            _type_into(page, _name(page, i), name)
            page.keyboard.press("Tab")  # into this row's definition
            page.keyboard.press("ControlOrMeta+A")
            page.keyboard.type(definition, delay=0)
            page.keyboard.press("Tab")
            typed[i] = (name, definition)
        idle(page)

        # A new row, typed into as soon as it appears, and a row removed above it.
        page.get_by_role("button", name="Add a label").click()
        idle(page)
        _type_into(page, _name(page, 5), "environment")
        page.keyboard.press("Tab")
        page.keyboard.type("Climate, pollution, nature.", delay=0)
        page.keyboard.press("Tab")
        page.get_by_role("button", name="Add a label").click()
        idle(page)

        # Row 6 has a name and no definition: Save is off and the page says why.
        _type_into(page, _name(page, 6), "energy")
        page.keyboard.press("Tab")
        idle(page)
        expect(page.get_by_text("Label 6 ('energy') has no definition.")).to_be_visible()
        expect(
            page.get_by_text("Saving is off until the problems above are fixed.")
        ).to_be_visible()
        expect(save).to_be_disabled()

        # Removing row 4 (education) moves no other row's text.
        remove = page.get_by_role("button", name="delete icon")  # one a row, in row order
        expect(remove).to_have_count(6)
        remove.nth(3).click()
        idle(page)
        expect(_name(page, 5)).to_have_value("energy")
        _type_into(page, _definition(page, 5), "Oil, gas, power plants.")
        page.keyboard.press("Tab")
        idle(page)
        expect(save).to_be_enabled()

        want = [
            *typed.values(),
            ("environment", "Climate, pollution, nature."),
            ("energy", "Oil, gas, power plants."),
        ]
        for i, (name, definition) in enumerate(want, start=1):
            expect(_name(page, i)).to_have_value(name)
            expect(_definition(page, i)).to_have_value(definition)

        # An example, typed as fast, its label picked by typing in its list.
        page.get_by_role("button", name="Add an example").click()
        idle(page)
        _type_into(
            page,
            page.get_by_role("textbox", name="Text of example 1"),
            "Parliament passes the budget.",
        )
        page.keyboard.press("Tab")  # into the example's label
        page.keyboard.type("macro", delay=0)
        page.keyboard.press("Enter")
        idle(page)
        expect(save).to_be_enabled()

        save.click()
        expect(page.get_by_text("Editing from version 2")).to_be_visible()
        idle(page)
        store = Store(editor_app.database_url)
        with store.session() as s:
            latest = projects.latest_codebook(s, local_user(s), editor_app.project_id)
        store.dispose()
        assert latest.version == 2
        assert latest.content["name"] == "Editor study 2"
        assert [(x["name"], x["definition"]) for x in latest.content["labels"]] == want
        assert latest.content["examples"] == [
            {"text": "Parliament passes the budget.", "label": "macroeconomics"}
        ]
        assert page.locator('[data-testid="stException"]').count() == 0

"""In Chromium, blind coding with a 27-label codebook (the Comparative Agendas Project's size):
a coder codes 25 texts with the keyboard alone — keys 1–9 for the first nine labels, the
type-ahead search (a letter typed anywhere, Enter) for the rest —, every name is shown in full,
only the nine labels with a key show a number, the highlighted label's definition is shown
while searching, and the coder's name survives a reload."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from distill_core.store import Store
from distill_core.study import validation
from tests.e2e.conftest import ARTIFACTS, app_page, coding_app, idle, shown_doc_id
from tests.fakes import local_user
from tests.many_labels import LABELS_27

pytestmark = pytest.mark.e2e

LABELS = LABELS_27
N_TEXTS = 25
CODER = "cora"


def _definition(name: str) -> str:
    return f"Headlines whose main subject is {name}; a passing mention is not enough."


@pytest.fixture(scope="module")
def big_app(tmp_path_factory):
    """An app whose local user owns one project: 50 headlines, a 27-label codebook, a sample
    of all 50 with 25 development texts."""
    texts = [f"Headline number {i} of the day" for i in range(2 * N_TEXTS)]
    labels = {n: _definition(n) for n in LABELS}
    home = tmp_path_factory.mktemp("coding27") / "home"
    with coding_app(home, "Agendas study", texts, labels, seed=3) as server:
        yield server


def _button(page: Page, name: str):
    """A label's button (its accessible name is the label and, where it has one, its key)."""
    return page.get_by_role("button", name=re.compile(rf"^{re.escape(name)}( Shortcut \d)?$"))


def _truncated(page: Page, name: str) -> bool:
    """Whether the label button's text is cut (wider than the button shows)."""
    return _button(page, name).evaluate(
        """(b) => [b, ...b.querySelectorAll('*')].some(
            (el) => el.scrollWidth > el.clientWidth + 1 && getComputedStyle(el).overflow !== 'visible'
              || getComputedStyle(el).textOverflow === 'ellipsis' && el.scrollWidth > el.clientWidth + 1)"""
    )


def test_a_coder_codes_25_texts_of_a_27_label_codebook_with_the_keyboard(browser, big_app) -> None:
    store = Store(big_app.database_url)
    with app_page(browser, big_app, "coding-27") as page:
        try:
            page.goto(f"{big_app.url}/validate")
            idle(page)
            page.get_by_role("textbox", name="Your name as a coder").fill(CODER)
            page.keyboard.press("Enter")
            idle(page)
            expect(page.get_by_text(f"0 of {N_TEXTS} coded")).to_be_visible()

            # The coder's name is in the address: a reload codes on as the same coder.
            assert f"coder_name={CODER}" in page.url
            page.reload()
            idle(page)
            expect(page.get_by_role("textbox", name="Your name as a coder")).to_have_value(CODER)
            expect(page.get_by_text(f"0 of {N_TEXTS} coded")).to_be_visible()

            # Full names, a number only on the nine labels that have a key.
            for name in LABELS:
                assert not _truncated(page, name), name
            panel = page.get_by_text(re.compile(r"— Headlines whose main subject"))
            keyed = [t for t in panel.all_inner_texts() if re.match(r"^\d+ ", t.strip())]
            assert len(keyed) == 9, keyed
            shown = [_button(page, name).inner_text().split("\n")[-1].strip() for name in LABELS]
            assert shown[:9] == [str(k) for k in range(1, 10)], shown
            assert shown[9:] == LABELS[9:], shown  # no number where there is no key

            # 25 texts with the keyboard alone (the focus is on no field after the reload).
            expected: dict[str, str] = {}
            for i in range(N_TEXTS):
                doc_id = shown_doc_id(page, N_TEXTS)
                label = LABELS[(i * 2 + 1) % len(LABELS)] if i else LABELS[26]
                expected[doc_id] = label
                index = LABELS.index(label)
                if index < 9:
                    page.keyboard.press(str(index + 1))
                else:
                    page.keyboard.type(label)
                    expect(page.locator(".distill-label-definition")).to_have_text(
                        f"{label}: {_definition(label)}"
                    )
                    if i == 0:  # what a coder sees while searching
                        ARTIFACTS.mkdir(exist_ok=True)
                        page.screenshot(
                            path=str(ARTIFACTS / "coding-27-search.png"), full_page=True
                        )
                    page.keyboard.press("Enter")
                expect(page.get_by_text(f"{i + 1} of {N_TEXTS} coded")).to_be_visible()
                idle(page)
            expect(page.get_by_text(f"All {N_TEXTS} texts are coded")).to_be_visible()
            assert page.locator('[data-testid="stException"]').count() == 0

            # A note, then Esc hands the keys back: the last text recoded with its note.
            last = shown_doc_id(page, N_TEXTS)
            page.get_by_role("textbox", name="Unsure because… (optional)").click()
            page.keyboard.type("two topics at once")
            page.keyboard.press("Escape")
            idle(page)
            page.keyboard.press("1")
            expect(page.get_by_text(f"Your code: {LABELS[0]}")).to_be_visible()
            idle(page)
            expected[last] = LABELS[0]

            # Another page and back: still the same coder.
            page.get_by_role("link", name="Codebook").click()
            idle(page)
            page.get_by_role("link", name="Validate").click()
            idle(page)
            expect(page.get_by_role("textbox", name="Your name as a coder")).to_have_value(CODER)
            expect(page.get_by_text(f"All {N_TEXTS} texts are coded")).to_be_visible()

            with store.session() as s:
                codes = validation.codes_frame(s, local_user(s), big_app.project_id)
            mine = codes[codes["coder"] == CODER]
            assert dict(zip(mine["doc_id"], mine["label"], strict=True)) == expected
            assert mine.set_index("doc_id").loc[last, "note"] == "two topics at once"
            assert len(set(expected.values())) > 9  # labels past the ninth were reached
        finally:
            store.dispose()

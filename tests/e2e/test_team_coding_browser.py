"""In Chromium, team coding from start to gold: the expert assigns a small sample to two named
coders (every text to both), each goes through their own queue with the keyboard (a note,
back, skip), the team's progress fills up, and the expert adjudicates a disagreement with a
reason, which becomes the text's gold label."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from distill_core.store import Store
from distill_core.study import adjudication, assignments, validation
from tests.e2e.conftest import app_page, choose_tab, coding_app, idle, shown_doc_id
from tests.fakes import local_user

pytestmark = pytest.mark.e2e

LABELS = ["economy", "health", "crime"]
TEXTS = [
    "Taxes rise next spring",
    "The new hospital opens",
    "Police arrest two men",
    "Jobs report beats hopes",
    "Flu cases fall sharply",
    "Court jails a burglar",
]


@pytest.fixture(scope="module")
def team_app(tmp_path_factory):
    """An app whose local user owns a small project: six texts, a codebook, a sample of all."""
    labels = {n: f"Texts about {n}." for n in LABELS}
    home = tmp_path_factory.mktemp("team") / "home"
    with coding_app(home, "Team study", TEXTS, labels, seed=11) as server:
        yield server


def _code_as(page: Page, name: str) -> None:
    box = page.get_by_role("textbox", name="Your name as a coder")
    box.fill(name)
    page.keyboard.press("Enter")
    idle(page)
    expect(page.get_by_text("0 of 6 coded")).to_be_visible()
    expect(page.get_by_text(re.compile("Your queue: the 6 texts assigned to you"))).to_be_visible()
    page.locator("h1").first.click()  # the focus out of the name field


def test_a_coder_goes_through_a_queue_and_an_expert_adjudicates(browser, team_app) -> None:
    pid = team_app.project_id
    store = Store(team_app.database_url)
    with app_page(browser, team_app, "team-coding") as page:
        try:
            page.goto(f"{team_app.url}/validate")
            idle(page)
            expect(page.get_by_role("heading", name="Validate")).to_be_visible()

            # The expert's plan: every text to both coders, shown before it is stored.
            choose_tab(page, "Assign")
            page.get_by_role("textbox", name="Coders (names, separated by commas)").fill("ann, ben")
            page.keyboard.press("Enter")
            idle(page)
            page.get_by_text("Every text to k coders").click()
            idle(page)
            expect(
                page.get_by_text(re.compile(r"6 texts coded by 2 coders for agreement"))
            ).to_be_visible()
            page.get_by_role("button", name="Assign 6 texts").click()
            idle(page)

            # ann's queue: keys, a note, back and skip.
            choose_tab(page, "Code")
            _code_as(page, "ann")
            with store.session() as s:
                sample = validation.current_sample(s, local_user(s), pid)
                order = [
                    i.doc_id
                    for i in assignments.coding_queue(s, local_user(s), pid, sample, "ann").items
                ]
            assert shown_doc_id(page, 6) == order[0]  # ann's own order
            page.keyboard.press("1")
            expect(page.get_by_text("1 of 6 coded")).to_be_visible()
            idle(page)
            assert shown_doc_id(page, 6) == order[1]
            page.get_by_role("textbox", name="Unsure because… (optional)").fill(
                "two topics at once"
            )
            page.get_by_role("button", name="health").click()  # the note goes with it
            expect(page.get_by_text("2 of 6 coded")).to_be_visible()
            idle(page)
            page.keyboard.press("ArrowLeft")  # back to the text just coded
            idle(page)
            assert shown_doc_id(page, 6) == order[1]
            expect(page.get_by_text(re.compile(r"Your code: health"))).to_be_visible()
            page.keyboard.press("ArrowRight")  # skip on
            idle(page)
            assert shown_doc_id(page, 6) == order[2]
            for i in range(2, 6):
                page.keyboard.press("1")
                expect(page.get_by_text(f"{i + 1} of 6 coded")).to_be_visible()
                idle(page)
            expect(page.get_by_text("All 6 texts are coded")).to_be_visible()

            # ben codes all six "economy": the two disagree on ann's second text only.
            _code_as(page, "ben")
            for i in range(6):
                page.keyboard.press("1")
                expect(page.get_by_text(f"{i + 1} of 6 coded")).to_be_visible()
                idle(page)

            # The team's progress: every text has both its codes.
            choose_tab(page, "Assign")
            complete = page.locator('[data-testid="stMetric"]').filter(
                has_text="Texts with all their codes"
            )
            expect(complete).to_contain_text("6 of 6")

            # The expert settles the disagreement, with a reason.
            choose_tab(page, "Adjudicate")
            disputes = page.get_by_text(
                re.compile(r"1 text on which coders disagree \(1 tie, 0 adj")
            )
            expect(disputes).to_be_visible()
            expect(page.get_by_text("two topics at once").first).to_be_visible()  # ann's note
            expect(page.get_by_text("Humans vs humans")).to_be_visible()
            form = page.locator('[data-testid="stForm"]')
            form.get_by_text("health", exact=True).click()
            form.get_by_role("textbox", name="Reason (optional)").fill("a hospital is the subject")
            form.get_by_role("button", name="Save the gold code").click()
            idle(page)
            expect(page.get_by_text(re.compile(r"\(1 tie, 1 adjudicated\)"))).to_be_visible()
            assert page.locator('[data-testid="stException"]').count() == 0

            with store.session() as s:
                user = local_user(s)
                codes = validation.codes_frame(s, user, pid)
                settled = adjudication.disputes(s, user, pid, sample)
                gold = validation.gold_rule(codes)
            ann = codes[codes["coder"] == "ann"].set_index("doc_id")
            assert len(ann) == 6 and ann.loc[order[1], "note"] == "two topics at once"
            assert len(codes[codes["coder"] == "ben"]) == 6
            assert [d.doc_id for d in settled] == [order[1]]
            assert settled[0].adjudicated == "health"
            assert settled[0].reason == "a hospital is the subject"
            assert gold.labels[order[1]] == "health" and gold.source[order[1]] == "adjudicated"
            assert gold.ties == []
        finally:
            store.dispose()

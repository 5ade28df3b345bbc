"""The app in a real browser: every page on a fresh install, upload, a broken file, labelling
with the offline baseline and the loopback LLM (surviving a reload), blind coding by keyboard."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import ARTIFACTS, choose_tab, fresh_app, idle
from tests.fakes import local_user

pytestmark = pytest.mark.e2e

# url paths; the Projects page is the default page, at the root.
PAGES = ["", "data", "codebook", "llm_labels", "validate", "finetune", "results", "export"]


def open_page(page: Page, app, path: str) -> None:
    """Open a page by its URL (a new session: it opens the user's last project)."""
    page.goto(f"{app.url}/{path}")
    idle(page)
    expect(page.locator("h1").first).to_be_visible()


def no_exception(page: Page) -> None:
    assert page.locator('[data-testid="stException"]').count() == 0, page.locator(
        '[data-testid="stException"]'
    ).first.inner_text()


def new_project(page: Page, app, name: str) -> None:
    open_page(page, app, "")
    page.get_by_role("textbox", name="Name").fill(name)
    page.get_by_role("button", name="Create project").click()
    idle(page)
    expect(page.get_by_text(f"Current project: {name}")).to_be_visible()


def test_every_page_renders_on_a_fresh_install_with_the_demo(page: Page, app) -> None:
    (ARTIFACTS / "pages").mkdir(parents=True, exist_ok=True)
    _choose_demo(page, app)  # a no-op on a fresh install; other tests may have opened another
    for path in PAGES:
        open_page(page, app, path)
        no_exception(page)
        expect(project_picker(page)).to_have_value("Demo: policy topics in news")
        page.screenshot(path=str(ARTIFACTS / "pages" / f"{path or 'projects'}.png"))
    open_page(page, app, "data")
    expect(page.get_by_text("Corpus: corpus.csv")).to_be_visible()


def test_a_csv_uploaded_through_the_file_input_becomes_a_corpus(page: Page, app, tmp_path) -> None:
    new_project(page, app, "Browser upload")
    open_page(page, app, "data")
    csv = tmp_path / "tweets.csv"
    csv.write_text(
        "id;tweet\n1;Taxes go up again\n2;New hospital opens\n3;Schools close early\n",
        encoding="utf-8",
    )
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(csv))
    idle(page)
    expect(page.get_by_text("What was found")).to_be_visible()
    page.get_by_role("button", name="Save as the project's corpus").click()
    idle(page)
    expect(page.get_by_text("Corpus: tweets.csv")).to_be_visible()
    no_exception(page)

    from distill_core.store import Store
    from distill_core.study import projects

    store = Store(app.database_url)
    with store.session() as s:
        user = projects.ensure_user(s)
        pid = next(p.id for p in projects.list_projects(s, user) if p.name == "Browser upload")
        corpus = projects.get_corpus(s, local_user(s), pid)
        assert corpus.row_count == 3 and corpus.text_column == "tweet"
        assert list(projects.load_documents(s, local_user(s), corpus.project_id)["text"]) == [
            "Taxes go up again",
            "New hospital opens",
            "Schools close early",
        ]
    store.dispose()


def test_a_broken_file_shows_one_sentence_not_a_traceback(page: Page, app, tmp_path) -> None:
    new_project(page, app, "Browser broken file")
    open_page(page, app, "data")
    bad = tmp_path / "broken.csv"
    bad.write_bytes(b'id,text\n1,"an open quote\n2,next row\n3,last row\n')
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(bad))
    idle(page)
    error = page.locator('[data-testid="stAlertContentError"]')
    expect(error).to_have_count(1)
    expect(error).to_contain_text(re.compile("quote", re.I))
    no_exception(page)
    expect(page.get_by_role("button", name="Save as the project's corpus")).to_have_count(0)


def project_picker(page: Page):
    return page.locator('[data-testid="stSidebar"]').get_by_role("combobox", name="Project")


def use_endpoint_for_the_whole_corpus(page: Page, app, base_url: str, model: str) -> None:
    """On the LLM labels page: an OpenAI-compatible endpoint, a successful connection test,
    and the whole corpus chosen (the Start button is the caller's)."""
    open_page(page, app, "llm_labels")
    page.get_by_role("textbox", name="Base URL").fill(base_url)
    page.keyboard.press("Enter")
    idle(page)
    page.get_by_role("textbox", name="Model").fill(model)
    page.keyboard.press("Enter")
    idle(page)
    page.get_by_role("button", name="Test connection").click()
    idle(page)
    expect(page.locator('[data-testid="stAlertContentSuccess"]').first).to_be_visible(
        timeout=30_000
    )
    page.get_by_text("The whole corpus").click()
    idle(page)


def _choose_demo(page: Page, app) -> None:
    open_page(page, app, "")
    picker = project_picker(page)
    if picker.input_value() != "Demo: policy topics in news":
        picker.click()
        page.get_by_role("option", name="Demo: policy topics in news").click()
        idle(page)
    expect(picker).to_have_value("Demo: policy topics in news")


def test_label_the_demo_offline_and_with_the_loopback_llm_across_a_reload(
    page: Page, app, llm_server
) -> None:
    _choose_demo(page, app)
    open_page(page, app, "llm_labels")
    # The offline baseline, on a subset of 40 texts.
    page.get_by_text("Local zero-shot baseline (offline; weak, not an LLM)").click()
    idle(page)
    page.get_by_text("A random subset").click()
    idle(page)
    page.get_by_role("spinbutton", name="How many").fill("40")
    page.keyboard.press("Enter")
    idle(page)
    page.get_by_role("button", name="Start labelling").click()
    expect(page.get_by_text(re.compile(r"Job 1 \("))).to_be_visible(timeout=60_000)
    page.reload()  # the job lives on in the worker; the page finds it again
    idle(page)
    expect(page.get_by_text(re.compile(r"Job \d+ \(done\): 40 labelled"))).to_be_visible(
        timeout=120_000
    )
    no_exception(page)

    # The loopback OpenAI-compatible endpoint, on the whole corpus.
    use_endpoint_for_the_whole_corpus(page, app, llm_server.base_url, "loopback-model")
    llm_server.reset()
    page.get_by_role("button", name="Start labelling").click()
    expect(page.get_by_text(re.compile(r"Job 2 \("))).to_be_visible(timeout=60_000)
    page.reload()
    idle(page)
    expect(page.get_by_text(re.compile(r"\(done\): 359 labelled"))).to_be_visible(timeout=120_000)
    stats = llm_server.stats()
    assert stats["requests_per_text"] == 1.0 and stats["distinct_texts"] == 357
    expect(page.get_by_role("heading", name="Results")).to_be_visible()
    no_exception(page)


def test_code_ten_demo_texts_blind_with_the_keyboard(page: Page, app) -> None:
    from distill_core.store import Store
    from distill_core.study import projects, runs
    from tests.fakes import label_sample

    # First open the app (on a fresh install it creates the database and the demo project)
    # and make the demo the current project: other tests may have opened another.
    _choose_demo(page, app)
    store = Store(app.database_url)
    with store.session() as s:
        demo = next(p for p in projects.list_projects(s, projects.ensure_user(s)) if p.is_demo)
        has_run = bool(runs.project_runs(s, local_user(s), demo.id, with_results=True))
    if not has_run:  # this test does not depend on the labelling test having run first
        label_sample(store, demo.id)
    store.dispose()
    open_page(page, app, "validate")
    page.get_by_role("textbox", name="Your name as a coder").fill("browser coder")
    page.keyboard.press("Enter")
    idle(page)
    expect(page.get_by_text("0 of 60 coded")).to_be_visible()
    # Blind: no LLM label is shown before the coder submits.
    expect(page.get_by_text("The LLM said")).to_have_count(0)
    page.locator("h1").first.click()  # move the focus out of the name field
    for i in range(10):
        page.keyboard.press(str(1 + i % 3))
        expect(page.get_by_text(f"{i + 1} of 60 coded")).to_be_visible()
        idle(page)
    # After submitting, the previous text shows the coder's code and the LLM's label.
    expect(page.get_by_text(re.compile("Previous text .* you coded"))).to_be_visible()
    choose_tab(page, "Agreement")
    expect(page.get_by_role("heading", name="Development part")).to_be_visible()
    macro = page.locator('[data-testid="stMetric"]').filter(has_text="Macro F1").first
    expect(macro).to_be_visible()
    first_value = macro.locator('[data-testid="stMetricValue"]').inner_text()
    # Agreement updates when codes change: switch the gold labels to the browser coder's own.
    page.get_by_role("combobox", name="Human labels").click()
    page.get_by_role("option", name="browser coder").click()
    idle(page)
    expect(page.get_by_role("heading", name="Development part")).to_be_visible()
    scored = page.get_by_text(re.compile(r"Scored on \d+ texts")).first
    expect(scored).to_be_visible()
    n_dev = int(re.search(r"Scored on (\d+)", scored.inner_text()).group(1))
    assert 1 <= n_dev <= 10  # only the texts this coder coded in the development part
    assert re.match(r"-?\d\.\d{3}", first_value)
    no_exception(page)


def test_a_page_url_opened_first_on_a_fresh_server_gets_the_apps_menu(browser, tmp_path) -> None:
    """The first request a fresh server gets is a page's URL (a bookmark, a shared link): the
    app's navigation serves it, with its menu, not a bare file of a legacy pages/ folder."""
    with fresh_app(tmp_path / "home") as server:
        page = browser.new_page()
        try:
            page.goto(f"{server.url}/validate")
            expect(page.get_by_role("heading", name="Validate")).to_be_visible(timeout=60_000)
            links = page.locator('[data-testid="stSidebarNavLink"]').all_inner_texts()
            assert any("LLM labels" in link for link in links), links
            assert not any(link.strip() in ("app", "llm labels") for link in links), links
        finally:
            page.close()

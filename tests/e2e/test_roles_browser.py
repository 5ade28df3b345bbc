"""In Chromium, as a coder of someone else's project: the menu holds Projects and Validate only,
every other page's address answers "Page not found", and coding shows no LLM label, no other
coder's code, no agreement figure and no download anywhere."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from distill_core.store import Store
from distill_core.study import demo, projects
from tests.e2e.conftest import ARTIFACTS, fresh_app, idle
from tests.fakes import label_sample

pytestmark = pytest.mark.e2e

HIDDEN = ["data", "codebook", "llm_labels", "finetune", "results", "export"]


@pytest.fixture(scope="module")
def coder_app(tmp_path_factory):
    """An app whose local user is a coder in the PI's demo project (which has LLM labels)."""
    home = tmp_path_factory.mktemp("roles") / "home"
    with fresh_app(home) as server:
        store = Store(server.database_url)
        store.migrate()
        with store.session() as s:
            pi = projects.ensure_user(s, "pi")
            pid = demo.ensure_demo_project(s, pi).id
            local = projects.ensure_user(s)
            for p in projects.list_projects(s, local):  # the local user's own demo goes
                projects.delete_project(s, local, p.id)
            projects.set_member(s, pi, pid, projects.LOCAL_USERNAME, "coder")
        label_sample(store, pid, user="pi")
        store.dispose()
        yield server


def test_a_coder_sees_only_the_code_view_page_by_page(browser, coder_app) -> None:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    from tests.e2e.conftest import RUN_COUNTER_JS

    context.add_init_script(RUN_COUNTER_JS)
    page = context.new_page()
    try:
        page.goto(coder_app.url)
        idle(page)
        nav = page.get_by_test_id("stSidebarNav")
        expect(nav).to_contain_text("Validate")
        links = [t.split()[-1] for t in nav.locator("a").all_inner_texts() if t.strip()]
        assert links == ["Projects", "Validate"], links  # (each after its icon's name)
        for path in HIDDEN:
            page.goto(f"{coder_app.url}/{path}")
            idle(page)
            body = page.inner_text("body")
            assert "Page not found" in body or "does not include" in body, (path, body[:300])
        page.goto(f"{coder_app.url}/validate")
        idle(page)
        page.get_by_role("textbox", name="Your name as a coder").fill("local")
        page.keyboard.press("Enter")
        idle(page)
        expect(page.get_by_text("0 of 60 coded")).to_be_visible()
        page.get_by_role("button", name="economy").first.click()
        idle(page)
        expect(page.get_by_text("1 of 60 coded")).to_be_visible()
        page.get_by_role("button", name="Back").click()
        idle(page)
        body = page.inner_text("body")
        assert "Your code: economy" in body
        for leak in ("LLM said", "expert_a", "expert_b", "Agreement", "Macro F1", "Download"):
            assert leak not in body, leak
        assert page.get_by_role("tab").count() == 0
    except Exception:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "coder-view.png"), full_page=True)
        raise
    finally:
        context.close()

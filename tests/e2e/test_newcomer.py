"""The newcomer's whole path in a real browser, on a fresh DISTILL_HOME: the demo project, its
codebook, LLM labels from the loopback endpoint, blind coding, agreement, a tiny fine-tune with
the fair comparison, corpus labelling, Results, and the labelled CSV downloaded and read back.

With DISTILL_SCREENSHOTS=1 the test also saves the README's tour images in docs/screenshots/
(1280×800 viewport, PNG reduced to a 256-colour palette)."""

from __future__ import annotations

import io
import os
import re

import pandas as pd
import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import REPO, choose_tab, fresh_app, idle
from tests.e2e.test_browser import (
    no_exception,
    open_page,
    project_picker,
    use_endpoint_for_the_whole_corpus,
)
from tests.fakes import local_user

pytestmark = pytest.mark.e2e

DEMO = "Demo: policy topics in news"
SCREENSHOTS = REPO / "docs" / "screenshots"
CODER = "newcomer"
N_CODED = 8
#: Keyword rules of the stand-in LLM: the first keyword found in a text names its label (see
#: tests/llm_server.py), so its labels are right often enough for a student to learn something.
TOPIC_KEYWORDS = {
    "health": "hospital doctor nurse vaccin patient medic ivf blood hepatitis vape sugar",
    "education": "school universit teacher pupil student",
    "immigration": "asylum migra refugee visa undocumented reception deport permit",
    "defense": "army military soldier navy nato defence submarine drone brigade veteran",
    "environment": "climate emission pollut forest wildlife pesticid glacier warming plastic "
    "conservation diesel nitrogen",
    "crime": "police court prison murder theft fraud arrest counterfeit speed camera",
    "economy": "tax inflation budget bank unemploy wage pension trade gdp price mortgage growth "
    "consumer profit retirement",
}
KEYWORDS = {word: label for label, words in TOPIC_KEYWORDS.items() for word in words.split()}


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    """The app on its own fresh DISTILL_HOME (not the session's shared one): Job 1 is ours."""
    with fresh_app(tmp_path_factory.mktemp("newcomer") / "home") as server:
        yield server


@pytest.fixture(scope="module")
def teacher():
    from tests.llm_server import LoopbackLLM, ServerConfig

    with LoopbackLLM(ServerConfig(latency=0.01, keywords=KEYWORDS)) as srv:
        yield srv


def shot(page: Page, name: str, top=None) -> None:
    """With DISTILL_SCREENSHOTS=1: the viewport, scrolled so that ``top`` (a locator) is at its
    top, after every chart in view has drawn, saved as docs/screenshots/<name>.png."""
    if os.environ.get("DISTILL_SCREENSHOTS") != "1":
        return
    from PIL import Image

    page.wait_for_function(  # the whole page delivered: nothing below ``top`` still to come
        """() => document.querySelector('[data-testid="stApp"]')
                 .getAttribute('data-test-script-state') === 'notRunning'"""
    )
    if top is not None:  # at the top, less a margin: scroll the nearest scrolling ancestor back
        top.evaluate(
            """e => { e.scrollIntoView({block: 'start'});
                      let p = e.parentElement;
                      while (p && !(p.scrollHeight > p.clientHeight
                             && /auto|scroll/.test(getComputedStyle(p).overflowY))) {
                        p = p.parentElement;
                      }
                      if (p) p.scrollTop -= 24; }"""
        )
    page.evaluate("() => document.activeElement && document.activeElement.blur()")
    page.wait_for_function(
        """() => [...document.querySelectorAll('[data-testid="stPlotlyChart"]')]
                 .every(c => c.querySelector('.main-svg'))"""
    )
    page.mouse.move(0, 0)  # no hover tooltip
    image = Image.open(io.BytesIO(page.screenshot())).convert("RGB")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    image.quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(
        SCREENSHOTS / f"{name}.png", optimize=True
    )


def heading(page: Page, name: str):
    return page.get_by_role("heading", name=name).first


def expert_codes() -> dict[str, str]:
    """expert_a's code for each demo text of the validation sample."""
    from distill_core.study.demo import DEMO_DIR

    codes = pd.read_csv(DEMO_DIR / "human_codes.csv", dtype=str)
    codes = codes[codes["coder"] == "expert_a"]
    return dict(zip(codes["id"], codes["label"], strict=True))


def test_the_newcomer_path_from_the_demo_to_the_labelled_csv(
    page: Page, app, teacher, tmp_path
) -> None:
    from distill_core.store import Store
    from distill_core.study import projects, students
    from tests.llm_server import choose_label

    page.set_viewport_size({"width": 1280, "height": 800})

    # 1. Projects: a fresh install opens the demo project.
    open_page(page, app, "")
    expect(page.get_by_text(f"Current project: {DEMO}")).to_be_visible()
    expect(project_picker(page)).to_have_value(DEMO)
    no_exception(page)
    shot(page, "01-projects")

    # 2. Codebook: the demo's eight labels, and the exact prompt the LLM will get.
    open_page(page, app, "codebook")
    expect(page.get_by_text("Editing from version 1")).to_be_visible()
    shot(page, "02-codebook")
    choose_tab(page, "Prompt preview")
    expect(page.get_by_text(re.compile(r"\d messages, sent exactly like this"))).to_be_visible()
    expect(page.get_by_text(re.compile(r"- immigration: ")).first).to_be_visible()
    no_exception(page)

    # 3. LLM labels: the whole corpus, from the loopback OpenAI-compatible endpoint.
    use_endpoint_for_the_whole_corpus(page, app, teacher.base_url, "loopback-llm")
    page.get_by_role("button", name="Start labelling").click()
    expect(page.get_by_text(re.compile(r"Job 1 \(done\): 359 labelled"))).to_be_visible(
        timeout=120_000
    )
    expect(heading(page, "Results")).to_be_visible()
    no_exception(page)
    shot(page, "03-llm-labels", top=page.get_by_text(re.compile(r"^Job 1 \(done\)")))

    # 4. Blind coding: the newcomer codes a few development texts with the keyboard (here with
    # the expert's code, read from the text's id on the page).
    experts = expert_codes()
    with Store(app.database_url).session() as s:
        demo = next(p for p in projects.list_projects(s, projects.ensure_user(s)) if p.is_demo)
        demo_id = demo.id
        names = projects.as_codebook(
            projects.latest_codebook(s, local_user(s), demo_id)
        ).label_names
    open_page(page, app, "validate")
    page.get_by_role("textbox", name="Your name as a coder").fill(CODER)
    page.keyboard.press("Enter")
    idle(page)
    expect(page.get_by_text("0 of 60 coded")).to_be_visible()
    expect(page.get_by_text("The LLM said")).to_have_count(0)  # blind before submitting
    page.locator("h1").first.click()  # the focus out of the name field
    coded = {}
    for i in range(N_CODED):
        caption = page.get_by_text(re.compile(r"Text \d+ of 60 · id ")).inner_text()
        doc_id = caption.rsplit("id ", 1)[1].strip()
        coded[doc_id] = experts[doc_id]
        page.keyboard.press(str(names.index(experts[doc_id]) + 1))
        expect(page.get_by_text(f"{i + 1} of 60 coded")).to_be_visible()
        idle(page)
    expect(page.get_by_text(re.compile(r"Previous text .* you coded"))).to_be_visible()
    no_exception(page)
    shot(page, "04-blind-coding", top=page.get_by_text(f"{N_CODED} of 60 coded"))

    # 5. Agreement: the LLM against the human codes on the development part.
    choose_tab(page, "Agreement")
    expect(heading(page, "Development part")).to_be_visible()
    scored = page.get_by_text(re.compile(r"Scored on \d+ texts")).first
    n_dev = int(re.search(r"Scored on (\d+)", scored.inner_text()).group(1))
    assert 50 <= n_dev <= 60  # the dev part's 60 texts less the experts' ties
    macro = page.locator('[data-testid="stMetric"]').filter(has_text="Macro F1").first
    value = float(macro.locator('[data-testid="stMetricValue"]').inner_text())
    assert 0.3 < value <= 1.0  # the keyword teacher is right on most texts
    expect(heading(page, "Agreement among human coders")).to_be_visible()
    no_exception(page)
    shot(page, "05-agreement", top=heading(page, "Development part"))

    # 6. Fine-tune with tiny settings; the comparison on the held-out test codes.
    n_used = start_tiny_fine_tune(page, app)
    assert 280 <= n_used <= 300  # 359 labelled less the 60 held-out test texts (and duplicates)
    expect(page.get_by_text(re.compile(r"Job 2 \("))).to_be_visible()
    expect(heading(page, "Models")).to_be_visible(timeout=300_000)
    expect(
        page.get_by_text(re.compile(r"All models scored on the same \d+ held-out"))
    ).to_be_visible()
    expect(page.locator('[data-testid="stDataFrame"]').first).to_be_visible()
    no_exception(page)
    with Store(app.database_url).session() as s:
        model = students.latest_model(s, local_user(s), demo_id)
        assert (model.args["epochs"], model.args["batch_size"]) == (1, 8)
        assert (model.args["max_length"], model.args["lr"]) == (32, 3e-4)
        rows = {r["key"]: r for r in model.comparison["rows"]}
    assert set(rows) == {"llm", "student_llm", "student_human", "tfidf_llm"}
    assert all(r["metrics"] and 0 <= r["metrics"]["macro_f1"] <= 1 for r in rows.values())
    shot(page, "06-fine-tune", top=page.get_by_text("How it compares"))
    page.get_by_role("button", name="Label the corpus with this model").click()
    expect(page.get_by_text(f"The corpus is labelled by model {model.id}")).to_be_visible(
        timeout=300_000
    )
    no_exception(page)

    # 7. Results: can the student be trusted, and the corpus's shares corrected by human codes.
    open_page(page, app, "results")
    for name in ["Can the student be trusted?", "The whole corpus", "Corrected shares"]:
        expect(heading(page, name)).to_be_visible()
    expect(page.get_by_text(f"Labelled by model {model.id} (360 texts).")).to_be_visible()
    no_exception(page)
    shot(page, "07-results", top=heading(page, "Corrected shares"))

    # 8. Export: the labelled corpus as CSV, built on click, read back.
    open_page(page, app, "export")
    shot(page, "08-export")
    with page.expect_download(timeout=60_000) as download:
        page.get_by_role("button", name="Download the labelled corpus (CSV (UTF-8))").click()
    path = tmp_path / download.value.suggested_filename
    download.value.save_as(path)
    assert path.name.endswith(".csv")
    table = pd.read_csv(path, encoding="utf-8-sig", dtype=str, keep_default_na=False)
    assert len(table) == 360
    for column in [
        "doc_id",
        "text",
        "source",
        "llm_label",
        "llm_status",
        "student_label",
        "student_probability",
        "student_model",
        f"human_{CODER}",
        "human_expert_a",
        "human_gold",
        "sample_part",
    ]:
        assert column in table.columns, column
    texts = table[table["text"] != ""]
    assert len(texts) == 359
    # Every text's LLM label is the loopback endpoint's answer for that text.
    assert (texts["llm_label"] == [choose_label(t, names, KEYWORDS) for t in texts["text"]]).all()
    assert (texts["llm_status"] == "ok").all()
    assert texts["student_label"].isin(names).all()
    assert (texts["student_model"] == f"{model.base_model} #{model.id}").all()
    probability = texts["student_probability"].astype(float)
    assert ((probability > 0) & (probability <= 1)).all()
    mine = table[table[f"human_{CODER}"] != ""].set_index("doc_id")[f"human_{CODER}"]
    assert mine.to_dict() == coded
    assert (table.loc[table["human_expert_a"] != "", "sample_part"] != "").sum() == 120
    assert table["sample_part"].value_counts().to_dict() == {"": 240, "dev": 60, "test": 60}
    assert table["human_gold"].isin(names + [""]).all() and (table["human_gold"] != "").sum() > 100


def start_tiny_fine_tune(page: Page, app) -> int:
    """On the Fine-tune page: one epoch of short inputs, a learning rate and batch size that
    make the most of it, students on the human codes in 2 folds; start it. Returns the texts
    the page says it uses for training."""
    open_page(page, app, "finetune")
    used = page.locator('[data-testid="stMetric"]').filter(has_text="Used for training")
    n_used = int(used.locator('[data-testid="stMetricValue"]').inner_text().replace(",", ""))
    page.get_by_text("Settings", exact=True).click()
    # Tiny: one epoch of short inputs, with a learning rate and batch size that make the most
    # of it, and students on the human codes in 2 folds.
    for name, value in [
        ("Epochs (at most)", "1"),
        ("Batch size", "8"),
        ("Max length in tokens (0: automatic)", "32"),
        ("Students on human codes for the comparison (folds; 0: skip)", "2"),
    ]:
        page.get_by_role("spinbutton", name=name).fill(value)
        page.keyboard.press("Enter")
        idle(page)
    lr = page.locator('[data-testid="stSlider"]').filter(has_text="Learning rate")
    lr.get_by_role("slider").focus()
    page.keyboard.press("ArrowRight")  # 1e-4 → 2e-4
    idle(page)
    lr.get_by_role("slider").focus()
    page.keyboard.press("ArrowRight")  # → 3e-4
    idle(page)
    expect(lr.get_by_role("slider")).to_have_attribute("aria-valuetext", "0.0003")
    page.get_by_role("button", name="Start fine-tuning").click()
    return n_used

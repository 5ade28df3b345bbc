"""The newcomer's path once more, on a many-category study made from a shared data set: 400
bill titles of the Congressional Bills Project with its 20 Policy Agendas major topics (skipped
when ../shared/data is absent; nothing of it is copied into the repository). A new project,
the upload with its id column picked, a 20-label codebook imported, LLM labels from the
loopback endpoint, a sample drawn and coded with the keyboard (keys and type-ahead), the rest
coded by an outside expert in the downloaded Excel sample and imported back, agreement and
Results charts that read at 20 categories, a tiny fine-tune, and the labelled CSV read back."""

from __future__ import annotations

import io
import json
import random

import pandas as pd
import pytest
from openpyxl import load_workbook
from playwright.sync_api import Page, expect

from tests.conftest import SHARED_DATA
from tests.e2e.conftest import ARTIFACTS, choose_tab, fresh_app, idle, shown_doc_id
from tests.e2e.test_browser import (
    new_project,
    no_exception,
    open_page,
    use_endpoint_for_the_whole_corpus,
)
from tests.e2e.test_charts_browser import _charts, _check, _shoot
from tests.e2e.test_newcomer import heading, start_tiny_fine_tune

pytestmark = pytest.mark.e2e

BILLS = SHARED_DATA / "uscongress_bill_topics.csv"
PROJECT = "Bill topics"
N_TEXTS = 400
N_SAMPLE = 100
N_KEYBOARD = 6
CODER, EXPERT = "newcomer", "expert"


@pytest.fixture(scope="module")
def bills() -> pd.DataFrame:
    """400 bill titles, 20 of each topic, in a fixed random order."""
    if not BILLS.exists():
        pytest.skip(f"the shared data set {BILLS} is absent")
    data = pd.read_csv(BILLS, dtype=str, keep_default_na=False)[["id", "text", "label"]]
    data = data.drop_duplicates("text")
    per = data.groupby("label").head(N_TEXTS // 20)
    return per.sample(frac=1, random_state=3).reset_index(drop=True)


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    with fresh_app(tmp_path_factory.mktemp("newcomer-many") / "home") as server:
        yield server


@pytest.fixture(scope="module")
def teacher(bills):
    """The loopback LLM, right on four texts in five (their titles are its keyword rules)."""
    from tests.llm_server import LoopbackLLM, ServerConfig

    rng = random.Random(5)
    known = {t.lower(): label for t, label in zip(bills["text"], bills["label"], strict=True)}
    keywords = {t: label for t, label in known.items() if rng.random() < 0.8}
    with LoopbackLLM(ServerConfig(latency=0.005, keywords=keywords)) as srv:
        yield srv


def test_the_newcomer_path_on_a_20_category_study(page: Page, app, teacher, bills, tmp_path):
    topics = sorted(bills["label"].unique())
    truth = dict(zip(bills["id"], bills["label"], strict=True))
    assert len(topics) == 20
    try:
        _path(page, app, teacher, bills, topics, truth, tmp_path)
    except BaseException:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "newcomer-many.png"), full_page=True)
        raise


def _upload(page: Page, label: str, path) -> None:
    """Give the file uploader labelled ``label`` a file."""
    uploader = page.locator('[data-testid="stFileUploader"]').filter(has_text=label)
    uploader.locator('input[type="file"]').set_input_files(str(path))


def _path(page, app, teacher, bills, topics, truth, tmp_path) -> None:
    # 1. A new project; the upload's id column is picked and said so.
    new_project(page, app, PROJECT)
    open_page(page, app, "data")
    corpus = tmp_path / "bills.csv"
    bills[["text", "id"]].to_csv(corpus, index=False)  # the id column not first
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(corpus))
    idle(page)
    expect(
        page.get_by_text("Ids from “id”: it is named as an id and unique in every row.")
    ).to_be_visible()
    page.get_by_role("button", name="Save as the project's corpus").click()
    idle(page)
    expect(page.get_by_text("Corpus: bills.csv")).to_be_visible()
    no_exception(page)

    # 2. The 20-topic codebook, imported as JSON and saved.
    codebook = tmp_path / "topics.json"
    codebook.write_text(
        json.dumps(
            {
                "name": "Policy Agendas major topics",
                "instructions": "Assign the one major topic that best fits the bill title.",
                "labels": [{"name": t, "definition": f"Bills mainly about {t}."} for t in topics],
            }
        ),
        encoding="utf-8",
    )
    open_page(page, app, "codebook")
    choose_tab(page, "Import / export")
    _upload(page, "Import a codebook (JSON)", codebook)
    idle(page)
    page.get_by_role("button", name="Put it into the editor (save there to keep it)").click()
    idle(page)
    choose_tab(page, "Edit")
    page.get_by_role("button", name="Save as a new version").click()
    idle(page)
    expect(page.get_by_text("Editing from version 1")).to_be_visible()
    no_exception(page)

    # 3. LLM labels for the whole corpus from the loopback endpoint.
    use_endpoint_for_the_whole_corpus(page, app, teacher.base_url, "loopback-llm")
    page.get_by_role("button", name="Start labelling").click()
    expect(page.get_by_text(f"Job 1 (done): {len(bills)} labelled")).to_be_visible(timeout=180_000)
    expect(page.get_by_text(f"{len(bills)} of {len(bills)} done")).to_be_visible()  # the bar agrees
    no_exception(page)

    # 4. A sample of 100, half held out; six texts coded with the keyboard.
    open_page(page, app, "validate")
    choose_tab(page, "Sample")
    page.get_by_role("spinbutton", name="Sample size").fill(str(N_SAMPLE))
    page.get_by_role("button", name="Draw the sample").click()
    idle(page)
    expect(page.get_by_text(f"Current sample: {N_SAMPLE} texts")).to_be_visible()
    choose_tab(page, "Code")
    page.get_by_role("textbox", name="Your name as a coder").fill(CODER)
    page.keyboard.press("Enter")
    idle(page)
    expect(page.get_by_text(f"0 of {N_SAMPLE // 2} coded")).to_be_visible()
    page.locator("h1").first.click()  # the focus out of the name field
    mine = {}
    for i in range(N_KEYBOARD):
        doc_id = shown_doc_id(page, N_SAMPLE // 2)
        label = mine[doc_id] = truth[doc_id]
        index = topics.index(label)
        if index < 9:
            page.keyboard.press(str(index + 1))
        else:
            page.keyboard.type(label)
            page.keyboard.press("Enter")
        expect(page.get_by_text(f"{i + 1} of {N_SAMPLE // 2} coded")).to_be_visible()
        idle(page)
    no_exception(page)

    # 5. The outside expert codes the downloaded workbook; it imports back with its report.
    choose_tab(page, "Sample")
    with page.expect_download() as download:
        page.get_by_role("button", name="Sample and codebook (Excel)").click()
    assert download.value.suggested_filename == "distill-bill-topics-sample.xlsx"
    book = load_workbook(io.BytesIO(download.value.path().read_bytes()))
    assert book.sheetnames == ["sample", "codebook", "instructions"]
    assert [c.value for c in book["codebook"]["A"][1:]] == topics
    sheet = book["sample"]
    ids = [sheet.cell(row=r, column=1).value for r in range(2, sheet.max_row + 1)]
    assert len(ids) == N_SAMPLE
    for r, doc_id in enumerate(ids, start=2):
        sheet.cell(row=r, column=3, value=truth[doc_id])
    sheet.cell(row=2, column=3, value="politics")  # a label the codebook lacks
    filled = tmp_path / "coded.xlsx"
    book.save(filled)
    choose_tab(page, "Import codes")
    _upload(page, "Codes file", filled)
    idle(page)
    page.get_by_role("textbox", name="Coder name for these codes").fill(EXPERT)
    page.keyboard.press("Enter")
    idle(page)
    expect(page.get_by_text(f"{N_SAMPLE - 1} codes can be imported")).to_be_visible()
    expect(page.get_by_text("'politics' (1)")).to_be_visible()
    page.get_by_role("button", name=f"Import {N_SAMPLE - 1} codes").click()
    idle(page)
    no_exception(page)

    # 6. Agreement: the figures and charts read at 20 categories.
    choose_tab(page, "Agreement")
    expect(heading(page, "Development part")).to_be_visible()
    for chart in _charts(page):
        _check(chart, topics)
    _shoot(page, "20-validate")  # test-artifacts/charts/
    page.get_by_role("button", name="Show the held-out test score").click()
    idle(page)
    expect(page.get_by_text("Look at the test score once")).to_have_count(0)
    expect(page.get_by_text("The held-out score was first looked at on")).to_be_visible()
    no_exception(page)

    # 7. A tiny fine-tune, the comparison, the corpus labelled.
    start_tiny_fine_tune(page, app)
    expect(heading(page, "Models")).to_be_visible(timeout=480_000)
    page.get_by_role("button", name="Label the corpus with this model").click()
    expect(page.get_by_text("The corpus is labelled by model")).to_be_visible(timeout=300_000)
    no_exception(page)

    # 8. Results: every chart reads at 20 categories.
    open_page(page, app, "results")
    for name in ["Can the student be trusted?", "The whole corpus", "Corrected shares"]:
        expect(heading(page, name)).to_be_visible()
    charts = _charts(page)
    assert len(charts) >= 5
    for chart in charts:
        _check(chart, topics)
    _shoot(page, "20-results")
    no_exception(page)

    # 9. Export: the labelled corpus read back; the step gets its tick.
    open_page(page, app, "export")
    with page.expect_download(timeout=60_000) as download:
        page.get_by_role("button", name="Download the labelled corpus (CSV (UTF-8))").click()
    table = pd.read_csv(
        download.value.path(), encoding="utf-8-sig", dtype=str, keep_default_na=False
    )
    assert len(table) == len(bills) and set(table["doc_id"]) == set(bills["id"])
    assert table["student_label"].isin(topics).all() and table["llm_label"].isin(topics).all()
    by_id = table.set_index("doc_id")
    assert by_id.loc[list(mine), f"human_{CODER}"].to_dict() == mine
    expert = by_id[by_id[f"human_{EXPERT}"] != ""][f"human_{EXPERT}"]
    assert len(expert) == N_SAMPLE - 1 and all(truth[d] == c for d, c in expert.items())
    open_page(page, app, "export")
    expect(page.get_by_text("7 of 7 steps done")).to_be_visible()

"""The charts at 8 and at 27 categories in a real browser: the Validate page's agreement
and adjudication figures and the Results page's, on projects with a coded sample, an LLM run and a student.
In every chart the title fits, each category's name is on the axis and no two names
overlap; no legend covers a plot area or a tick label; no written value overlaps a bar or
an error bar; the camera button saves the chosen format. Each chart is saved in test-artifacts/charts/."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import ARTIFACTS, App, app_env, choose_tab, idle
from tests.e2e.test_browser import no_exception, open_page
from tests.many_labels import LABELS_8, LABELS_27, build_project

pytestmark = pytest.mark.e2e

SHOTS = ARTIFACTS / "charts"


@pytest.fixture(scope="module")
def charts_app(tmp_path_factory):
    """The app on a store holding an 8-category and a 27-category project."""
    from distill_core.config import Settings
    from distill_core.store import Store

    home = tmp_path_factory.mktemp("charts") / "home"
    home.mkdir(parents=True)
    store = Store(Settings.from_env({"DISTILL_HOME": str(home)}).database_url)
    store.migrate()
    ids = {
        8: build_project(store, LABELS_8, name="Eight topics"),
        27: build_project(store, LABELS_27, name="Twenty-seven topics"),
    }
    store.dispose()
    server = App(home, app_env(home))
    try:
        yield server, ids
    finally:
        server.stop()


def open_project(app: App, project_id: int) -> None:
    """Make the project the one a new session opens (the user's last project)."""
    from distill_core.store import Store
    from tests.fakes import local_user

    store = Store(app.database_url)
    with store.session() as s:
        local_user(s).last_project_id = project_id
    store.dispose()


#: For every chart on screen: its title, the category names on each axis with their boxes, and
#: the boxes of the legend, plot areas, written values, bars and error bars (page pixels).
_GEOMETRY_JS = """charts => charts.filter(c => c.offsetParent !== null).map(c => {
  const box = e => { const r = e.getBoundingClientRect();
                     return [r.left, r.top, r.right, r.bottom]; };
  const all = sel => [...c.querySelectorAll(sel)];
  const ticks = sel => all(sel).map(e => ({text: e.textContent, box: box(e)}));
  return {
    title: (c.querySelector('.gtitle') || {textContent: ''}).textContent,
    titleBox: c.querySelector('.gtitle') ? box(c.querySelector('.gtitle')) : null,
    svgBox: box(c.querySelector('.main-svg')),
    yticks: ticks('.ytick text'),
    xticks: ticks('.xtick text'),
    legend: all('.legend').map(box),
    plots: all('.nsewdrag').map(box),
    values: all('.annotation-text-g, .bartext').filter(e => e.getBoundingClientRect().width > 0)
      .map(e => ({text: e.textContent, box: box(e),
                  annotation: e.classList.contains('annotation-text-g')})),
    bars: all('.bars path').map(box).filter(b => b[2] - b[0] > 0.5),
    errors: all('.errorbar path').map(box),
    modebar: all('.modebar-btn').map(e => e.getAttribute('data-title')),
  };
})"""


def _overlap(a, b, slack: float = 0.5) -> bool:
    return (
        a[0] < b[2] - slack and b[0] < a[2] - slack and a[1] < b[3] - slack and b[1] < a[3] - slack
    )


def _charts(page: Page) -> list[dict]:
    page.wait_for_function(
        """() => { const cs = [...document.querySelectorAll('[data-testid="stPlotlyChart"]')]
                   .filter(c => c.offsetParent !== null);
                   return cs.length > 0 && cs.every(c => c.querySelector('.main-svg')); }"""
    )
    return page.locator('[data-testid="stPlotlyChart"]').evaluate_all(_GEOMETRY_JS)


def _check(chart: dict, labels: list[str]) -> None:
    title = chart["title"]
    if chart["titleBox"]:  # the title (and the line under it) fits in the chart
        assert chart["titleBox"][2] <= chart["svgBox"][2] + 1, f"{title}: the title is cut"
    if title.startswith(PER_CATEGORY):  # every category's name on an axis
        names = {t["text"] for t in chart["yticks"] + chart["xticks"]}
        missing = [c for c in labels if c not in names]
        assert not missing, f"{title}: no tick for {missing}"
    ordered = sorted(chart["yticks"], key=lambda t: t["box"][1])
    for a, b in zip(ordered, ordered[1:], strict=False):
        assert a["box"][3] <= b["box"][1] + 1, f"{title}: '{a['text']}' overlaps '{b['text']}'"
    # names across the x axis may be turned (boxes of turned names overlap at -45°): they
    # must stand at least a line's height apart
    centres = sorted((t["box"][0] + t["box"][2]) / 2 for t in chart["xticks"])
    gaps = [b - a for a, b in zip(centres, centres[1:], strict=False)]
    assert not gaps or min(gaps) >= 12, f"{title}: x tick labels {min(gaps):.0f} px apart"
    for legend in chart["legend"]:
        for plot in chart["plots"]:
            assert not _overlap(legend, plot), f"{title}: the legend covers the plot"
        for tick in chart["yticks"] + chart["xticks"]:
            assert not _overlap(legend, tick["box"]), f"{title}: the legend covers '{tick['text']}'"
    for value in chart["values"]:
        for mark in chart["errors"] + (chart["bars"] if value["annotation"] else []):
            assert not _overlap(value["box"], mark), f"{title}: '{value['text']}' overlaps a bar"


#: Titles of the charts with one row (or column) per category.
MODEL_NAMES = [
    "LLM labels",
    "Student on LLM labels",
    "Student on human codes",
    "TF-IDF + logistic regression on LLM labels",
]
PER_CATEGORY = (
    "F1 per class",
    "Confusion",
    "Pairs of coders' codes",
    "Gold vs LLM run",
    "Student's labels",
    "Category shares",
    *(f"{name} (n" for name in MODEL_NAMES),
)


def _check_shown(page: Page, labels: list[str], starts: tuple[str, ...]) -> list[dict]:
    """The charts on screen: one whose title starts with each of ``starts``, each passing
    :func:`_check`, and no exception on the page."""
    charts = _charts(page)
    titles = [c["title"] for c in charts]
    for start in starts:
        assert any(t.startswith(start) for t in titles), (start, titles)
    for chart in charts:
        _check(chart, labels)
    no_exception(page)
    return charts


def _svg_text(name: str) -> str:
    return name.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _shoot(page: Page, name: str) -> int:
    SHOTS.mkdir(parents=True, exist_ok=True)
    shown = [c for c in page.locator('[data-testid="stPlotlyChart"]').all() if c.is_visible()]
    for i, chart in enumerate(shown):
        chart.scroll_into_view_if_needed()
        chart.screenshot(path=str(SHOTS / f"{name}-{i + 1}.png"))
    return len(shown)


@pytest.mark.parametrize("k", [8, 27])
def test_the_agreement_and_results_charts_read_at_8_and_27_categories(browser, charts_app, k):
    app, ids = charts_app
    labels = LABELS_8 if k == 8 else LABELS_27
    open_project(app, ids[k])
    for old in SHOTS.glob(f"{k}-*.png"):
        old.unlink()
    context = browser.new_context(viewport={"width": 1400, "height": 2400})
    from tests.e2e.conftest import RUN_COUNTER_JS

    context.add_init_script(RUN_COUNTER_JS)
    page = context.new_page()
    try:
        open_page(page, app, "validate")
        choose_tab(page, "Agreement")
        expect(page.get_by_role("heading", name="Development part")).to_be_visible()
        _check_shown(page, labels, ("F1 per class, LLM run", "Confusion, LLM run"))
        assert _shoot(page, f"{k}-validate") >= 2
        choose_tab(page, "Adjudicate")  # the two coders' confusions
        expect(page.get_by_text("Humans vs humans")).to_be_visible()
        _check_shown(page, labels, ("Pairs of coders' codes", "Gold vs LLM run"))
        assert _shoot(page, f"{k}-adjudicate") >= 2

        open_page(page, app, "results")
        page.get_by_text("SVG", exact=True).click()  # the camera button saves SVG from now on
        idle(page)
        charts = _check_shown(
            page,
            labels,
            ("Macro-F1 on", "F1 per class, every model", "Student's labels", "Category"),
        )
        every_model = next(c for c in charts if c["title"].startswith("F1 per class, every"))
        assert len(every_model["plots"]) == 4  # one panel per model
        # The camera button saves the chart as SVG, with every category's name in it.
        chart = page.locator('[data-testid="stPlotlyChart"]').filter(
            has=page.locator(".gtitle", has_text="F1 per class, every model")
        )
        chart.hover()
        with page.expect_download() as download:
            chart.locator('.modebar-btn[data-title="Download plot"]').click()
        assert download.value.suggested_filename == "distill-class-f1.svg"
        svg = download.value.path().read_text(encoding="utf-8")
        assert svg.startswith("<svg") and all(_svg_text(c) in svg for c in labels)
        assert _shoot(page, f"{k}-results") >= 5
        no_exception(page)
    except Exception:
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"{k}-failed.png"), full_page=True)
        raise
    finally:
        context.close()

"""How fast the app's pages are on a 100,000-text project, in Chromium (issue 18).

Builds a project in a fresh DISTILL_HOME (SQLite, or a fresh schema of ``--postgres URL``) as
far as every page's work goes (``build_project``): a corpus of ``--n`` synthetic texts, each
about one topic, with an LLM label on every text (``benchmarks/export.build_labelled``, written
through the store: ``bulk.insert_many``; 70% of the labels are the text's topic); a 300-text
validation sample split into development and test parts (``validation.draw_sample``, as the
Validate page draws it) coded by the local user with each text's topic (``validation.save_code``;
about 70% agreement with the LLM); a student trained by the core's train job on the ``--train``
(3,000) most confident LLM labels (the fast head recipe on the bundled all-MiniLM-L6-v2, its
comparison on the held-out test part stored as any training stores it: Results shows the
comparison table and charts, Fine-tune the training's history); and that student's corpus
pass: the sample's texts predicted by the trained model through the core's predict job, the
other texts' predictions written in bulk into the same pass before it (their LLM label:
predicting 100,000 texts would take about 8 minutes on 2 cores), which the job then finishes as
a resumed pass. ``--projects K`` builds K projects from the same synthetic texts and labels,
each with its own student trained by its own train job (the encoder's in-process embedding
cache spares the later trainings the encoding). The students on human codes of the comparison
are not trained ("A minimum confidence was set but no confidences were given": the core hands
them the confidence floor too).

Then starts ``streamlit run app.py`` on a free port and drives each page in Chromium with
Playwright: per round (``--rounds``, 5 by default), every page is loaded (round 1: the first
load of the server process; later rounds: reloads) and one widget on it is changed (the charts'
image format on Results, a checkbox on Fine-tune, the first checkbox or radio elsewhere). A load
or an interaction ends when the app has finished its script run (the e2e tests' ``idle``).

Prints, per page, the first load and the reloads' and interactions' p50/p95 in seconds, the bytes
received over the websocket per load, and the server's RSS after each round. ``--projects K``
builds K such projects and then opens each of the others in turn (every page once), printing the
RSS after each: the memory of a lab's instance that serves many projects.

Usage, from the repository root::

    .venv/bin/python benchmarks/pages.py --n 100000
    .venv/bin/python benchmarks/pages.py --n 100000 --postgres postgresql+psycopg://postgres@127.0.0.1:5432/test
    .venv/bin/python benchmarks/pages.py --n 100000 --projects 10
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.export import Text, build_labelled, synthetic_texts, write_predictions  # noqa: E402
from distill_core.jobs import kinds  # noqa: E402
from distill_core.jobs.predict import start_predict_job  # noqa: E402
from distill_core.jobs.train import start_train_job  # noqa: E402
from distill_core.store import Job, Store  # noqa: E402
from distill_core.student.args import TrainingArgs  # noqa: E402
from distill_core.study import projects, validation  # noqa: E402
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, RUN_COUNTER_JS, App, app_env, idle  # noqa: E402

#: The pages measured, by their URL path, with the labels of what their interaction clicks:
#: expanders to open (no rerun), then the widget it changes (None: the first checkbox or radio
#: option of the page's main part).
PAGES = {
    "Data": ("data", None),
    "Codebook": ("codebook", None),
    "LLM labels": ("llm_labels", None),
    "Validate": ("validate", None),
    "Fine-tune": ("finetune", ("Settings", "Weight classes by inverse frequency")),
    "Results": ("results", ("SVG",)),
    "Export": ("export", None),
}
SAMPLE = 300
#: LLM labels the student is trained on (the most confident ones).
TRAIN = 3000


def build_project(
    store: Store, texts: Sequence[Text], name: str, train_n: int = TRAIN, seed: int = 0
) -> int:
    """A project as far as every page's work: corpus and LLM run (``export.build_labelled``), a
    300-text sample drawn and split into development and test parts as the Validate page does
    (``validation.draw_sample``) and coded by the local user with each text's topic (about
    70% agreement with the LLM), then a student trained by the core's train job
    (``start_train_job`` and the job run in this process: the fast head recipe on the bundled
    all-MiniLM-L6-v2, on the ``train_n`` most confident LLM labels, its comparison on the
    held-out test part stored as any training stores it) and its corpus pass: the sample's
    texts predicted by the trained model through the core's predict job, every other text's
    prediction written in bulk beforehand (``export.write_predictions``: the LLM label, not
    predicted) into the same pass, which the job then finishes as a resumed pass."""
    pid, run_id = build_labelled(store, texts, name)
    topic = {t.doc_id: t.topic for t in texts}
    with store.session() as s:
        user = projects.ensure_user(s)
        sample = validation.draw_sample(s, user, pid, n=min(SAMPLE, len(texts)), seed=seed)
        ids = [d.doc_id for d in validation.sample_docs(s, user, pid, sample)]
    with store.session() as s:
        user = projects.ensure_user(s)
        for doc_id in ids:
            validation.save_code(
                s, user, pid, doc_id, user.username, topic[doc_id], source="import"
            )
    with store.session() as s:
        held_out = validation.training_exclusions(s, pid)
    ranked = sorted((t.confidence for t in texts if t.doc_id not in held_out), reverse=True)
    floor = ranked[min(train_n, len(ranked)) - 1]  # keeps the train_n most confident (and ties)
    args = TrainingArgs(recipe="head", min_confidence=floor, seed=seed)
    with store.session() as s:
        job_id, model_id = start_train_job(
            s, projects.ensure_user(s), pid, label_run_id=run_id, args=args
        )
    kinds.execute(store, job_id)
    with store.session() as s:
        job = s.get(Job, job_id)
        if job.status != "done":
            raise SystemExit(f"The student's training {job.status}: {job.message}")
        job_id, pass_id = start_predict_job(s, projects.ensure_user(s), pid, model_id=model_id)
        coded = set(ids)
        write_predictions(s, pass_id, [t for t in texts if t.doc_id not in coded])
    kinds.execute(store, job_id)
    with store.session() as s:
        job = s.get(Job, job_id)
        if job.status != "done":
            raise SystemExit(f"The student's corpus pass {job.status}: {job.message}")
    return pid


def open_project(store: Store, pid: int) -> None:
    """The project the local user's next browser session opens."""
    with store.session() as s:
        projects.ensure_user(s).last_project_id = pid


def rss_mb(pid: int) -> float:
    """Resident memory of a process in MB (``VmRSS`` of /proc/<pid>/status)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@dataclass
class Figures:
    first: float | None = None
    reloads: list[float] = field(default_factory=list)
    interactions: list[float] = field(default_factory=list)
    load_bytes: list[int] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


class Wire:
    """Bytes the browser received over the app's websocket since the last :meth:`take`."""

    def __init__(self, page) -> None:
        self.bytes = 0
        page.on("websocket", lambda ws: ws.on("framereceived", self._frame))

    def _frame(self, payload) -> None:
        self.bytes += len(payload)

    def take(self) -> int:
        got, self.bytes = self.bytes, 0
        return got


def interact(page, labels: tuple[str, ...] | None) -> bool:
    """Change one widget of the page's main part; False when the page has none."""
    main = page.locator('[data-testid="stMain"]')
    if labels is not None:
        *expanders, label = labels
        for title in expanders:
            main.locator('[data-testid="stExpander"] summary').filter(has_text=title).first.click()
        target = main.get_by_text(label, exact=True)
        if target.count() and target.first.is_visible():
            target.first.click()
            return True
    for selector in (
        '[data-testid="stCheckbox"] label',
        '[data-testid="stRadio"] label:has(input:not(:checked))',
    ):
        found = main.locator(selector)
        for i in range(found.count()):
            if found.nth(i).is_visible():
                found.nth(i).click()
                return True
    return False


def visit(page, wire: Wire, url: str, timeout: float) -> tuple[float, int]:
    wire.take()
    started = time.perf_counter()
    page.goto(url)
    idle(page, timeout=timeout)
    return time.perf_counter() - started, wire.take()


#: The tallest screenshot taken (pixels).
SHOT_MAX_HEIGHT = 12_000


def screenshot(page, path: Path) -> None:
    """The whole page in one image: Streamlit scrolls its main part inside the window, so the
    window is made as tall as that part's content for the shot, then set back."""
    size = page.viewport_size
    height = page.evaluate(
        """() => Math.max(...['stMain', 'stAppViewContainer'].map(
            (id) => document.querySelector(`[data-testid="${id}"]`)?.scrollHeight || 0))"""
    )
    tall = min(SHOT_MAX_HEIGHT, max(size["height"], int(height)))
    page.set_viewport_size({"width": size["width"], "height": tall})
    page.wait_for_timeout(500)  # the charts redraw at the new size
    page.screenshot(path=str(path), full_page=True)
    page.set_viewport_size(size)


def measure(
    app: App, rounds: int, timeout: float, others: list[int], store: Store, shots: Path | None
):
    from playwright.sync_api import sync_playwright

    figures = {name: Figures() for name in PAGES}
    rss = [("started", rss_mb(app.proc.pid))]
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        context.add_init_script(RUN_COUNTER_JS)
        page = context.new_page()
        page.set_default_timeout(timeout * 1000)
        wire = Wire(page)
        for r in range(rounds):
            for name, (path, label) in PAGES.items():
                f = figures[name]
                try:
                    seconds, sent = visit(page, wire, f"{app.url}/{path}", timeout)
                except AssertionError as exc:
                    f.notes.append(f"round {r + 1}: load did not finish ({exc})")
                    continue
                (f.reloads.append(seconds) if r else setattr(f, "first", seconds))
                if shots and r == 0:  # what was measured: the page after its first load
                    screenshot(page, shots / f"{path}.png")
                f.load_bytes.append(sent)
                started = time.perf_counter()
                try:
                    if interact(page, label):
                        idle(page, timeout=timeout)
                        f.interactions.append(time.perf_counter() - started)
                    elif r == 0:
                        f.notes.append("no checkbox or radio to change")
                except Exception as exc:
                    f.notes.append(f"round {r + 1}: interaction failed ({type(exc).__name__})")
                wire.take()
                print(
                    f"  round {r + 1} {name:<11} load {seconds:6.2f} s  {sent / 1e6:7.2f} MB"
                    + (f"  interaction {f.interactions[-1]:6.2f} s" if f.interactions else ""),
                    flush=True,
                )
            rss.append((f"after round {r + 1}", rss_mb(app.proc.pid)))
            print(f"  RSS {rss[-1][1]:,.0f} MB {rss[-1][0]}", flush=True)
        for k, pid in enumerate(others, start=2):
            open_project(store, pid)
            for path, _ in PAGES.values():
                with contextlib.suppress(AssertionError):
                    visit(page, wire, f"{app.url}/{path}", timeout)
            rss.append((f"after project {k}", rss_mb(app.proc.pid)))
            print(f"  RSS {rss[-1][1]:,.0f} MB {rss[-1][0]}", flush=True)
        browser.close()
    return figures, rss


def pct(values: list[float], q: float) -> str:
    return f"{np.percentile(values, q):.2f}" if values else "—"


def report(figures: dict[str, Figures], rss: list[tuple[str, float]]) -> None:
    print(
        "\n| page | first load s | reload p50 s | reload p95 s | interaction p50 s | "
        "interaction p95 s | MB per load (max) |"
    )
    print("|---|---|---|---|---|---|---|")
    for name, f in figures.items():
        first = f"{f.first:.2f}" if f.first is not None else "—"
        mb = f"{max(f.load_bytes) / 1e6:.2f}" if f.load_bytes else "—"
        print(
            f"| {name} | {first} | {pct(f.reloads, 50)} | {pct(f.reloads, 95)} | "
            f"{pct(f.interactions, 50)} | {pct(f.interactions, 95)} | {mb} |"
        )
    print("\nserver RSS: " + ", ".join(f"{what} {mb:,.0f} MB" for what, mb in rss))
    for name, f in figures.items():
        for note in f.notes:
            print(f"note: {name}: {note}")


@contextlib.contextmanager
def database(home: Path, postgres: str | None):
    """The app's database URL: SQLite in ``home``, or a fresh schema of ``postgres`` (dropped
    at the end)."""
    if not postgres:
        from distill_core.config import Settings

        yield Settings.from_env({"DISTILL_HOME": str(home)}).database_url
        return
    from sqlalchemy import create_engine, text

    schema = f"distill_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(postgres)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        joiner = "&" if "?" in postgres else "?"
        yield f"{postgres}{joiner}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="texts per project")
    parser.add_argument("--rounds", type=int, default=5, help="first load + reloads")
    parser.add_argument("--projects", type=int, default=1, help="projects to open in turn")
    parser.add_argument("--postgres", metavar="URL", help="a PostgreSQL database to use")
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds per load")
    parser.add_argument("--screenshots", type=Path, help="a folder for each page's first load")
    parser.add_argument(
        "--train", type=int, default=TRAIN, help="LLM labels the student is trained on"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        home.mkdir()
        # the train job finds DISTILL_HOME's models folder in the environment, as a worker does
        os.environ.update(DISTILL_HOME=str(home), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
        with database(home, args.postgres) as url:
            store = Store(url)
            store.migrate()
            started = time.perf_counter()
            texts = synthetic_texts(args.n)
            pids = []
            for k in range(args.projects):
                pids.append(build_project(store, texts, f"Benchmark {k + 1}", args.train))
                print(
                    f"  project {k + 1} built and its student trained at "
                    f"{time.perf_counter() - started:.1f} s",
                    flush=True,
                )
            print(
                f"built {len(pids)} project(s) of {args.n:,} texts in "
                f"{time.perf_counter() - started:.1f} s ({'PostgreSQL' if args.postgres else 'SQLite'})",
                flush=True,
            )
            open_project(store, pids[0])
            env = app_env(home)
            env["DISTILL_DATABASE_URL"] = url
            app = App(home, env)
            try:
                if args.screenshots:
                    args.screenshots.mkdir(parents=True, exist_ok=True)
                figures, rss = measure(
                    app, args.rounds, args.timeout, pids[1:], store, args.screenshots
                )
            finally:
                app.stop()
                store.dispose()
            report(figures, rss)


if __name__ == "__main__":
    main()

"""What every page needs: the store, the acting user, the current project, the sidebar,
"this step needs X first" notices, and cached reads. The one UI helper module; pages stay thin."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime

import pandas as pd
import streamlit as st

from distill_core.config import Settings
from distill_core.store import Store
from distill_core.study import demo, projects

#: The workflow's pages: (step name, script, icon). The step names are projects.STEPS.
PAGES = {
    "Projects": ("app_pages/projects.py", ":material/folder_open:"),
    "Data": ("app_pages/data.py", ":material/table:"),
    "Codebook": ("app_pages/codebook.py", ":material/menu_book:"),
    "LLM labels": ("app_pages/llm_labels.py", ":material/smart_toy:"),
    "Validate": ("app_pages/validate.py", ":material/fact_check:"),
    "Fine-tune": ("app_pages/finetune.py", ":material/model_training:"),
    "Results": ("app_pages/results.py", ":material/bar_chart:"),
    "Export": ("app_pages/export.py", ":material/download:"),
}


@dataclass(frozen=True)
class Context:
    """Who is working on which project, for this rerun."""

    store: Store
    user_id: int
    username: str
    project_id: int | None
    project_name: str | None
    steps: dict[str, bool]

    def user(self, session):
        return session.get(projects.User, self.user_id)


@st.cache_resource(show_spinner="Opening the database…")
def _open_store(url: str) -> Store:
    """One migrated store per database URL and process; the demo project on a new install."""
    store = Store(url)
    store.migrate()
    with store.session() as s:
        user = projects.ensure_user(s, projects.LOCAL_USERNAME)
        if not s.query(projects.Project.id).first():
            demo.ensure_demo_project(s, user)
    return store


def get_store() -> Store:
    return _open_store(Settings.from_env().database_url)


def current_username() -> str:
    """Single-user mode: the one local user."""
    return projects.LOCAL_USERNAME


def context() -> Context:
    """The store, user and current project: kept in the session and as the user's last project,
    so a reload or a new tab opens the same project; the newest project on a first visit."""
    store = get_store()
    with store.session() as s:
        user = projects.ensure_user(s, current_username())
        mine = projects.list_projects(s, user)
        wanted = st.session_state.get("project_id") or user.last_project_id
        project = next((p for p in mine if p.id == wanted), mine[0] if mine else None)
        if project is None or wanted != project.id:
            st.session_state["project_id"] = project.id if project else None
        if project is not None and user.last_project_id != project.id:
            user.last_project_id = project.id
        steps = projects.steps_done(s, project.id) if project else {}
        return Context(
            store=store,
            user_id=user.id,
            username=user.username,
            project_id=project.id if project else None,
            project_name=project.name if project else None,
            steps=steps,
        )


def navigation(ctx: Context):
    """The pages in workflow order; a done step shows a check mark."""
    pages = []
    for step, (script, icon) in PAGES.items():
        done = ctx.steps.get(step, False) and step != "Projects"
        default = step == "Projects"  # the default page is served at "/", not at a path
        pages.append(
            st.Page(
                script,
                title=step,
                icon=":material/check_circle:" if done else icon,
                url_path=None if default else script.removeprefix("app_pages/").removesuffix(".py"),
                default=default,
            )
        )
    return st.navigation(pages)


def sidebar(ctx: Context) -> None:
    """Current project picker and the workflow's progress."""
    with st.sidebar:
        store = ctx.store
        with store.session() as s:
            mine = projects.list_projects(s, ctx.user(s))
            names = {p.id: p.name for p in mine}
        if names and ctx.project_id in names:
            picker = f"project_picker_{ctx.project_id}"
            st.selectbox(
                "Project",
                options=list(names),
                index=list(names).index(ctx.project_id),
                format_func=names.get,
                key=picker,
                on_change=_choose_project,
                args=(picker,),
                help="Every page works on this project.",
            )
            done = sum(ctx.steps.get(step, False) for step in projects.STEPS[1:])
            st.caption(f"{done} of {len(projects.STEPS) - 1} steps done (✓ in the menu).")
        else:
            st.caption("No project yet: create one on the Projects page.")


def _choose_project(picker: str) -> None:
    st.session_state["project_id"] = st.session_state[picker]


def require_project(ctx: Context) -> int:
    """The current project's id, or a notice with a link to the Projects page and a stop."""
    if ctx.project_id is None:
        st.info("This step needs a project. Create or choose one first.")
        st.page_link(PAGES["Projects"][0], label="Go to Projects", icon=":material/arrow_forward:")
        st.stop()
    return ctx.project_id


def require_step(ctx: Context, step: str, why: str) -> None:
    """Stop the page with a link when an earlier ``step`` has no result yet."""
    require_project(ctx)
    if not ctx.steps.get(step, False):
        st.info(f"This step needs {why} first.")
        st.page_link(PAGES[step][0], label=f"Go to {step}", icon=":material/arrow_forward:")
        st.stop()


@st.cache_resource(max_entries=8, show_spinner="Loading the corpus…")
def _documents(url: str, corpus_id: int, uploaded_at: datetime) -> pd.DataFrame:
    store = _open_store(url)
    with store.session() as s:
        return projects.load_documents(s, corpus_id)


def documents(ctx: Context, corpus: projects.Corpus) -> pd.DataFrame:
    """The corpus as a frame, read from the database once (shared, treat as read-only)."""
    return _documents(ctx.store.url, corpus.id, corpus.uploaded_at)


def project_corpus(ctx: Context) -> projects.Corpus | None:
    with ctx.store.session() as s:
        return projects.get_corpus(s, ctx.project_id) if ctx.project_id else None


@st.cache_resource
def _job_queue(url: str, home: str, redis_url: str | None):
    from distill_core.jobs import kinds, queue

    settings = Settings.from_env()
    return kinds.make_huey(settings), queue.Supervisor(settings)


def job_queue():
    """(huey queue, supervisor of the local worker) for this install; one per process."""
    settings = Settings.from_env()
    return _job_queue(settings.database_url, str(settings.home), settings.redis_url)


def submit_job(ctx: Context, job_id: int, api_key: str | None = None) -> None:
    """Make sure a worker runs, then queue the job (the key goes to the worker in memory)."""
    from distill_core.jobs import queue

    huey, supervisor = job_queue()
    if not supervisor.ensure():
        raise RuntimeError(f"The background worker did not start; see {supervisor.logfile}.")
    queue.submit(ctx.store, job_id, settings=supervisor.settings, api_key=api_key, huey=huey)


def job_panel(ctx: Context, kind: str, details=None) -> None:
    """Progress of the project's latest job of ``kind``, live while it runs, with Cancel.

    ``details(container, job)`` shows what is particular to the kind (the default: the LLM
    labelling's errors, tokens and cost).
    """
    from distill_core.jobs import records

    def latest():
        with ctx.store.session() as s:
            records.mark_stale(s)
            found = records.latest_jobs(s, ctx.project_id, kind, limit=1)
        return found[0] if found else None

    first = latest()
    if first is None:
        return

    @st.fragment(run_every=1.0 if first.status in records.ACTIVE else None)
    def panel() -> None:
        job = latest()
        active = job.status in records.ACTIVE
        box = st.container(border=True)
        box.markdown(f"**Job {job.id}** ({job.status}): {job.message}")
        share = job.done / job.total if job.total else 0.0
        box.progress(min(1.0, share), text=f"{job.done:,} of {job.total:,} done")
        (details or _label_job_details)(box, job)
        if active:
            if box.button("Cancel", key=f"cancel_job_{job.id}", disabled=job.cancel_requested):
                with ctx.store.session() as s:
                    records.request_cancel(s, job.id)
                st.rerun(scope="fragment")
            if job.cancel_requested:
                box.caption("Cancelling: what is done so far is kept.")
        elif first.status in records.ACTIVE:
            st.rerun()  # the job just ended: refresh the whole page to show its results

    panel()


def _label_job_details(box, job) -> None:
    cols = box.columns(4)
    cols[0].metric("Errors", f"{job.errors:,}")
    cols[1].metric("Prompt tokens", f"{job.prompt_tokens:,}")
    cols[2].metric("Completion tokens", f"{job.completion_tokens:,}")
    cols[3].metric("Cost", f"${job.cost_usd:,.4f}")


def secret(name: str) -> str | None:
    """A value from the environment or from ``.streamlit/secrets.toml`` (never stored)."""
    if os.environ.get(name):
        return os.environ[name]
    try:
        value = st.secrets.get(name)
    except Exception:  # no secrets file: that is fine
        return None
    return str(value) if value else None


@st.cache_data(max_entries=16, show_spinner="Counting tokens…")
def _estimate(_codebook, fingerprint: str, texts: tuple[str, ...], model: str, repeats: int, price):
    from distill_core.llm.cost import estimate

    return estimate(_codebook, texts, model, repeats, {model: price})


def cost_estimate(codebook, texts, model: str, repeats: int, price):
    """Offline token and cost estimate for labelling ``texts`` (cached per input)."""
    return _estimate(codebook, codebook.fingerprint(), tuple(texts), model, repeats, price)


def audit_jsonl(ctx: Context, run_id: int):
    """A function building the run's audit log as JSON Lines, for a download button's data
    (called only when the user clicks)."""

    def build() -> bytes:
        import io

        from distill_core.study.runs import write_audit_log

        buffer = io.BytesIO()
        with ctx.store.session() as s:
            write_audit_log(s, [run_id], buffer)
        return buffer.getvalue()

    return build


def llm_labels_for(ctx: Context, label_runs, doc_ids: set[str]) -> dict[str, str]:
    """The LLM's labels for these documents from the newest run that labelled any of them."""
    from distill_core.study import runs

    with ctx.store.session() as s:
        for run in label_runs:
            found = {
                r.doc_id: r.label
                for r in runs.run_results(s, run.id)
                if r.doc_id in doc_ids and r.label is not None
            }
            if found:
                return found
    return {}


def show_agreement(result, *, title: str, class_ci: dict | None = None) -> None:
    """Headline agreement figures with 95% intervals, per-class F1 and the confusion matrix."""
    from distill_core.reports.charts import confusion_heatmap, per_class_bars

    heads = [
        ("Accuracy", "accuracy"),
        ("Macro F1", "macro_f1"),
        ("Cohen's κ", "cohen_kappa"),
        ("Krippendorff's α", "krippendorff_alpha"),
    ]
    if result.binary_f1 is not None:
        heads.append((f"F1 of '{result.positive_label}'", "binary_f1"))
    st.caption(f"Scored on {result.n} texts with both a human code and an LLM label.")
    cols = st.columns(len(heads))
    for col, (name, key) in zip(cols, heads, strict=True):
        value = getattr(result, key)
        low, high = result.ci.get(key, (float("nan"), float("nan")))
        col.metric(
            name,
            f"{value:.3f}",
            help=f"95% bootstrap interval {low:.3f}–{high:.3f}; n = {result.n}",
        )
        col.caption(f"95% CI {low:.2f}–{high:.2f}")
    classes = list(result.per_class)
    f1 = [result.per_class[c].f1 for c in classes]
    lows = [class_ci[c][0] for c in classes] if class_ci else None
    highs = [class_ci[c][1] for c in classes] if class_ci else None
    left, right = st.columns(2)
    left.plotly_chart(
        per_class_bars(classes, f1, lows, highs, title=f"F1 per class, {title}", n=result.n),
        width="stretch",
    )
    right.plotly_chart(
        confusion_heatmap(result.labels, result.confusion, title=f"Confusion, {title}"),
        width="stretch",
    )
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "label": c,
                    "precision": m.precision,
                    "recall": m.recall,
                    "F1": m.f1,
                    "support": m.support,
                }
                for c, m in result.per_class.items()
            ]
        ),
        hide_index=True,
        width="stretch",
    )


def show_intercoder(result) -> None:
    """Agreement between pairs of human coders, and Krippendorff's alpha across all of them."""
    st.metric(
        "Krippendorff's α (all coders)",
        f"{result.krippendorff_alpha:.3f}",
        help=f"{len(result.coders)} coders, {result.n_items} texts coded by at least two",
    )
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "coder A": p.coder_a,
                    "coder B": p.coder_b,
                    "texts both coded": p.n,
                    "agreement": p.percent_agreement,
                    "Cohen's κ": p.cohen_kappa,
                }
                for p in result.pairs
            ]
        ),
        hide_index=True,
        width="stretch",
    )


def comparison_table(comparison: dict) -> pd.DataFrame:
    """The fair comparison as a table: each model's macro-F1, accuracy and kappa with CIs."""

    from distill_core.reports.formatting import fmt_ci

    def with_ci(m: dict, key: str) -> str:
        return fmt_ci(m.get(key), m["ci"].get(key))

    rows = []
    for r in comparison.get("rows", []):
        m = r.get("metrics")
        rows.append(
            {
                "model": r["name"],
                "trained on": f"{r['n_train']:,} texts" if r.get("n_train") else "–",
                "macro-F1": with_ci(m, "macro_f1") if m else "not available",
                "accuracy": with_ci(m, "accuracy") if m else "–",
                "Cohen's κ": with_ci(m, "cohen_kappa") if m else "–",
                "n": m["n"] if m else 0,
                "note": r.get("note", ""),
            }
        )
    return pd.DataFrame(rows)


def show_comparison(comparison: dict, labels: list[str]) -> None:
    """The paper's table for this project: every model on the same held-out human codes."""
    from distill_core.reports.charts import class_f1_grouped, comparison_bars, confusion_heatmap

    if not comparison or comparison.get("eval") is None:
        st.info(
            (comparison or {}).get("reason")
            or "No comparison: the model was trained before a test part was coded."
        )
        return
    n = comparison["eval"]["n"]
    st.caption(
        f"All models scored on the same {n} held-out test texts, against the human codes "
        f"({comparison['eval']['gold']}). None of these texts was in any model's training data. "
        "Intervals: 95% percentile bootstrap over the texts (1,000 resamples)."
    )
    st.dataframe(comparison_table(comparison), hide_index=True, width="stretch")
    rows = comparison["rows"]
    chart(comparison_bars(rows, title="Macro-F1 on held-out human codes", n=n), "comparison-f1")
    chart(class_f1_grouped(rows, labels, title="F1 per class, every model", n=n), "class-f1")
    scored = [r for r in rows if r.get("metrics")]
    for pair in range(0, len(scored), 2):
        cols = st.columns(2)
        for col, r in zip(cols, scored[pair : pair + 2], strict=False):
            m = r["metrics"]
            figure = confusion_heatmap(m["labels"], m["confusion"], title=r["name"])
            chart(figure, f"confusion-{r['key']}", col)


#: Image formats the charts' camera button can save.
IMAGE_FORMATS = ("png", "svg")


def chart(figure, name: str, container=None) -> None:
    """A plotly figure whose camera button saves it as PNG or SVG (``chart_format`` in the
    session, chosen with :func:`image_format_picker`), named after the figure."""
    fmt = st.session_state.get("chart_format", "png")
    (container or st).plotly_chart(
        figure,
        width="stretch",
        config={
            "displaylogo": False,
            "toImageButtonOptions": {"format": fmt, "filename": f"distill-{name}", "scale": 2},
        },
    )


def image_format_picker() -> None:
    """Choose what the charts' camera button saves (PNG for slides, SVG for papers)."""
    st.radio(
        "Charts save as",
        IMAGE_FORMATS,
        format_func=str.upper,
        horizontal=True,
        key="chart_format",
        help="Use the camera button at the top right of a chart to save it.",
    )


def model_label(model) -> str:
    """How a student is named in pickers."""
    when = f"{model.created_at:%Y-%m-%d %H:%M}"
    return f"Model {model.id}: {model.base_model}, {model.status}, {when} UTC"


def export_file(ctx: Context, fmt: str, **options):
    """A function building one of the project's exports (``export.FORMATS``) as bytes, for a
    download button's data: Streamlit calls it in a worker thread only when the user clicks,
    so a large corpus never stalls the page."""

    def build() -> bytes:
        import io

        from distill_core.reports import export

        buffer = io.BytesIO()
        with ctx.store.session() as s:
            export.export_project(s, ctx.project_id, fmt, buffer, **options)
        return buffer.getvalue()

    return build


def label_run_picker(ctx: Context, label: str, key: str):
    """A choice among the project's label runs with results (newest first), each named by its
    model, codebook version, size and date; None when there is none."""
    from distill_core.study import runs

    with ctx.store.session() as s:
        label_runs = runs.project_runs(s, ctx.project_id, with_results=True)
        version_of = {v.id: v.version for v in projects.codebook_versions(s, ctx.project_id)}
    if not label_runs:
        return None
    return st.selectbox(
        label,
        label_runs,
        format_func=lambda r: (
            f"Run {r.id}: {r.model}, codebook v{version_of.get(r.codebook_version_id, '?')}, "
            f"{r.n_texts:,} texts, {r.created_at:%Y-%m-%d %H:%M} UTC"
        ),
        key=key,
    )

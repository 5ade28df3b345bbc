"""The methods appendix: what was done in a project, in sentences a researcher can paste into a
paper, with every figure the Results page shows (F1 and agreement with 95% intervals, n's,
corrected shares) and the settings needed to reproduce it.

The appendix is built once as structured sections (paragraphs, lists, tables, quotes) and
rendered from them twice: Markdown and a small self-contained, escaped HTML page, so the two
never disagree and no Markdown library is needed. ``Appendix.figures`` holds every reported
figure as the exact string the text shows, for checks and for pages that quote them.
Figures are written by ``reports.formatting``, as on every page.
"""

from __future__ import annotations

import html
import platform
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy import func, select

from distill_core.agreement import Agreement
from distill_core.codebook import Codebook
from distill_core.reports.formatting import (
    first_upper,
    fmt,
    fmt_bounded_share,
    fmt_ci,
    fmt_count,
    fmt_date,
    fmt_share,
    plural,
)
from distill_core.store.models import CodebookVersion, Job, LabelRun, LabelRunItem, Project, User
from distill_core.student.card import ModelMeta
from distill_core.study import assignments, projects, runs, scoring, students, validation
from distill_core.study import shares as corpus_shares
from distill_core.study.access import Capability, entry
from distill_core.study.comparison import TRAINING_CLAIMS, Comparison

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

#: Packages whose versions the appendix reports (when installed).
PACKAGES = ("pandas", "numpy", "scikit-learn", "torch", "transformers", "openai", "sqlalchemy")

#: An inline item: plain text, or (bold lead, rest) rendered as "**lead**: rest".
Inline = str | tuple[str, str]
#: A block: ("p", text) | ("ul"/"ol", [Inline]) | ("quote", text) | ("table", header, rows).
Block = tuple


@dataclass
class Section:
    title: str
    blocks: list[Block] = field(default_factory=list)


@dataclass
class Appendix:
    """The appendix as sections, its figures ({key: text as shown}) and both renderings."""

    title: str
    sections: list[Section]
    figures: dict[str, str]

    @property
    def markdown(self) -> str:
        parts = [f"# {self.title}"]
        for section in self.sections:
            parts.append(f"## {section.title}")
            parts.extend(_md_block(b) for b in section.blocks)
        return "\n\n".join(parts) + "\n"

    @property
    def html(self) -> str:
        body = [f"<h1>{_e(self.title)}</h1>"]
        for section in self.sections:
            body.append(f"<h2>{_e(section.title)}</h2>")
            body.extend(_html_block(b) for b in section.blocks)
        return _HTML_PAGE.format(title=_e(self.title), body="\n".join(body))


def _public_url(url: str) -> str:
    """The endpoint's address without user, password or query (where keys sometimes sit)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


# ---------------------------------------------------------------- the appendix


class _Builder:
    def __init__(self) -> None:
        self.sections: list[Section] = []
        self.figures: dict[str, str] = {}

    def section(self, title: str) -> list[Block]:
        self.sections.append(Section(title))
        return self.sections[-1].blocks

    def fig(self, key: str, text: str) -> str:
        self.figures[key] = text
        return text


@entry(Capability.READ)
def methods_appendix(session: Session, user: User, project_id: int) -> Appendix:
    """The project's methods appendix: data, codebook, LLM labelling, human validation,
    LLM–human agreement on the held-out test part, the student and the fair comparison,
    corrected corpus shares and software versions. Parts the project lacks say so."""
    project = session.get(Project, project_id)
    if project is None:
        raise projects.ProjectError(f"There is no project with id {project_id}.")
    b = _Builder()
    corpus = projects.get_corpus(session, user, project_id)
    run = runs.provenance_run(session, user, project_id, corpus.id if corpus else None)
    model = students.latest_model(session, user, project_id)
    meta = ModelMeta.from_dict(model.meta) if model is not None else None
    comparison = Comparison.from_dict(model.comparison) if model is not None else None
    _data(b, corpus)
    _codebook(b, session, user, project_id, run)
    _llm(b, session, user, project_id, run)
    codes = validation.codes_frame(session, user, project_id)
    sample = validation.current_sample(session, user, project_id)
    _human(b, session, user, project_id, sample, codes)
    _llm_test(b, session, user, sample, codes, run, comparison)
    _corpus_estimate(b, session, user, sample, codes, run)
    _by_run(b, session, user, project_id)
    _student(b, model, meta, comparison)
    _shares(b, session, user, project_id)
    _cost(b, session, user, project_id)
    _software(b, meta)
    return Appendix(f"Methods appendix: {project.name}", b.sections, b.figures)


def _data(b: _Builder, corpus) -> None:
    blocks = b.section("Data")
    if corpus is None:
        blocks.append(("p", "No corpus has been uploaded yet."))
        return
    report = corpus.report or {}
    n = b.fig("corpus.n_texts", fmt_count(corpus.row_count))
    text = (
        f"The corpus is the file {corpus.filename} ({corpus.file_format}), uploaded on "
        f"{fmt_date(corpus.uploaded_at)}: {n} texts in the column '{corpus.text_column}'"
    )
    text += (
        ", with ids generated from the texts."
        if corpus.ids_generated
        else f", identified by the column '{corpus.id_column}'."
    )
    extra = []
    if n_empty := report.get("empty_texts"):
        extra.append(f"{fmt_count(n_empty)} {plural(n_empty, 'text is', 'texts are')} empty")
    if n_repeated := report.get("duplicate_texts"):
        extra.append(
            f"{fmt_count(n_repeated)} {plural(n_repeated, 'text repeats', 'texts repeat')} another "
            "text (identical texts are labelled once and share the LLM's answer)"
        )
    if extra:
        text += " " + first_upper("; ".join(extra)) + "."
    blocks.append(("p", text))


def _codebook(
    b: _Builder, session: Session, user: User, project_id: int, run: LabelRun | None
) -> None:
    blocks = b.section("Codebook")
    version = None
    if run is not None and run.codebook_version_id is not None:
        version = session.get(CodebookVersion, run.codebook_version_id)
    version = version or projects.latest_codebook(session, user, project_id)
    if run is not None and run.codebook:
        codebook = Codebook.from_dict(run.codebook, check=False)
    elif version is not None:
        codebook = projects.as_codebook(version)
    else:
        blocks.append(("p", "No codebook has been saved yet."))
        return
    which = f", version {version.version} (saved {fmt_date(version.created_at)})" if version else ""
    b.fig("codebook.version", str(version.version) if version else "n/a")
    blocks.append(
        (
            "p",
            f"Texts were labelled with the codebook '{codebook.name}'{which}. The same codebook "
            "was the human coders' instructions and the LLM's prompt. It has "
            f"{len(codebook.labels)} labels and {len(codebook.examples)} worked "
            f"{plural(len(codebook.examples), 'example')}.",
        )
    )
    if codebook.instructions.strip():
        blocks.append(("quote", codebook.instructions.strip()))
    blocks.append(("ul", [(label.name, label.definition.strip()) for label in codebook.labels]))
    if codebook.examples:
        blocks.append(("p", "Examples given to coders and to the LLM:"))
        blocks.append(("ol", [(e.label, e.text.strip()) for e in codebook.examples]))


def _llm(b: _Builder, session: Session, user: User, project_id: int, run: LabelRun | None) -> None:
    blocks = b.section("LLM labelling")
    if run is None:
        blocks.append(("p", "No LLM label run has results yet."))
        return
    params = dict(run.params or {})
    counts = _status_counts(session, run.id)
    n = b.fig("llm.n_labelled", fmt_count(sum(counts.values())))
    repeats = int(params.get("repeats") or 1)
    if run.teacher == "local":
        who = (
            f"Distill's offline zero-shot baseline ({run.model}: cosine similarity between "
            "sentence embeddings of each text and of the label descriptions; a weak baseline, "
            "not an LLM)"
        )
    else:
        settings = [f"temperature {params.get('temperature', 'default')}"]
        if params.get("max_tokens"):
            settings.append(f"at most {params['max_tokens']} tokens per answer")
        if params.get("seed") is not None:
            settings.append(f"seed {params['seed']}")
        url = _public_url(str(params.get("base_url", "")))
        who = f"the LLM {run.model} through the OpenAI-compatible endpoint {url} ({', '.join(settings)})"
    job = session.get(Job, run.job_id) if run.job_id else None
    when = fmt_date(run.created_at)
    if job is not None and job.finished_at is not None:
        when += f" to {fmt_date(job.finished_at)}"
    text = f"Label run {run.id} ({when}): {who} labelled {n} texts."
    if repeats > 1:
        text += (
            f" Each text was asked {repeats} times; its label is the most frequent answer and its "
            "consistency the share of answers that agree with it."
        )
    ok = b.fig("llm.ok", fmt_count(counts.get("ok", 0)))
    invalid = b.fig("llm.invalid", fmt_count(counts.get("invalid", 0)))
    error = b.fig("llm.error", fmt_count(counts.get("error", 0)))
    n_invalid, n_error = counts.get("invalid", 0), counts.get("error", 0)
    text += (
        f" {ok} got a codebook label; for {invalid} {plural(n_invalid, 'text')} the answer "
        f"named no codebook label (invalid) and {error} {plural(n_error, 'text')} got no "
        "answer (failed requests or empty texts)."
    )
    if job is not None and (job.prompt_tokens or job.completion_tokens):
        pt = b.fig("llm.prompt_tokens", fmt_count(job.prompt_tokens))
        ct = b.fig("llm.completion_tokens", fmt_count(job.completion_tokens))
        text += f" The run used {pt} prompt and {ct} completion tokens"
        if job.cost_usd:
            text += f" at an estimated cost of US${b.fig('llm.cost_usd', f'{job.cost_usd:.2f}')}"
        text += " (answers stored from earlier runs were not asked again)."
    blocks.append(("p", text))
    marked = runs.after_seen_note(session, user, project_id, run.id)
    if marked:
        blocks.append(("p", f"Note: {marked}"))
    blocks.append(
        (
            "p",
            "Every request and answer is kept in the project's audit log (JSON Lines export); "
            "no API key is stored.",
        )
    )
    table = _run_table(session, user, project_id)
    if len(table) > 1:
        blocks.append(("p", "All label runs of the project:"))
        blocks.append(
            (
                "table",
                ["Run", "Date", "Model", "Codebook", "Scope", "Texts", "Tokens", "Cost"],
                table,
            )
        )


def _status_counts(session: Session, run_id: int) -> dict[str, int]:
    rows = session.execute(
        select(LabelRunItem.status, func.count())
        .where(LabelRunItem.run_id == run_id)
        .group_by(LabelRunItem.status)
    )
    return {status: int(n) for status, n in rows}


def _run_table(session: Session, user: User, project_id: int) -> list[list[str]]:
    versions = projects.version_numbers(session, user, project_id)
    rows = []
    for run in reversed(runs.project_runs(session, user, project_id, with_results=True)):
        job = session.get(Job, run.job_id) if run.job_id else None
        tokens = (job.prompt_tokens + job.completion_tokens) if job else None
        rows.append(
            [
                str(run.id),
                fmt_date(run.created_at),
                run.model,
                projects.version_label(versions[run.codebook_version_id])
                if run.codebook_version_id in versions
                else "",
                run.scope,
                fmt_count(sum(_status_counts(session, run.id).values())),
                fmt_count(tokens) if tokens else "",
                f"US${job.cost_usd:.2f}" if job and job.cost_usd else "",
            ]
        )
    return rows


def _human(b: _Builder, session: Session, user: User, project_id: int, sample, codes) -> None:
    blocks = b.section("Human validation")
    if sample is None:
        blocks.append(("p", "No validation sample has been drawn yet."))
        return
    parts = validation.part_counts(session, user, project_id, sample)
    n = b.fig("sample.n", fmt_count(sample.n))
    dev = b.fig("sample.dev", fmt_count(parts.get("dev", 0)))
    test = b.fig("sample.test", fmt_count(parts.get("test", 0)))
    seed = b.fig("sample.seed", str(sample.seed)) if sample.seed is not None else "unrecorded"
    split = f"split into a development part ({dev}) and a held-out test part ({test})"
    details = sample.details or {}
    if sample.method == "stratified":
        text = (
            f"A sample of {n} texts stratified by the LLM labels of run {sample.strata_run_id} "
            f"(proportional allocation, at least {details.get('min_per_stratum', 0)} per label; "
            f"seed {seed}) was drawn and {split}. Its label shares differ from the corpus's by "
            "design."
        )
    elif sample.method == "imported":
        source = f" ({details['source']})" if details.get("source") else ""
        text = (
            f"{n} texts coded before Distill were imported{source} and {split} at random "
            f"(seed {seed})."
        )
    else:
        text = f"A simple random sample of {n} texts was drawn (seed {seed}) and {split}."
    text += (
        " The development part is for revising the codebook; the held-out test part is scored "
        "for the final evaluation only: no student on LLM labels and no baseline is trained on "
        "it, and the students on human codes are cross-validated within it, each scored only "
        "on the fold it was not trained on."
    )
    if sample.test_seen_at is not None:
        version = sample.test_seen_codebook_version
        text += f" Its score was first looked at on {fmt_date(sample.test_seen_at)}" + (
            f" (codebook version {version})." if version is not None else "."
        )
        later = [
            f"v{int(v)}"
            for v in sorted(projects.version_numbers(session, user, project_id).values())
            if v.after_seen
        ]
        if later:
            text += (
                f" Codebook {plural(len(later), 'version')} {', '.join(later)} "
                f"{'was' if len(later) == 1 else 'were'} saved after a held-out score had been "
                f"seen; every figure from {'it' if len(later) == 1 else 'them'} is marked "
                f"“{projects.AFTER_SEEN}”."
            )
    blocks.append(("p", text))
    if codes.empty:
        blocks.append(("p", "No human codes have been recorded yet."))
        return
    _assignment(b, blocks, session, user, project_id, sample)
    per_coder = codes.groupby("coder")["doc_id"].nunique().sort_index()
    listing = ", ".join(f"{c} ({fmt_count(k)} texts)" for c, k in per_coder.items())
    gold = validation.gold_rule(codes)
    coders = "coders"
    text = f"{len(per_coder)} {coders} coded texts: {listing}."
    if len(per_coder) == 1:
        text = f"One coder coded texts: {listing}."
    if len(per_coder) > 1:
        text += " " + _gold_rule_sentence(b, gold)
    revised = int(codes["revised_after_reveal"].sum()) if "revised_after_reveal" in codes else 0
    b.fig("codes.revised_after_reveal", fmt_count(revised))
    text += (
        f" {fmt_count(revised)} {plural(revised, 'code was', 'codes were')} changed after the "
        "coder had seen the LLM's label; agreement is scored on the first, blind code."
        if revised
        else " No code was changed after the coder had seen the LLM's label."
    )
    blocks.append(("p", text))
    version = projects.latest_codebook(session, user, project_id)
    labels = projects.as_codebook(version).label_names if version else None
    inter = validation.intercoder_agreement(codes, labels)
    if inter is not None:
        _intercoder(b, blocks, inter)


#: The statistics over all coders the appendix reports: (name, attribute).
_INTERCODER = [
    ("Krippendorff's α", "krippendorff_alpha"),
    ("Fleiss' κ", "fleiss_kappa"),
    ("Gwet's AC1", "gwet_ac1"),
    ("Percent agreement", "percent_agreement"),
]


def _intercoder(b: _Builder, blocks, inter) -> None:
    """Agreement among coders with intervals and n: over all coders, per pair, per category."""
    shown = {
        key: b.fig(f"intercoder.{'alpha' if key == 'krippendorff_alpha' else key}", text)
        for _, key in _INTERCODER
        for text in [fmt_ci(getattr(inter, key), inter.ci.get(key))]
    }
    n = b.fig("intercoder.n", fmt_count(inter.n))
    pairs = "; ".join(
        f"{p.coder_a} and {p.coder_b}: κ = "
        f"{b.fig(f'intercoder.{p.coder_a}|{p.coder_b}.kappa', fmt_ci(p.cohen_kappa, p.ci))} "
        f"on {fmt_count(p.n)} texts ({fmt(100 * p.percent_agreement, 1)}% identical)"
        for p in inter.pairs
    )
    overall = ", ".join(f"{name} = {shown[key]}" for name, key in _INTERCODER)
    text = (
        f"Inter-coder agreement on the coders' blind codes, on the {n} texts coded by two or "
        f"more coders ({fmt_count(inter.n_codes)} codes): {overall}. Intervals: BCa bootstrap "
        f"over the texts ({fmt_count(inter.n_boot)} resamples). Cohen's κ per pair of coders, "
        f"on the texts both coded: {pairs}."
    )
    if inter.caution:
        text += " " + inter.caution
    blocks.append(("p", text))
    if inter.per_category:
        rows = [
            [
                label,
                fmt_count(a.n_codes),
                *(
                    b.fig(f"intercoder.{label}.{key}", fmt_ci(getattr(a, key), a.ci.get(key)))
                    for key in ("specific_agreement", "krippendorff_alpha", "gwet_ac1")
                ),
            ]
            for label, a in inter.per_category.items()
        ]
        blocks.append(
            (
                "table",
                ["Category", "Codes", "Specific agreement", "Krippendorff's α", "Gwet's AC1"],
                rows,
            )
        )


def _assignment(b: _Builder, blocks, session, user, project_id: int, sample) -> None:
    """The assignment design of the sample, with each coder's share of it."""
    record = assignments.current_design(session, user, project_id, sample)
    if record is None:
        return
    design = record.design
    b.fig("assignment.k", str(design.k))
    if design.overlap is not None:
        b.fig("assignment.overlap", f"{design.overlap:.0%}")
    n_overlap = b.fig("assignment.n_overlap", fmt_count(record.n_overlap))
    progress = assignments.team_progress(session, user, project_id, sample)
    shares = ", ".join(
        f"{r.coder} {fmt_count(r.done)} of {fmt_count(r.assigned)}"
        for r in progress.coders
        if r.assigned
    )
    blocks.append(
        (
            "p",
            f"Coding was assigned on {fmt_date(record.created_at)}: {design.describe()} "
            f"(seed {design.seed}), so {n_overlap} texts were to be coded by two or more coders "
            "for the agreement among coders. Each coder saw their texts in an order of their "
            "own, seeded by the sample and the coder, and coded blind: no other coder's code "
            f"and no LLM label. Texts coded of those assigned: {shares}; "
            f"{fmt_count(progress.complete_texts)} of {fmt_count(progress.assigned_texts)} "
            "texts have every code they were assigned.",
        )
    )


def _gold_rule_sentence(b: _Builder, gold: validation.Gold) -> str:
    """How a text's gold label was made (``validation.gold_rule``), with the ties listed."""
    settled = b.fig("gold.adjudicated", fmt_count(gold.count("adjudicated")))
    ties = b.fig("gold.ties", fmt_count(len(gold.ties)))
    text = (
        "A text's human label is the code an expert adjudicated where its coders disagreed "
        f"({settled} {plural(gold.count('adjudicated'), 'text')}; the codes export gives each "
        "one's reason), else the majority of its coders' codes"
    )
    if not gold.ties:
        return text + "."
    shown = ", ".join(gold.ties[:10]) + (", …" if len(gold.ties) > 10 else "")
    return (
        text + f"; {ties} {plural(len(gold.ties), 'text')} whose coders tie and that nobody "
        f"adjudicated {'is' if len(gold.ties) == 1 else 'are'} left out ({shown})."
    )


_METRICS = [
    ("Accuracy", "accuracy"),
    ("Macro-F1", "macro_f1"),
    ("Weighted F1", "weighted_f1"),
    ("Cohen's κ", "cohen_kappa"),
    ("Krippendorff's α", "krippendorff_alpha"),
]


def _llm_test(
    b: _Builder, session, user, sample, codes, run, comparison: Comparison | None
) -> None:
    """The LLM against the human labels of the held-out test part: the comparison's own row
    when a student was compared (the figures the Results page shows), else the scorer's."""
    blocks = b.section("LLM–human agreement on the held-out test part")
    row = comparison.row("llm") if comparison is not None else None
    metrics, class_ci = (row.metrics, row.class_ci) if row is not None else (None, {})
    if metrics is None and sample is not None and run is not None and not codes.empty:
        score = scoring.score_run(
            session, user, sample.project_id, run, "test", sample=sample, codes=codes
        )
        if score is not None:
            metrics, class_ci = score.agreement, score.class_ci
    if metrics is None:
        blocks.append(
            (
                "p",
                "Not available yet: it needs an LLM label run and human codes of at least two "
                "held-out test texts.",
            )
        )
        return
    shown = {
        k: b.fig(f"llm_test.{k}", fmt_ci(getattr(metrics, k), metrics.ci.get(k)))
        for _, k in _METRICS
    }
    n = b.fig("llm_test.n", fmt_count(metrics.n))
    blocks.append(
        (
            "p",
            f"On the {n} held-out test texts with a human label, the LLM's labels reached "
            f"accuracy {shown['accuracy']}, macro-F1 {shown['macro_f1']}, Cohen's κ "
            f"{shown['cohen_kappa']} and Krippendorff's α {shown['krippendorff_alpha']}. "
            f"Intervals are 95% intervals: Wilson for accuracy, a BCa bootstrap "
            f"({scoring.N_BOOT:,} resamples of the texts) widened by a weak-prior interval for "
            "F1, κ and α; macro averages are over the categories that occur; an invalid or "
            "missing LLM answer counts as wrong."
            + (f" {metrics.caution}" if not getattr(metrics, "reliable", True) else ""),
        )
    )
    blocks.append(("table", ["Metric", "Estimate (95% CI)"], [[t, shown[k]] for t, k in _METRICS]))
    blocks.append(_per_class_table(metrics, class_ci))


def _corpus_estimate(b: _Builder, session, user, sample, codes, run) -> None:
    """For a stratified sample: the LLM's design-weighted agreement on the held-out test part
    (a corpus estimate, beside the sample's figures), its strata and every stratum left
    without a scored text."""
    if sample is None or sample.method != "stratified" or run is None or codes.empty:
        return
    score = scoring.score_run(
        session, user, sample.project_id, run, "test", sample=sample, codes=codes
    )
    if score is None or score.corpus is None:
        return
    blocks = b.section("LLM–human agreement: corpus estimate (design-weighted)")
    estimate, weighted = score.corpus, score.corpus.agreement
    text = (
        f"The sample was stratified by the LLM labels of run {sample.strata_run_id}, so the "
        "figures above describe the sample, in which rare labels are over-represented."
    )
    if weighted is not None:
        acc = b.fig(
            "llm_test.corpus.accuracy", fmt_ci(weighted.accuracy, weighted.ci.get("accuracy"))
        )
        f1 = b.fig(
            "llm_test.corpus.macro_f1", fmt_ci(weighted.macro_f1, weighted.ci.get("macro_f1"))
        )
        n = b.fig("llm_test.corpus.n", fmt_count(weighted.n))
        text += (
            f" As estimates for the corpus, the LLM's labels of run {run.id} on the {n} "
            f"held-out test texts scored reach accuracy {acc} and macro-F1 {f1}, for the "
            f"{fmt_count(weighted.population)} corpus texts of the strata with a scored text. "
            f"{estimate.method}" + (f" {weighted.caution}" if weighted.caution else "")
        )
    blocks.append(("p", " ".join([text, *estimate.warnings])))
    if weighted is not None:
        rows = [
            [
                "no LLM label" if s.key is None else str(s.key),
                fmt_count(s.population),
                fmt_count(s.scored),
                fmt(s.weight, 1) if s.scored else "n/a (not represented)",
            ]
            for s in weighted.strata
        ]
        header = ["Stratum (LLM label)", "Corpus texts", "Scored test texts", "Weight"]
        blocks.append(("table", header, rows))


def _per_class_table(metrics: Agreement, class_ci: dict) -> Block:
    rows = [
        [
            label,
            fmt(c.precision),
            fmt(c.recall),
            fmt_ci(c.f1, class_ci.get(label)),
            fmt_count(c.support),
        ]
        for label, c in metrics.per_class.items()
    ]
    return ("table", ["Label", "Precision", "Recall", "F1 (95% CI)", "Test texts"], rows)


def _student(b: _Builder, model, meta: ModelMeta | None, comparison: Comparison | None) -> None:
    blocks = b.section("Student model")
    if model is None or meta is None:
        blocks.append(("p", "No student model has been trained yet."))
        return
    args, training = model.args or {}, model.training or {}
    filters = meta.filters
    n_train = b.fig("student.n_train", fmt_count(meta.n_train))
    n_val = b.fig("student.n_val", fmt_count(meta.n_val))
    how = (
        "was trained with the fast recipe (the base model frozen; a softmax classifier on its "
        "mean-pooled sentence embeddings, its L2 strength chosen by 5-fold cross-validation on "
        "the training texts)"
        if meta.recipe == "head"
        else "was fine-tuned"
    )
    text = (
        f"Student model {model.id}: {model.base_model} {how} on the LLM labels of run "
        f"{model.label_run_id}. Of the {fmt_count(training.get('n_llm'))} texts that run labelled, "
        f"{fmt_count(training.get('excluded_test'))} in the held-out test part were excluded, "
        f"{fmt_count(training.get('invalid'))} had no valid label"
    )
    if filters.get("min_confidence") is not None:
        text += (
            f", {fmt_count(filters.get('dropped_low_confidence'))} fell below the confidence floor "
            f"{filters['min_confidence']}"
        )
    if filters.get("min_consistency") is not None:
        text += (
            f", {fmt_count(filters.get('dropped_low_consistency'))} below the consistency floor "
            f"{filters['min_consistency']}"
        )
    held = "validation" if meta.recipe == "head" else "validation (early stopping)"
    text += f"; {n_train} texts were trained on and {n_val} held back for {held}."
    blocks.append(("p", text))
    if meta.mistakes_sentence():
        blocks.append(("p", meta.mistakes_sentence()))
    if meta.head_fit_sentence():  # the head recipe's C, where a fine-tuned one has epochs
        blocks.append(("p", meta.head_fit_sentence()))
    if meta.recipe_choice is not None:
        blocks.append(("p", meta.recipe_choice.sentence()))
    setting = "Settings: " + ", ".join(_training_settings(args, meta)) + "."
    if meta.best_epoch and meta.recipe != "head":
        setting += (
            f" The best epoch was {meta.best_epoch} of {len(meta.history)} (validation macro-F1 "
            f"{fmt(meta.val_macro_f1)})."
        )
    if meta.train_seconds is not None:
        seconds = b.fig("student.train_seconds", f"{float(meta.train_seconds):,.0f}")
        setting += f" Training took {seconds} seconds on {meta.device or 'an unrecorded device'}."
    blocks.append(("p", setting))
    if meta.below_tfidf_sentence():
        blocks.append(("p", meta.below_tfidf_sentence()))
    counts = training.get("label_counts") or meta.label_counts
    if counts:
        listing = ", ".join(f"{k} {fmt_count(v)}" for k, v in counts.items())
        blocks.append(("p", f"LLM labels available for training, per label: {listing}."))
    if comparison is not None:
        _comparison(b, blocks, comparison)


def _training_settings(args: dict, meta: ModelMeta) -> list[str]:
    """The training settings as phrases, leaving out any that was not recorded."""
    phrases = {
        "epochs": "at most {} epochs, stopped early on validation macro-F1",
        "early_stopping_patience": "patience {} epochs",
        "lr": "learning rate {}",
        "warmup_ratio": "warm-up over a share {} of the steps",
        "weight_decay": "weight decay {}",
        "batch_size": "batch size {}",
        "max_length": "at most {} tokens per text",
        "seed": "seed {}",
    }
    if meta.recipe == "head":  # no epochs, steps or optimiser: one fit of the head
        phrases = {k: phrases[k] for k in ("max_length", "seed")}
    values = dict(args, max_length=meta.max_length or args.get("max_length"))
    out = [p.format(values[k]) for k, p in phrases.items() if values.get(k) is not None]
    if args.get("class_weights"):
        out.append("inverse-frequency class weights in the loss")
    certainty = {
        "weight": "each label weighted in the loss by the LLM's confidence × consistency",
        "soft": "soft targets from the LLM's confidence",
    }.get(args.get("certainty") or "off")
    if certainty:
        out.append(certainty)
    if args.get("label_smoothing"):
        out.append(f"label smoothing {args['label_smoothing']}")
    return out or ["not recorded"]


def _comparison(b: _Builder, blocks: list[Block], comparison: Comparison) -> None:
    ev = comparison.eval
    if ev is None:
        if comparison.reason:
            blocks.append(("p", f"No comparison on human codes: {comparison.reason}"))
        return
    n = b.fig("comparison.n", fmt_count(ev.n))
    blocks.append(
        (
            "p",
            f"Fair comparison: every row is scored on the same {n} held-out test texts (human "
            f"label: {ev.gold}), fixed when the training started. "
            f"{' '.join(TRAINING_CLAIMS.values())} Intervals are 95%.",
        )
    )
    rows, notes = [], []
    for row in comparison.rows:
        key, m = row.key, row.metrics
        if m is None:
            rows.append([row.name, fmt_count(row.n_train), "n/a", "n/a", "n/a", "n/a"])
        else:
            rows.append(
                [
                    row.name,
                    fmt_count(row.n_train) if row.n_train is not None else "–",
                    b.fig(f"comparison.{key}.macro_f1", fmt_ci(m.macro_f1, m.ci.get("macro_f1"))),
                    b.fig(f"comparison.{key}.accuracy", fmt_ci(m.accuracy, m.ci.get("accuracy"))),
                    b.fig(
                        f"comparison.{key}.cohen_kappa",
                        fmt_ci(m.cohen_kappa, m.ci.get("cohen_kappa")),
                    ),
                    b.fig(f"comparison.{key}.krippendorff_alpha", fmt(m.krippendorff_alpha)),
                ]
            )
        if row.note:
            notes.append((row.name, row.note))
    header = [
        "Classifier",
        "Training texts",
        "Macro-F1 (95% CI)",
        "Accuracy (95% CI)",
        "Cohen's κ (95% CI)",
        "α",
    ]
    blocks.append(("table", header, rows))
    if notes:
        blocks.append(("ul", notes))
    _seed_variability(b, blocks, comparison)
    for i, d in enumerate(comparison.differences()):
        f1 = b.fig(f"difference.{i}.macro_f1", fmt_ci(d.macro_f1.difference, d.macro_f1.ci))
        acc = b.fig(f"difference.{i}.accuracy", fmt_ci(d.accuracy.difference, d.accuracy.ci))
        p = b.fig(f"difference.{i}.mcnemar_p", fmt(d.accuracy.p_value))
        blocks.append(
            (
                "p",
                f"{d.a} minus {d.b}, on the same {fmt_count(d.macro_f1.n)} texts: macro-F1 "
                f"{f1}, accuracy {acc} (paired bootstrap intervals; McNemar's exact test on the "
                f"texts exactly one of them got right: p = {p}).",
            )
        )
    student = comparison.row("student_llm")
    if student is not None:
        blocks.append(("p", "Per-class F1 of the student on LLM labels:"))
        blocks.append(_per_class_table(student.metrics, student.class_ci))


def _seed_variability(b: _Builder, blocks: list[Block], comparison: Comparison) -> None:
    """The student on LLM labels over several seeds (when it was trained with more than one):
    mean and range on the comparison's texts, each seed's scores, and which model is kept."""
    seeds = comparison.seeds
    if seeds is None or seeds.n_seeds < 2:
        return
    b.fig("student.seeds.n", str(seeds.n_seeds))
    for key in ("macro_f1", "accuracy"):
        spread = seeds.spread(key)
        b.fig(f"student.seeds.{key}", spread.text() if spread else "n/a")
    each = "; ".join(
        f"seed {s.seed}: macro-F1 {fmt(s.macro_f1)}, accuracy {fmt(s.accuracy)}"
        for s in seeds.scores
    )
    blocks.append(("p", f"Student on LLM labels — {seeds.sentence()} Per seed: {each}."))


def _shares(b: _Builder, session: Session, user: User, project_id: int) -> None:
    """Corrected corpus shares (``shares.corrected_shares``) of the latest corpus pass."""
    blocks = b.section("Corpus shares")
    try:
        shares = corpus_shares.corrected_shares(session, user, project_id)
    except ValueError as exc:
        blocks.append(("p", f"Not available: {exc}"))
        return
    if shares is None:
        blocks.append(("p", "Not available yet: it needs a student's pass over the corpus."))
        return
    n_corpus = b.fig("shares.n_corpus", fmt_count(shares.n_corpus))
    n_sample = b.fig("shares.n_sample", fmt_count(shares.n_sample))
    blocks.append(
        (
            "p",
            f"Category shares of the {n_corpus} corpus texts. The naive share counts the "
            f"student's predictions; the corrected share adds the mean prediction error measured "
            f"on {n_sample} human-coded texts the student was not trained on (prediction-powered "
            "inference, Angelopoulos et al. 2023, Science 382)"
            + (", weighted by inverse inclusion probabilities" if shares.weighted else "")
            + "; the sample-only share uses the human codes alone. Intervals are 95% intervals; "
            "a category on which the coded texts show no variation gets an exact "
            "(Clopper–Pearson) bound instead, never a zero-width interval.",
        )
    )
    rows = [
        [
            s.label,
            b.fig(f"shares.{s.label}.naive", fmt_share(s.naive, s.naive_ci)),
            b.fig(
                f"shares.{s.label}.corrected",
                fmt_bounded_share(s.corrected, s.corrected_ci, s.bound_only),
            ),
            b.fig(
                f"shares.{s.label}.sample_only",
                fmt_bounded_share(s.sample_only, s.sample_only_ci, s.bound_only),
            ),
        ]
        for s in shares.rows
    ]
    blocks.append(("table", ["Label", "Naive", "Corrected", "Human sample only"], rows))
    if shares.warnings:
        blocks.append(("p", "Note: " + " ".join(shares.warnings)))


def _by_run(b: _Builder, session: Session, user: User, project_id: int) -> None:
    """The LLM's agreement per label run on the coded development texts (as on Results)."""
    from distill_core.reports import report

    points = report.agreement_by_run(session, user, project_id, part="dev")
    if not points:
        return
    blocks = b.section("LLM–human agreement across label runs")
    blocks.append(
        (
            "p",
            "Each label run (a codebook version or LLM setting) scored on the coded texts of the "
            "development part that it labelled, against the human codes (majority of coders); "
            "95% intervals. The codebook was revised on these texts, so "
            "these figures are optimistic; the held-out figures above are the ones to report.",
        )
    )
    rows = [
        [
            p.name,
            b.fig(f"by_run.{p.run_id}.n", fmt_count(p.n)),
            b.fig(f"by_run.{p.run_id}.accuracy", fmt_ci(p.accuracy, p.accuracy_ci)),
            b.fig(f"by_run.{p.run_id}.macro_f1", fmt_ci(p.macro_f1, p.macro_f1_ci)),
        ]
        for p in points
    ]
    blocks.append(("table", ["Label run", "n", "Accuracy (95% CI)", "Macro-F1 (95% CI)"], rows))


def _cost(b: _Builder, session: Session, user: User, project_id: int) -> None:
    """Tokens, money and time, and what labelling the whole corpus with the LLM would cost."""
    from distill_core.reports import report

    cost = report.cost_summary(session, user, project_id)
    if not cost.answers and not cost.train_seconds:
        return
    blocks = b.section("Cost and time")
    tokens = b.fig("cost.tokens", fmt_count(cost.prompt_tokens + cost.completion_tokens))
    text = (
        f"The LLM gave {b.fig('cost.answers', fmt_count(cost.answers))} answers using {tokens} tokens "
        f"at a cost of US${b.fig('cost.llm_cost_usd', f'{cost.llm_cost_usd:,.2f}')}."
    )
    if cost.whole_corpus_cost_usd is not None:
        whole = b.fig("cost.whole_corpus_cost_usd", f"{cost.whole_corpus_cost_usd:,.2f}")
        text += (
            f" Labelling all {fmt_count(cost.corpus_n)} corpus texts with the LLM at the same price would "
            f"have used about "
            f"{fmt_count(cost.whole_corpus_prompt_tokens + cost.whole_corpus_completion_tokens)} tokens "
            f"and cost about US${whole}."
        )
    text += (
        f" Training the student took {b.fig('cost.train_seconds', f'{cost.train_seconds:,.0f}')} "
        f"seconds; it labelled {b.fig('cost.predicted_texts', fmt_count(cost.predicted_texts))} texts in "
        f"{b.fig('cost.predict_seconds', f'{cost.predict_seconds:,.0f}')} seconds."
    )
    blocks.append(("p", text))


def _software(b: _Builder, meta: ModelMeta | None) -> None:
    from distill_core import __version__

    blocks = b.section("Software")
    versions = [f"Distill {__version__}", f"Python {platform.python_version()}"]
    for package in PACKAGES:
        try:
            versions.append(f"{package} {metadata.version(package)}")
        except metadata.PackageNotFoundError:
            continue
    text = "Produced with " + ", ".join(versions) + "."
    trained = meta.versions if meta is not None else None
    if trained:
        text += (
            " The student was trained with "
            + ", ".join(f"{k} {v}" for k, v in trained.items())
            + "."
        )
    text += f" Appendix generated on {datetime.now(UTC):%Y-%m-%d}."
    blocks.append(("p", text))


# ---------------------------------------------------------------- rendering


def _md_inline(item: Inline) -> str:
    if isinstance(item, tuple):
        lead, rest = item
        return f"**{lead}**: {rest}" if rest else f"**{lead}**"
    return item


def _md_block(block: Block) -> str:
    kind = block[0]
    if kind == "p":
        return block[1]
    if kind == "quote":
        return "\n".join(f"> {line}".rstrip() for line in block[1].splitlines())
    if kind in ("ul", "ol"):
        lines = []
        for i, item in enumerate(block[1], start=1):
            prefix = "- " if kind == "ul" else f"{i}. "
            text = _md_inline(item).replace("\n", "\n" + " " * len(prefix))
            lines.append(prefix + text)
        return "\n".join(lines)
    header, rows = block[1], block[2]

    def cells(values: Sequence[Any]) -> str:
        return "| " + " | ".join(_md_cell(v) for v in values) + " |"

    return "\n".join([cells(header), "|" + "---|" * len(header)] + [cells(r) for r in rows])


def _md_cell(value: Any) -> str:
    return " ".join(str(value).split()).replace("|", "\\|")


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _html_inline(item: Inline) -> str:
    if isinstance(item, tuple):
        lead, rest = item
        body = f"<strong>{_e(lead)}</strong>" + (f": {_e(rest)}" if rest else "")
        return body.replace("\n", "<br>")
    return _e(item).replace("\n", "<br>")


def _html_block(block: Block) -> str:
    kind = block[0]
    if kind == "p":
        return f"<p>{_e(block[1])}</p>"
    if kind == "quote":
        return f"<blockquote>{_e(block[1])}</blockquote>"
    if kind in ("ul", "ol"):
        items = "".join(f"<li>{_html_inline(i)}</li>" for i in block[1])
        return f"<{kind}>{items}</{kind}>"
    header = "".join(f"<th>{_e(h)}</th>" for h in block[1])
    rows = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in r) + "</tr>" for r in block[2])
    return f"<table><thead><tr>{header}</tr></thead><tbody>{rows}</tbody></table>"


_HTML_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<style>
body {{ font-family: Georgia, serif; max-width: 50em; margin: 2em auto; padding: 0 1em;
  line-height: 1.5; color: #222; }}
h1, h2 {{ font-family: Helvetica, Arial, sans-serif; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
th, td {{ border: 1px solid #bbb; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }}
blockquote {{ white-space: pre-wrap; border-left: 3px solid #bbb; margin-left: 0;
  padding-left: 1em; color: #444; }}
</style>
</head>
<body>
{body}
</body>
</html>
"""

"""Figures a study reports beyond a single model: what the LLM and the student cost in tokens,
money and time (and what labelling the whole corpus with the LLM would have cost), and the
LLM's agreement with the human codes for each label run (codebook version) on the same texts.

The Results page and the methods appendix both read these, so they show the same numbers.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from distill_core.clock import fmt_done, fmt_duration
from distill_core.llm.cost import Price, price_for
from distill_core.reports.formatting import fmt_count
from distill_core.store import (
    Job,
    LabelRun,
    LLMResponse,
    PredictionRun,
    StudentModel,
)
from distill_core.store.models import User
from distill_core.study import memo, projects, runs, scoring, validation
from distill_core.study.access import Capability, entry


@dataclass(frozen=True)
class CostSummary:
    """Spent so far, and the LLM cost of the whole corpus extrapolated from what was observed.

    ``answers`` and tokens count the LLM answers stored for the project's runs (an answer reused
    from the cache is counted once); ``llm_seconds`` is the wall time of its labelling jobs.
    The whole-corpus figures multiply the mean tokens per answer by the corpus size (one answer
    per text) and price them with the price the last labelling job used, or the list price of
    its model; ``whole_corpus_seconds`` assumes the observed answers per second.
    """

    corpus_n: int
    answers: int
    prompt_tokens: int
    completion_tokens: int
    llm_cost_usd: float
    llm_seconds: float
    llm_model: str | None
    price: tuple[float, float] | None
    train_seconds: float
    predict_seconds: float
    predicted_texts: int
    whole_corpus_prompt_tokens: int
    whole_corpus_completion_tokens: int
    whole_corpus_cost_usd: float | None
    whole_corpus_seconds: float | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def whole_corpus_sentence(self) -> str | None:
        """What labelling the whole corpus with the LLM would have taken, beside what the
        student did ("taking about 40 s at the observed rate", never "about 0 minutes");
        None without a price for the LLM."""
        if self.whole_corpus_cost_usd is None:
            return None
        tokens = self.whole_corpus_prompt_tokens + self.whole_corpus_completion_tokens
        taking = (
            f", taking about {fmt_duration(self.whole_corpus_seconds)} at the observed rate"
            if self.whole_corpus_seconds
            else ""
        )
        return (
            f"Labelling all **{fmt_count(self.corpus_n)}** texts with the LLM ({self.llm_model}) "
            f"would have used about {fmt_count(tokens)} tokens and cost about "
            f"**${self.whole_corpus_cost_usd:,.2f}** at the same price{taking}. The student "
            f"labelled {fmt_done(self.predicted_texts, 'texts', self.predict_seconds)} on this "
            "machine, at no per-text cost."
        )


@entry(Capability.READ)
def cost_summary(session: Session, user: User, project_id: int) -> CostSummary:
    """Tokens, money and time spent on the project, and the LLM-for-everything counterfactual."""
    corpus = projects.get_corpus(session, user, project_id)
    corpus_n = corpus.row_count if corpus else 0
    keys = list(session.scalars(select(LabelRun.run_key).where(LabelRun.project_id == project_id)))
    answers, prompt, completion = 0, 0, 0
    if keys:
        answers, prompt, completion = session.execute(
            select(
                func.count(),
                func.coalesce(func.sum(LLMResponse.prompt_tokens), 0),
                func.coalesce(func.sum(LLMResponse.completion_tokens), 0),
            ).where(LLMResponse.run_key.in_(set(keys)), LLMResponse.status != "error")
        ).one()
    label_jobs = list(
        session.scalars(
            select(Job).where(Job.project_id == project_id, Job.kind == "label").order_by(Job.id)
        )
    )
    cost = sum(j.cost_usd or 0.0 for j in label_jobs)
    llm_seconds = sum(_duration(j) for j in label_jobs)
    asked = sum(j.done for j in label_jobs if j.started_at and j.finished_at)
    model, price = _last_price(session, user, project_id)
    models = session.scalars(
        select(StudentModel).where(
            StudentModel.project_id == project_id, StudentModel.status == "ready"
        )
    )
    train_seconds = sum(float((m.meta or {}).get("train_seconds") or 0.0) for m in models)
    passes = list(
        session.scalars(
            select(PredictionRun).where(
                PredictionRun.project_id == project_id, PredictionRun.status == "done"
            )
        )
    )
    per_prompt = prompt / answers if answers else 0.0
    per_completion = completion / answers if answers else 0.0
    whole_prompt = round(per_prompt * corpus_n)
    whole_completion = round(per_completion * corpus_n)
    whole_cost = (
        (whole_prompt * price[0] + whole_completion * price[1]) / 1e6 if price and answers else None
    )
    return CostSummary(
        corpus_n=corpus_n,
        answers=int(answers),
        prompt_tokens=int(prompt),
        completion_tokens=int(completion),
        llm_cost_usd=round(cost, 6),
        llm_seconds=round(llm_seconds, 3),
        llm_model=model,
        price=price,
        train_seconds=round(train_seconds, 3),
        predict_seconds=round(sum(p.seconds for p in passes), 3),
        predicted_texts=sum(p.n for p in passes),
        whole_corpus_prompt_tokens=whole_prompt,
        whole_corpus_completion_tokens=whole_completion,
        whole_corpus_cost_usd=None if whole_cost is None else round(whole_cost, 6),
        whole_corpus_seconds=(llm_seconds / asked * corpus_n) if asked and llm_seconds else None,
    )


def _duration(job: Job) -> float:
    if job.started_at and job.finished_at:
        return max(0.0, (job.finished_at - job.started_at).total_seconds())
    return 0.0


def _last_price(
    session: Session, user: User, project_id: int
) -> tuple[str | None, tuple[float, float] | None]:
    """The model of the project's newest LLM run and the price its job used (or its list price)."""
    run = session.scalar(
        select(LabelRun)
        .where(LabelRun.project_id == project_id, LabelRun.teacher != "local")
        .order_by(LabelRun.id.desc())
        .limit(1)
    )
    if run is None:
        return None, None
    job = session.get(Job, run.job_id) if run.job_id else None
    if job is not None and (job.params or {}).get("price"):
        p = job.params["price"]
        return run.model, (float(p[0]), float(p[1]))
    known: Price | None = price_for(run.model)
    return run.model, (known.input_per_million, known.output_per_million) if known else None


# ---------------------------------------------------------------- agreement per label run


@dataclass(frozen=True)
class RunAgreement:
    """One label run's agreement with the human codes on a part of the current sample."""

    run_id: int
    name: str
    codebook_version: int | None
    model: str
    n: int
    accuracy: float
    accuracy_ci: tuple[float, float]
    macro_f1: float
    macro_f1_ci: tuple[float, float]
    off_codebook: int = 0


@entry(Capability.READ)
def agreement_by_run(
    session: Session, user: User, project_id: int, part: str = "dev"
) -> list[RunAgreement]:
    """The LLM's agreement with the human codes (majority of coders) for every label run with
    results, on the coded texts of one part of the current sample that the run labelled
    (``scoring.score_run``), oldest run first.

    Read the development part to follow codebook revisions; the held-out part is for the final
    judgement only. Kept while the project's stored state is unchanged (``memo``).
    """
    return memo.remembered(
        session,
        project_id,
        "agreement_by_run",
        part,
        lambda: _agreement_by_run(session, user, project_id, part),
    )


def _agreement_by_run(session: Session, user: User, project_id: int, part: str):
    sample = validation.current_sample(session, user, project_id)
    if sample is None:
        return []
    codes = validation.codes_frame(session, user, project_id)
    versions = projects.version_numbers(session, user, project_id)
    out = []
    for run in reversed(runs.project_runs(session, user, project_id, with_results=True)):
        score = scoring.score_run(session, user, project_id, run, part, sample=sample, codes=codes)
        if score is None:
            continue
        result = score.agreement
        version = versions.get(run.codebook_version_id)
        out.append(
            RunAgreement(
                run_id=run.id,
                name=runs.run_title(run, version),
                codebook_version=version,
                model=run.model,
                n=result.n,
                accuracy=result.accuracy,
                accuracy_ci=result.ci["accuracy"],
                macro_f1=result.macro_f1,
                macro_f1_ci=result.ci["macro_f1"],
                off_codebook=score.off_codebook,
            )
        )
    return out

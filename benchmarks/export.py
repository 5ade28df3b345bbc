"""Time the exports of a large project: a 100,000-text corpus with LLM labels on every text and
a student's corpus pass, in a SQLite store, written as CSV (streamed in chunks), Excel, Parquet
and Stata, and the methods appendix.

The texts, labels and predictions are synthetic (``synthetic_texts``; this measures reading the
store and writing files, not quality).
Usage, from the repository root: `python benchmarks/export.py [--rows 100000]`.
Prints seconds and rows/s per step and the size of each file.
"""

from __future__ import annotations

import argparse
import io
import random
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from distill_core.clock import utcnow  # noqa: E402
from distill_core.codebook import Codebook  # noqa: E402
from distill_core.corpus import prepare_corpus, read_table  # noqa: E402
from distill_core.reports import export  # noqa: E402
from distill_core.reports.appendix import methods_appendix  # noqa: E402
from distill_core.store import (  # noqa: E402
    LabelRun,
    LabelRunItem,
    Prediction,
    PredictionRun,
    Store,
    StudentModel,
    bulk,
)
from distill_core.store.db import analyze  # noqa: E402
from distill_core.study import projects  # noqa: E402

LABELS = ["economy", "health", "education", "environment", "crime", "other"]
#: Each category's own words (a text of that topic draws some of its words from these);
#: "other" has none.
TOPIC_WORDS = {
    "economy": ["budget", "tax"],
    "health": ["clinic", "nurse"],
    "education": ["school", "teacher"],
    "environment": ["river", "forest", "rain"],
    "crime": ["police", "court"],
    "other": [],
}
FILLER = ["the", "a", "of", "and", "new", "city", "year"]
WORDS = FILLER + [w for words in TOPIC_WORDS.values() for w in words]
#: The categories' shares in the synthetic corpus (codebook order).
SHARES = [0.25, 0.2, 0.15, 0.15, 0.1, 0.15]
#: The share of texts whose synthetic LLM label is their topic.
LLM_ACCURACY = 0.7


@dataclass(frozen=True)
class Text:
    """One synthetic text: its topic (what a careful human coder would say), the LLM's label
    and the LLM's confidence in it."""

    doc_id: str
    text: str
    topic: str
    llm_label: str
    confidence: float


def synthetic_texts(rows: int, seed: int = 0) -> list[Text]:
    """``rows`` texts of 8–40 words, each about one topic drawn by :data:`SHARES`: about 30%
    of its words are the topic's own, 10% any topic's, the rest filler. The LLM labels a text
    with its topic :data:`LLM_ACCURACY` of the time (else another category), more confidently
    when right (confidence ~ Beta(5, 2) when right, Beta(2, 3) when wrong)."""
    rng = random.Random(seed)
    out = []
    for i in range(rows):
        topic = rng.choices(LABELS, weights=SHARES)[0]
        own = TOPIC_WORDS[topic] or FILLER
        words = []
        for _ in range(rng.randint(8, 40)):
            r = rng.random()
            words.append(rng.choice(own if r < 0.3 else WORDS if r < 0.4 else FILLER))
        right = rng.random() < LLM_ACCURACY
        label = topic if right else rng.choice([x for x in LABELS if x != topic])
        confidence = rng.betavariate(5, 2) if right else rng.betavariate(2, 3)
        out.append(Text(f"t{i}", " ".join(words), topic, label, round(confidence, 4)))
    return out


def build_labelled(store: Store, texts: Sequence[Text], name: str) -> tuple[int, int]:
    """A project with the corpus of ``texts`` (through ``projects.save_corpus``), a codebook
    and one LLM run with a label on every text (``bulk.insert_many``); returns (project id,
    run id)."""
    lines = ["id,text,source"]
    for i, t in enumerate(texts):
        lines.append(f"{t.doc_id},{t.text},{'=cmd' if i % 997 == 0 else 'wire'}")
    table = read_table("\n".join(lines).encode(), "big.csv")
    codebook = Codebook.from_dict(
        {"name": "Bench", "labels": [{"name": n, "definition": n} for n in LABELS]}
    )
    with store.session() as s:
        user = projects.ensure_user(s)
        pid = projects.create_project(s, user, name).id
        corpus = projects.save_corpus(s, user, pid, table, prepare_corpus(table, "text", "id"))
        version = projects.save_codebook(s, user, pid, codebook).version
        run = LabelRun(
            project_id=pid,
            corpus_id=corpus.id,
            codebook_version_id=version.id,
            codebook=codebook.to_dict(),
            teacher="openai",
            model="gpt-4o-mini",
            run_key="bench",
            n_texts=len(texts),
        )
        s.add(run)
        s.flush()
        bulk.insert_many(
            s,
            LabelRunItem.__table__,
            [
                {
                    "run_id": run.id,
                    "doc_id": t.doc_id,
                    "text_hash": f"{i:064d}",
                    "label": t.llm_label,
                    "confidence": t.confidence,
                    "consistency": 1.0,
                    "status": "ok",
                    "answers": 1,
                }
                for i, t in enumerate(texts)
            ],
        )
        analyze(s)  # as labelling.write_results does after a run's results
        return pid, run.id


def write_predictions(session, pass_id: int, texts: Sequence[Text]) -> None:
    """A corpus pass's predictions of ``texts`` written in bulk, not predicted: each text's
    LLM label, with the LLM's confidence and the rest of the probability spread evenly."""
    k = len(LABELS)
    rows = []
    for t in texts:
        j, c = LABELS.index(t.llm_label), t.confidence
        probs = [round(c if i == j else (1 - c) / (k - 1), 6) for i in range(k)]
        rows.append(
            {
                "run_id": pass_id,
                "doc_id": t.doc_id,
                "label": t.llm_label,
                "confidence": c,
                "probs": probs,
            }
        )
    bulk.insert_many(session, Prediction.__table__, rows)


def build(store: Store, rows: int, seed: int = 0, name: str = "Export benchmark") -> int:
    """A project with a corpus, one LLM run over every text (:func:`build_labelled`) and a
    corpus pass of a student that is a model row without files (nothing is trained): its
    predictions are written in bulk (:func:`write_predictions`)."""
    texts = synthetic_texts(rows, seed)
    pid, run_id = build_labelled(store, texts, name)
    with store.session() as s:
        run = s.get(LabelRun, run_id)
        model = StudentModel(
            project_id=pid,
            corpus_id=run.corpus_id,
            label_run_id=run.id,
            status="ready",
            base_model="bench",
            meta={"labels": LABELS},
        )
        s.add(model)
        s.flush()
        pass_ = PredictionRun(
            project_id=pid,
            model_id=model.id,
            corpus_id=run.corpus_id,
            status="done",
            labels={"labels": LABELS},
            n=rows,
            finished_at=utcnow(),
        )
        s.add(pass_)
        s.flush()
        write_predictions(s, pass_.id, texts)
    return pid


def timed(label: str, fn, rows: int):
    start = time.perf_counter()
    out = fn()
    seconds = time.perf_counter() - start
    print(f"  {label:<34} {seconds:7.2f} s  {rows / seconds:>9,.0f} rows/s", flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(f"sqlite:///{Path(tmp) / 'bench.db'}")
        store.migrate()
        started = time.perf_counter()
        pid = build(store, args.rows)
        print(f"built a project of {args.rows:,} texts in {time.perf_counter() - started:.1f} s")
        with store.session() as s:
            frame = timed(
                "labelled_corpus (store → frame)",
                lambda: export.labelled_corpus(s, projects.ensure_user(s), pid),
                args.rows,
            )
        print(f"  columns: {', '.join(map(str, frame.columns))}")
        for fmt in ("csv", "xlsx", "parquet", "dta"):
            buffer = io.BytesIO()
            timed(
                f"write {fmt}",
                lambda fmt=fmt, buffer=buffer: export.write(frame, fmt, buffer),
                args.rows,
            )
            print(f"    {len(buffer.getvalue()) / 1e6:,.1f} MB")
        biggest = 0

        def stream() -> int:
            nonlocal biggest
            total = 0
            for chunk in export.iter_csv(frame):
                biggest = max(biggest, len(chunk))
                total += len(chunk)
            return total

        size = timed("iter_csv (chunks of 10,000 rows)", stream, args.rows)
        print(f"    {size / 1e6:,.1f} MB in chunks of at most {biggest / 1e6:,.1f} MB")
        with store.session() as s:
            timed(
                "methods appendix",
                lambda: methods_appendix(s, projects.ensure_user(s), pid),
                args.rows,
            )


if __name__ == "__main__":
    main()

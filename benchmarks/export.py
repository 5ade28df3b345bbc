"""Time the exports of a large project: a 100,000-text corpus with LLM labels on every text and
a student's corpus pass, in a SQLite store, written as CSV (streamed in chunks), Excel, Parquet
and Stata, and the methods appendix.

The labels are synthetic (this measures reading the store and writing files, not quality).
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
from distill_core.study import projects  # noqa: E402

LABELS = ["economy", "health", "education", "environment", "crime", "other"]
WORDS = [
    "the",
    "a",
    "budget",
    "school",
    "river",
    "police",
    "clinic",
    "tax",
    "forest",
    "court",
    "nurse",
    "teacher",
    "rain",
]


def build(store: Store, rows: int, seed: int = 0, name: str = "Export benchmark") -> int:
    """A project with a corpus, one LLM run over every text and a student's corpus pass."""
    rng = random.Random(seed)
    lines = ["id,text,source"]
    for i in range(rows):
        text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 40)))
        lines.append(f"t{i},{text},{'=cmd' if i % 997 == 0 else 'wire'}")
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
            n_texts=rows,
        )
        s.add(run)
        s.flush()
        bulk.insert_many(
            s,
            LabelRunItem.__table__,
            [
                {
                    "run_id": run.id,
                    "doc_id": f"t{i}",
                    "text_hash": f"{i:064d}",
                    "label": rng.choice(LABELS),
                    "confidence": rng.random(),
                    "consistency": 1.0,
                    "status": "ok",
                    "answers": 1,
                }
                for i in range(rows)
            ],
        )
        model = StudentModel(
            project_id=pid,
            corpus_id=corpus.id,
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
            corpus_id=corpus.id,
            status="done",
            labels={"labels": LABELS},
            n=rows,
            finished_at=utcnow(),
        )
        s.add(pass_)
        s.flush()
        k = len(LABELS)
        bulk.insert_many(
            s,
            Prediction.__table__,
            [
                {
                    "run_id": pass_.id,
                    "doc_id": f"t{i}",
                    "label": LABELS[i % k],
                    "confidence": 0.5,
                    "probs": [0.5 if j == i % k else 0.1 for j in range(k)],
                }
                for i in range(rows)
            ],
        )
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

"""A study with many categories for tests: a 27-label codebook (the Comparative Agendas
Project's major topics and a few more, with long names), a synthetic corpus, two experts'
codes of a validation sample, an LLM run that is right on most texts, and a ready student
with the fair comparison's four rows and a corpus pass (no training: for page and chart
tests)."""

from __future__ import annotations

import random

import pandas as pd

from distill_core.codebook import Codebook, Label
from distill_core.corpus import prepare_corpus, read_table
from distill_core.store import Store
from distill_core.study import projects, validation
from tests.fakes import MappingTeacher, label_corpus, local_user

LABELS_27 = [
    "macroeconomics",
    "civil rights, minority issues and civil liberties",
    "health",
    "agriculture",
    "labor and employment",
    "education",
    "environment",
    "energy",
    "immigration",
    "transportation",
    "law, crime and family issues",
    "social welfare",
    "community development and housing",
    "banking, finance and domestic commerce",
    "defense",
    "space, science, technology and communications",
    "foreign trade",
    "international affairs and foreign aid",
    "government operations",
    "public lands and water management",
    "state and local government administration",
    "weather and natural disasters",
    "fires",
    "arts and entertainment",
    "sports and recreation",
    "death notices",
    "other",
]
LABELS_8 = [
    "economy",
    "health",
    "education",
    "immigration",
    "defense",
    "environment",
    "crime",
    "other",
]


def corpus_frame(labels: list[str], n: int, *, seed: int = 7) -> pd.DataFrame:
    """``n`` distinct texts, each written about one of ``labels`` (skewed: the first labels
    common, the last rare), with an ``id`` column and the true label."""
    rng = random.Random(seed)
    weights = [1 / (i + 1) ** 0.7 for i in range(len(labels))]
    rows = []
    for i in range(n):
        label = rng.choices(labels, weights)[0]
        rows.append(
            {"id": f"doc-{i:05d}", "text": f"Item {i}: a news story on {label}.", "truth": label}
        )
    return pd.DataFrame(rows)


def noisy(truth: list[str], labels: list[str], accuracy: float, seed: int) -> list[str]:
    """``truth`` with a share ``1 - accuracy`` replaced, mostly by the neighbouring label (so
    that a few confusions stand out) and sometimes by any label."""
    rng = random.Random(seed)
    out = []
    for t in truth:
        if rng.random() < accuracy:
            out.append(t)
        elif rng.random() < 0.7:
            out.append(labels[(labels.index(t) + 1) % len(labels)])
        else:
            out.append(rng.choice(labels))
    return out


def build_project(
    store: Store, labels: list[str], *, name: str, n_texts: int = 600, n_sample: int = 240
) -> int:
    """A project of ``labels`` with a corpus, codebook, coded sample, an LLM run and a ready
    student with its comparison and a corpus pass; returns its id."""
    from tests.fakes import add_ready_model

    frame = corpus_frame(labels, n_texts)
    table = read_table(frame[["id", "text"]].to_csv(index=False).encode(), "many.csv")
    truth = dict(zip(frame["id"], frame["truth"], strict=True))
    with store.session() as s:
        user = local_user(s)
        pid = projects.create_project(s, user, name).id
        projects.save_corpus(s, user, pid, table, prepare_corpus(table, "text", "id"))
        codebook = Codebook(
            name=name,
            instructions="Assign the one topic that best fits the headline.",
            labels=[Label(c, f"Stories mainly about {c}.") for c in labels],
        )
        projects.save_codebook(s, user, pid, codebook)
        sample_ids = list(frame["id"][:n_sample])
        validation.sample_from_ids(s, user, pid, sample_ids, seed=1, test_share=0.5)
        second = noisy([truth[d] for d in sample_ids], labels, 0.9, seed=2)
        for doc_id, other in zip(sample_ids, second, strict=True):
            validation.save_code(s, user, pid, doc_id, "expert_a", truth[doc_id], source="test")
            validation.save_code(s, user, pid, doc_id, "expert_b", other, source="test")
    texts = dict(zip(frame["id"], frame["text"], strict=True))
    llm = noisy(list(frame["truth"]), labels, 0.75, seed=3)
    by_text = {texts[d]: label for d, label in zip(frame["id"], llm, strict=True)}
    run_id = label_corpus(store, pid, MappingTeacher(by_text, labels[-1]))
    add_ready_model(store, pid, run_id, corpus_pass=True, predict=student_rows(labels))
    with store.session() as s:
        local_user(s).last_project_id = pid  # the project the app opens
    return pid


def student_rows(labels: list[str]):
    """How the comparison's other rows predict (for ``add_ready_model``): from the truth,
    with the accuracy of each kind of model."""

    def rows(truth: list[str]) -> dict[str, list[str]]:
        return {
            "student_llm": noisy(truth, labels, 0.7, seed=4),
            "student_human": noisy(truth, labels, 0.65, seed=5),
            "tfidf_llm": noisy(truth, labels, 0.5, seed=6),
        }

    return rows

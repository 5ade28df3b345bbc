"""A classic baseline for the student: TF-IDF (word 1–2-grams, sublinear tf) and logistic
regression, trained on the same labels in about a second. A fine-tuned student should beat it;
if it does not, the labels (or the task) are the problem, not the model."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

#: Inverse regularisation strength of the logistic regression. Measured with
#: benchmarks/distill_quality.py --baseline-c (tweeteval_emotion, 500 teacher labels): macro-F1
#: C=1 0.186, C=3 0.230, C=10 0.260, C=30 0.287; 10 is kept as the milder of the good values
#: (one task only; weak regularisation fits the teacher's mistakes too).
DEFAULT_C = 10.0


@dataclass
class Baseline:
    """A fitted TF-IDF + logistic-regression classifier."""

    pipeline: Any
    labels: list[str]

    def predict(self, texts: Sequence[str]) -> tuple[list[str], list[float]]:
        """(predicted labels, probability of each predicted label) in input order."""
        clean = ["" if t is None else str(t) for t in texts]
        if not clean:
            return [], []
        probs = self.pipeline.predict_proba(clean)
        best = probs.argmax(axis=1)
        classes = self.pipeline.classes_
        return [str(classes[i]) for i in best], [
            float(p) for p in probs[np.arange(len(best)), best]
        ]


def fit_baseline(
    texts: Sequence[str], labels: Sequence[str], seed: int = 42, *, c: float = DEFAULT_C
) -> Baseline:
    """Fit TF-IDF (1–2-grams, sublinear tf, min_df=2; min_df=1 when that leaves no words)
    + logistic regression (C=``c``, no class weights); rows without a label are ignored."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    rows = [
        ("" if t is None else str(t), str(y))
        for t, y in zip(texts, labels, strict=True)
        if y is not None and str(y).strip()
    ]
    if len({y for _, y in rows}) < 2:
        raise ValueError("The baseline needs at least 2 classes among the labels.")
    x = [t for t, _ in rows]
    y = [lab for _, lab in rows]
    for min_df in (2, 1):
        pipe = Pipeline(
            [
                (
                    "tfidf",
                    TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=min_df),
                ),
                ("lr", LogisticRegression(C=c, max_iter=2000, random_state=seed)),
            ]
        )
        try:
            pipe.fit(x, y)
            break
        except ValueError:  # empty vocabulary with min_df=2 on a tiny set
            if min_df == 1:
                raise
    return Baseline(pipeline=pipe, labels=[str(c_) for c_ in pipe.classes_])


def validation_macro_f1(
    texts: Sequence[str],
    labels: Sequence[str],
    train_idx: Sequence[int],
    val_idx: Sequence[int],
    seed: int = 42,
) -> float | None:
    """Macro-F1 on the rows ``val_idx`` of the baseline fitted on the rows ``train_idx``: the
    bar a student trained and validated on the same split should clear (None without
    validation rows or with one class among the training rows)."""
    from sklearn.metrics import f1_score

    if not val_idx:
        return None
    try:
        fitted = fit_baseline([texts[i] for i in train_idx], [labels[i] for i in train_idx], seed)
    except ValueError:
        return None
    pred = fitted.predict([texts[i] for i in val_idx])[0]
    gold = [labels[i] for i in val_idx]
    return float(f1_score(gold, pred, average="macro", zero_division=0))

"""A learning curve with the fast recipe: the frozen encoder's embeddings (each text once) and
the head fitted on growing, nested shares of the teacher-labelled texts, each scored with 95%
intervals on the same texts, so a researcher sees whether more labels would still help.

torch and transformers load inside the function.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from distill_core.student.args import TrainingArgs, TrainingError

#: Shares of the labelled texts the curve trains on.
DEFAULT_SHARES = (0.25, 0.5, 1.0)
#: The stored form's version of :class:`CurvePoint` lists.
CURVE_VERSION = 1


@dataclass
class CurvePoint:
    """The head trained on ``n`` texts, scored on the evaluation texts: macro-F1 and accuracy
    with their 95% intervals (agreement.compare: BCa bootstrap, Wilson)."""

    n: int
    macro_f1: float | None
    macro_f1_ci: list[float | None] = field(default_factory=lambda: [None, None])
    accuracy: float | None = None
    accuracy_ci: list[float | None] = field(default_factory=lambda: [None, None])

    @classmethod
    def from_dict(cls, data: dict) -> CurvePoint:
        names = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in names})


def nested_subsets(n: int, shares: Sequence[float], seed: int) -> list[list[int]]:
    """Row indices for each share of ``n`` rows: one seeded shuffle, cut at each share, so every
    smaller set lies inside the larger ones (the curve shows what adding texts does)."""
    order = list(range(n))
    random.Random(seed).shuffle(order)
    return [sorted(order[: max(1, round(share * n))]) for share in sorted(shares)]


def head_curve(
    texts: Sequence[str],
    labels: Sequence[str],
    label_names: Sequence[str],
    eval_texts: Sequence[str],
    eval_truth: Sequence[str],
    *,
    args: TrainingArgs | None = None,
    shares: Sequence[float] = DEFAULT_SHARES,
    confidences: Sequence[float | None] | None = None,
    consistencies: Sequence[float | None] | None = None,
    on_progress: Callable[[str], None] | None = None,
) -> list[CurvePoint]:
    """The head recipe (``args``' base model, certainty mode, seed) on each share of
    (``texts``, ``labels``), scored against ``eval_truth``; nothing is saved. Raises
    TrainingError in one sentence (too few texts, one class, an unloadable model)."""
    import numpy as np

    from distill_core import agreement
    from distill_core.student.embed import Embedder
    from distill_core.student.head import fit_head
    from distill_core.student.targets import certainties, teacher_targets
    from distill_core.student.train import MIN_EXAMPLES, device, load_base, max_length_for

    args = args or TrainingArgs(recipe="head")
    say = on_progress or (lambda _message: None)
    names = list(label_names)
    index = {name: i for i, name in enumerate(names)}
    rows = [i for i, y in enumerate(labels) if y in index]
    if len(rows) < MIN_EXAMPLES:
        raise TrainingError(f"A learning curve needs at least {MIN_EXAMPLES} labelled texts.")
    if not eval_texts:
        raise TrainingError("A learning curve needs texts to score it on.")
    if len({labels[i] for i in rows}) < 2:
        raise TrainingError(
            "The LLM labels left for a learning curve hold only one category; it needs two."
        )
    say("Loading the encoder…")
    model, tokenizer, resolved = load_base(args.base_model, names)
    dev = device()
    max_length, _ = max_length_for(args, model, tokenizer, [texts[i] for i in rows], dev == "cuda")
    embedder = Embedder(model.base_model, tokenizer, resolved, max_length, device=dev)
    say(f"Embedding {len(rows) + len(eval_texts):,} texts…")
    x = embedder.encode([texts[i] for i in rows])
    x_eval = embedder.encode(list(eval_texts))
    y = np.array([index[labels[i]] for i in rows])
    cert_all = certainties(confidences, consistencies, len(texts))
    cert = [cert_all[i] for i in rows]
    points = []
    for subset in nested_subsets(len(rows), shares, args.seed):
        say(f"Fitting the head on {len(subset):,} texts…")
        sub_y = y[subset]
        if len(set(sub_y.tolist())) < 2:
            points.append(CurvePoint(len(subset), None))
            continue
        q, w = teacher_targets(
            sub_y.tolist(),
            len(names),
            [cert[i] for i in subset],
            args.certainty,
            args.label_smoothing,
        )
        fit = fit_head(x[subset], sub_y.tolist(), q, w, args.seed, args.noise_filter)
        pred = [names[j] for j in (x_eval @ fit.weight.T + fit.bias).argmax(axis=1)]
        scored = agreement.compare(list(eval_truth), pred, labels=names, seed=args.seed)
        points.append(
            CurvePoint(
                len(subset),
                _number(scored.macro_f1),
                [_number(v) for v in scored.ci.get("macro_f1", (None, None))],
                _number(scored.accuracy),
                [_number(v) for v in scored.ci.get("accuracy", (None, None))],
            )
        )
    return points


def _number(value: Any) -> float | None:
    return None if value is None or value != value else round(float(value), 6)

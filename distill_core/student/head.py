"""The fast recipe's classifier: a softmax (multinomial logistic-regression) head on frozen,
mean-pooled sentence embeddings, trained with soft targets and per-text weights, its L2
strength chosen by cross-validation on the training texts; and the model that puts the frozen
encoder and the head together for prediction (``Predictor`` loads it like any student).

The head minimises  Σ_i w_i·CE(q_i, softmax(W x_i + b)) / Σ_i w_i + ||W||² / (2·C·n)
(scikit-learn's LogisticRegression objective divided by C·n, with soft targets q and weights
w), by L-BFGS on all rows at once: a second or two for a few thousand 384-wide vectors.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

#: The head's weights in a model folder (safetensors: no pickle) and its description.
HEAD_WEIGHTS = "head.safetensors"
HEAD_CONFIG = "head.json"
#: Inverse L2 strengths tried by cross-validation (scikit-learn's C).
C_GRID = (1.0, 3.0, 10.0, 30.0, 100.0)
CV_FOLDS = 5
#: The mistake filter judges a label's rows only when it has at least this many training rows
#: (measured on four tasks, benchmarks/README.md: 30 or 50 cost the 20-category task
#: 0.004–0.009 macro-F1, 80 0.002).
MIN_ROWS_TO_JUDGE = 80


@dataclass
class HeadSpec:
    """How a saved head turns encoder states into logits."""

    kind: str = "linear"  # softmax regression on the pooled vector
    pooling: str = "mean"
    normalize: bool = True
    dim: int = 384
    n_labels: int = 2
    c: float = 10.0
    cv: list[dict] = field(default_factory=list)  # [{"c": …, "macro_f1": …}] per C tried
    version: int = 1

    @classmethod
    def from_dict(cls, data: dict) -> HeadSpec:
        names = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in names})


def fit_linear(
    x: np.ndarray,
    targets: np.ndarray,
    weights: np.ndarray | None,
    c: float,
    *,
    max_iter: int = 500,
    init: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(W k × d, b k) minimising the weighted soft cross-entropy plus ||W||²/(2·C·n), by
    scipy's L-BFGS-B on one BLAS thread (a small problem: more threads only fight over busy
    cores; measured 10× slower with the default threads at a load of 10 on 2 cores). ``x`` is
    dense or a scipy sparse matrix (embeddings beside TF-IDF columns: distill_quality.py's
    screen)."""
    from scipy import sparse
    from scipy.optimize import minimize
    from scipy.special import log_softmax
    from threadpoolctl import threadpool_limits

    xd = (
        sparse.csr_matrix(x, dtype=np.float64)
        if sparse.issparse(x)
        else np.asarray(x, dtype=np.float64)
    )
    q = np.asarray(targets, dtype=np.float64)
    n, d = xd.shape
    k = q.shape[1]
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64)
    w = w / max(w.sum(), 1e-12)
    mass = q.sum(axis=1, keepdims=True)
    penalty = 1.0 / (c * max(1, n))

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        W = theta[: k * d].reshape(k, d)
        b = theta[k * d :]
        logp = log_softmax(xd @ W.T + b, axis=1)
        loss = -float((w * (q * logp).sum(axis=1)).sum()) + 0.5 * penalty * float((W * W).sum())
        g = (np.exp(logp) * mass - q) * w[:, None]
        grad_w = np.asarray((xd.T @ g).T) + penalty * W
        return loss, np.concatenate([grad_w.ravel(), g.sum(axis=0)])

    start = (
        np.zeros(k * d + k)
        if init is None
        else np.concatenate([np.asarray(init[0], dtype=np.float64).ravel(), init[1]])
    )
    with threadpool_limits(limits=1):
        result = minimize(
            objective, start, jac=True, method="L-BFGS-B", options={"maxiter": max_iter}
        )
    theta = result.x
    return (
        theta[: k * d].reshape(k, d).astype(np.float32),
        theta[k * d :].astype(np.float32),
    )


def _macro_f1(y_true: Sequence[int], y_pred: Sequence[int]) -> float:
    from sklearn.metrics import f1_score

    return float(f1_score(y_true, y_pred, average="macro", zero_division=0))


def choose_c(
    x: np.ndarray,
    y: Sequence[int],
    targets: np.ndarray,
    weights: np.ndarray,
    seed: int,
    grid: Sequence[float] = C_GRID,
    folds: int = CV_FOLDS,
) -> tuple[float, list[dict], np.ndarray | None]:
    """The C of ``grid`` with the best cross-validated macro-F1 (against the labels ``y``;
    stratified folds, seeded), the smaller C on a tie; every C's score; and the out-of-fold
    probabilities at that C (n × k; None when there are too few rows per label to fold)."""
    from scipy.special import softmax
    from sklearn.model_selection import StratifiedKFold

    y_arr = np.asarray(y)
    counts = np.bincount(y_arr)
    k = int(min(folds, counts[counts > 0].min())) if len(counts) else 0
    if k < 2 or len(grid) == 1:
        return float(grid[len(grid) // 2]), [], None
    split = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed % (2**32))
    scores: dict[float, list[float]] = {c: [] for c in grid}
    oof = {c: np.zeros((len(y_arr), targets.shape[1])) for c in grid}
    for tr, va in split.split(x, y_arr):
        init = None
        for c in sorted(grid):  # warm start along the path: weaker penalty next
            W, b = fit_linear(x[tr], targets[tr], weights[tr], c, init=init)
            init = (W, b)
            logits = x[va] @ W.T + b
            oof[c][va] = softmax(logits, axis=1)
            scores[c].append(_macro_f1(y_arr[va], logits.argmax(axis=1)))
    table = [{"c": c, "macro_f1": round(float(np.mean(scores[c])), 6)} for c in grid]
    best = max(table, key=lambda r: (r["macro_f1"], -r["c"]))
    return float(best["c"]), table, oof[best["c"]]


def likely_mistakes(
    oof: np.ndarray, y: Sequence[int], share: float, min_rows: int = MIN_ROWS_TO_JUDGE
) -> np.ndarray:
    """Which rows' labels look like the teacher's mistakes (a boolean mask): the out-of-fold
    probability of the row's own label is below ``share`` of that label's mean out-of-fold
    probability (a per-label threshold, after confident learning: Northcutt et al. 2021).
    Only labels with at least ``min_rows`` rows are judged (fewer give out-of-fold
    probabilities too weak to tell a mistake from a hard text: on the 20-category task the
    filter then set aside a fifth of the human codes). Every label keeps at least its most
    likely row; ``share`` 0 marks none."""
    y_arr = np.asarray(y)
    own = oof[np.arange(len(y_arr)), y_arr]
    marked = np.zeros(len(y_arr), dtype=bool)
    if share <= 0:
        return marked
    for label in np.unique(y_arr):
        rows = np.flatnonzero(y_arr == label)
        if len(rows) < min_rows:
            continue
        low = own[rows] < share * own[rows].mean()
        if low.all():
            low[np.argmax(own[rows])] = False
        marked[rows[low]] = True
    return marked


@dataclass
class HeadFit:
    """A fitted head: weights (k × d), bias (k), the chosen C and every C's cross-validated
    score, and which rows were set aside as likely mistakes before the final fit."""

    weight: np.ndarray
    bias: np.ndarray
    c: float
    cv: list[dict]
    set_aside: np.ndarray  # boolean mask over the rows given


def fit_head(
    x: np.ndarray,
    y: Sequence[int],
    targets: np.ndarray,
    weights: np.ndarray,
    seed: int,
    noise_filter: float = 0.0,
) -> HeadFit:
    """The head recipe's fit, one piece for the student and the learning curve: C by
    cross-validation (:func:`choose_c`); with ``noise_filter`` > 0 the rows whose label the
    out-of-fold predictions find unlikely (:func:`likely_mistakes`) are set aside, C is chosen
    again on the rows kept (measured a little better than keeping the first C), and the head
    is fitted on them."""
    c, cv, oof = choose_c(x, y, targets, weights, seed)
    aside = (
        likely_mistakes(oof, y, noise_filter) if oof is not None else np.zeros(len(y), dtype=bool)
    )
    keep = ~aside
    if aside.any():  # the kept rows are cleaner: choose C again on them
        y_kept = [label for label, k in zip(y, keep, strict=True) if k]
        c, cv, _ = choose_c(x[np.flatnonzero(keep)], y_kept, targets[keep], weights[keep], seed)
    weight, bias = fit_linear(x[np.flatnonzero(keep)], targets[keep], weights[keep], c)
    return HeadFit(weight, bias, c, cv, aside)


# --------------------------------------------------------------------------- the saved model


def _head_module(weight: Any, bias: Any) -> Any:
    import torch

    layer = torch.nn.Linear(weight.shape[1], weight.shape[0])
    with torch.no_grad():
        layer.weight.copy_(torch.as_tensor(weight))
        layer.bias.copy_(torch.as_tensor(bias))
    return layer


def encoder_with_head(encoder: Any, weight: Any, bias: Any, spec: HeadSpec) -> Any:
    """A torch module called as a sequence classifier (``model(input_ids=…,
    attention_mask=…).logits``): the encoder's mean-pooled, normalised states through the head."""
    import torch
    from transformers.modeling_outputs import SequenceClassifierOutput

    from distill_core.student.embed import mean_pool

    class EncoderWithHead(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = encoder
            self.head = _head_module(weight, bias)
            self.config = encoder.config
            self.spec = spec

        def forward(self, input_ids=None, attention_mask=None, **_: Any):
            hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask)
            pooled = mean_pool(hidden.last_hidden_state, attention_mask)
            return SequenceClassifierOutput(logits=self.head(pooled))

    return EncoderWithHead()


def save_head(folder: Path, weight: np.ndarray, bias: np.ndarray, spec: HeadSpec) -> None:
    """Write the head's weights and description into a model folder."""
    import torch
    from safetensors.torch import save_file

    save_file(
        {
            "weight": torch.as_tensor(weight, dtype=torch.float32).contiguous(),
            "bias": torch.as_tensor(bias, dtype=torch.float32).contiguous(),
        },
        str(folder / HEAD_WEIGHTS),
    )
    (folder / HEAD_CONFIG).write_text(json.dumps(asdict(spec), indent=2), encoding="utf-8")


def is_head_model(folder: Path) -> bool:
    """Whether a model folder holds a frozen-encoder student (encoder + head files)."""
    return (Path(folder) / HEAD_WEIGHTS).is_file()


def load_head_model(folder: Path) -> Any:
    """The frozen encoder and head saved in ``folder``, as one module (see
    :func:`encoder_with_head`); labels are in the encoder's config (id2label)."""
    from safetensors.torch import load_file
    from transformers import AutoModel

    folder = Path(folder)
    tensors = load_file(str(folder / HEAD_WEIGHTS))
    spec_path = folder / HEAD_CONFIG
    spec = HeadSpec.from_dict(
        json.loads(spec_path.read_text(encoding="utf-8")) if spec_path.is_file() else {}
    )
    encoder = AutoModel.from_pretrained(folder, local_files_only=True)
    return encoder_with_head(encoder, tensors["weight"], tensors["bias"], spec)


def mean_soft_ce(logits: np.ndarray, targets: np.ndarray, weights: np.ndarray | None) -> float:
    """Weighted mean soft cross-entropy of numpy logits."""
    from scipy.special import log_softmax

    per_row = -(targets * log_softmax(logits, axis=1)).sum(axis=1)
    w = np.ones(len(per_row)) if weights is None else np.asarray(weights, dtype=np.float64)
    return float((w * per_row).sum() / max(w.sum(), 1e-12))

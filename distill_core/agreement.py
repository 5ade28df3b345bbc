"""Agreement between two codings of the same texts: LLM labels against human codes, coder against coder.

Function-first API (cleanlab style). Every metric follows scikit-learn's conventions
(``zero_division=0``; with ``labels=None`` the classes are the sorted union of the labels seen)
and Krippendorff's nominal alpha follows the ``krippendorff`` package; the formulas are
implemented here with numpy so the core needs neither package at run time.

Conventions shared by every function taking ``(gold, pred)``:

* ``gold`` (or ``a``) are reference codes and may not be missing; ``pred`` (or ``b``) may be:
  a missing prediction (``None``/NaN, e.g. an invalid LLM answer) becomes the answer
  :data:`MISSING` (``"∅"``), which is always wrong. It counts against accuracy, recall, kappa
  and alpha, but it is an answer, not a class: it is never one of the classes averaged over in
  macro/weighted F1 and has no entry in ``per_class``.
* Labels are compared as strings (``str(x)``), so ``1`` and ``"1"`` are the same label.
* Undefined chance-corrected statistics (Cohen's kappa or Krippendorff's alpha when expected
  disagreement is 0, e.g. every code is the same class) are ``nan``, as scikit-learn returns
  for kappa; :meth:`Agreement.to_dict` writes ``nan`` as ``null``.
* Empty input raises ``ValueError`` with one clear sentence.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import combinations
from statistics import NormalDist
from typing import Any

import numpy as np

from distill_core.values import is_missing

#: The answer a missing or invalid prediction is counted as (always wrong, never a class).
MISSING = "∅"
#: Metrics :func:`compare` gives bootstrap confidence intervals for (plus ``binary_f1``).
CI_METRICS = ("accuracy", "macro_f1", "weighted_f1", "cohen_kappa", "krippendorff_alpha")
#: Bootstrap resamples are drawn in chunks of at most this many item indices (memory bound).
_CHUNK_CELLS = 2_000_000


@dataclass(frozen=True)
class ClassMetrics:
    """Precision, recall, F1 and support (number of gold items) of one class."""

    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True)
class Agreement:
    """Everything :func:`compare` measures about predictions against gold codes.

    ``confusion[i][j]`` counts items with gold ``labels[i]`` predicted ``labels[j]``; ``labels``
    ends with :data:`MISSING` when some predictions were missing or invalid (that row is all 0).
    ``ci`` maps a metric name to its bootstrap percentile interval (empty when ``n_boot=0``).
    """

    n: int
    accuracy: float
    macro_f1: float
    weighted_f1: float
    cohen_kappa: float
    krippendorff_alpha: float
    per_class: dict[str, ClassMetrics]
    binary_f1: float | None
    positive_label: str | None
    ci: dict[str, tuple[float, float]]
    confusion: list[list[int]]
    labels: list[str]
    n_missing: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (``nan`` becomes ``None``, CIs become ``[low, high]`` lists)."""
        return {
            "n": self.n,
            "accuracy": _json_float(self.accuracy),
            "macro_f1": _json_float(self.macro_f1),
            "weighted_f1": _json_float(self.weighted_f1),
            "cohen_kappa": _json_float(self.cohen_kappa),
            "krippendorff_alpha": _json_float(self.krippendorff_alpha),
            "per_class": {
                label: {
                    "precision": _json_float(m.precision),
                    "recall": _json_float(m.recall),
                    "f1": _json_float(m.f1),
                    "support": m.support,
                }
                for label, m in self.per_class.items()
            },
            "ci": {k: [_json_float(lo), _json_float(hi)] for k, (lo, hi) in self.ci.items()},
            "binary_f1": _json_float(self.binary_f1),
            "positive_label": self.positive_label,
            "labels": list(self.labels),
            "confusion": [list(row) for row in self.confusion],
            "n_missing": self.n_missing,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Agreement:
        """The record from :meth:`to_dict`'s form (``None`` reads back as ``nan``)."""

        def num(x: Any) -> float:
            return math.nan if x is None else float(x)

        return cls(
            n=int(data["n"]),
            accuracy=num(data.get("accuracy")),
            macro_f1=num(data.get("macro_f1")),
            weighted_f1=num(data.get("weighted_f1")),
            cohen_kappa=num(data.get("cohen_kappa")),
            krippendorff_alpha=num(data.get("krippendorff_alpha")),
            per_class={
                label: ClassMetrics(
                    precision=num(m.get("precision")),
                    recall=num(m.get("recall")),
                    f1=num(m.get("f1")),
                    support=int(m.get("support") or 0),
                )
                for label, m in (data.get("per_class") or {}).items()
            },
            binary_f1=None if data.get("binary_f1") is None else float(data["binary_f1"]),
            positive_label=data.get("positive_label"),
            ci={k: (num(v[0]), num(v[1])) for k, v in (data.get("ci") or {}).items()},
            confusion=[list(row) for row in data.get("confusion") or []],
            labels=list(data.get("labels") or []),
            n_missing=int(data.get("n_missing") or 0),
        )


@dataclass(frozen=True)
class CoderPair:
    """Agreement of two coders on the items both coded (``n`` of them; metrics nan when 0)."""

    coder_a: str
    coder_b: str
    n: int
    percent_agreement: float
    cohen_kappa: float


@dataclass(frozen=True)
class PairwiseAgreement:
    """Inter-coder agreement: every pair of coders, and Krippendorff's alpha over all of them."""

    coders: list[str]
    n_items: int
    pairs: list[CoderPair]
    krippendorff_alpha: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (``nan`` becomes ``None``)."""
        return {
            "coders": list(self.coders),
            "n_items": self.n_items,
            "krippendorff_alpha": _json_float(self.krippendorff_alpha),
            "pairs": [
                {
                    "coder_a": p.coder_a,
                    "coder_b": p.coder_b,
                    "n": p.n,
                    "percent_agreement": _json_float(p.percent_agreement),
                    "cohen_kappa": _json_float(p.cohen_kappa),
                }
                for p in self.pairs
            ],
        }


# --------------------------------------------------------------------------- public metrics


def compare(
    gold: Sequence[Any],
    pred: Sequence[Any],
    *,
    labels: Sequence[str] | None = None,
    positive_label: str | None = None,
    n_boot: int = 1000,
    seed: int = 0,
) -> Agreement:
    """All agreement metrics of ``pred`` against ``gold`` (two sequences of length n) with CIs.

    ``labels`` (optional) are the codebook's classes, in display order: a gold code outside them
    is a ``ValueError``; a prediction outside them counts as invalid (:data:`MISSING`), like a
    missing one. Without ``labels`` the classes are the sorted union of the codes seen.
    ``positive_label`` adds ``binary_f1`` (F1 of that class, one-vs-rest). Krippendorff's alpha
    treats gold and pred as two coders of n units, with :data:`MISSING` as one more value.
    ``ci`` holds percentile bootstrap intervals (``n_boot`` resamples of the n items, seeded);
    a class absent from a resample counts there with F1 0.
    """
    gold_s = _gold_strings(gold, "gold")
    pred_s = _pred_strings(pred, len(gold_s))
    if labels is not None:
        labels = _label_list(labels)
        known = set(labels)
        for g in gold_s:
            if g not in known:
                raise ValueError(f"Gold label {g!r} is not one of the labels {labels}.")
        pred_s = [p if p in known else MISSING for p in pred_s]
    coded = _encode(gold_s, pred_s, labels)
    if positive_label is not None:
        positive_label = str(positive_label)
        if positive_label not in coded.labels[: coded.k]:
            raise ValueError(
                f"The positive label {positive_label!r} is not one of the labels "
                f"{coded.labels[: coded.k]}."
            )
    cm = coded.confusion()
    stats = _batch_stats(cm[None], coded.k, coded.index.get(positive_label))
    pc = _per_class_from_confusion(cm, coded.labels, coded.k)
    ci: dict[str, tuple[float, float]] = {}
    if n_boot > 0:
        reps: dict[str, list[np.ndarray]] = {}
        for idx in _resample_indices(coded.n, n_boot, seed):
            batch = _batch_confusions(coded, idx)
            for name, values in _batch_stats(
                batch, coded.k, coded.index.get(positive_label)
            ).items():
                reps.setdefault(name, []).append(values)
        ci = {name: _percentile_ci(np.concatenate(v), 0.05) for name, v in reps.items()}
    return Agreement(
        n=coded.n,
        accuracy=float(stats["accuracy"][0]),
        macro_f1=float(stats["macro_f1"][0]),
        weighted_f1=float(stats["weighted_f1"][0]),
        cohen_kappa=float(stats["cohen_kappa"][0]),
        krippendorff_alpha=float(stats["krippendorff_alpha"][0]),
        per_class=pc,
        binary_f1=float(stats["binary_f1"][0]) if positive_label is not None else None,
        positive_label=positive_label,
        ci=ci,
        confusion=cm.astype(int).tolist(),
        labels=list(coded.labels),
        n_missing=int(sum(p == MISSING for p in pred_s)),
    )


def accuracy(gold: Sequence[Any], pred: Sequence[Any]) -> float:
    """Share of the n items whose prediction equals the gold code: ``sum(gold == pred) / n``."""
    coded = _encode(_gold_strings(gold, "gold"), _pred_strings(pred, len(gold)), None)
    return float(np.mean(coded.g == coded.p))


def per_class(
    gold: Sequence[Any], pred: Sequence[Any], labels: Sequence[str] | None = None
) -> dict[str, ClassMetrics]:
    """Per class c: precision ``tp/(tp+fp)``, recall ``tp/(tp+fn)``, F1 ``2tp/(2tp+fp+fn)``, support.

    Each ratio is 0 when its denominator is 0 (scikit-learn's ``zero_division=0``). Classes are
    ``labels`` in the given order, or the sorted union of gold and predicted codes.
    """
    coded = _encode(_gold_strings(gold, "gold"), _pred_strings(pred, len(gold)), labels)
    return _per_class_from_confusion(coded.confusion(), coded.labels, coded.k)


def macro_f1(
    gold: Sequence[Any], pred: Sequence[Any], labels: Sequence[str] | None = None
) -> float:
    """Unweighted mean of the per-class F1 over the classes (see :func:`per_class`)."""
    coded = _encode(_gold_strings(gold, "gold"), _pred_strings(pred, len(gold)), labels)
    return float(_batch_stats(coded.confusion()[None], coded.k, None)["macro_f1"][0])


def weighted_f1(
    gold: Sequence[Any], pred: Sequence[Any], labels: Sequence[str] | None = None
) -> float:
    """Mean of the per-class F1 weighted by support: ``sum_c F1_c * n_c / sum_c n_c``.

    When no class has support (only possible with explicit ``labels``) the plain mean, as
    scikit-learn does.
    """
    coded = _encode(_gold_strings(gold, "gold"), _pred_strings(pred, len(gold)), labels)
    return float(_batch_stats(coded.confusion()[None], coded.k, None)["weighted_f1"][0])


def binary_f1(gold: Sequence[Any], pred: Sequence[Any], positive: str) -> float:
    """F1 of the class ``positive`` against all others: ``2tp/(2tp+fp+fn)``, 0 when undefined.

    Equals scikit-learn's ``f1_score(average="binary", pos_label=positive)`` on two-class data;
    on multi-class data it is that class's one-vs-rest F1.
    """
    gold_s = _gold_strings(gold, "gold")
    pred_s = _pred_strings(pred, len(gold_s))
    positive = str(positive)
    g = np.array([x == positive for x in gold_s])
    p = np.array([x == positive for x in pred_s])
    tp = float(np.sum(g & p))
    denom = float(np.sum(g) + np.sum(p))
    return 2 * tp / denom if denom > 0 else 0.0


def cohen_kappa(a: Sequence[Any], b: Sequence[Any], labels: Sequence[str] | None = None) -> float:
    """Cohen's kappa of two codings of n items: ``(p_o - p_e) / (1 - p_e)``.

    ``p_o`` is the observed agreement and ``p_e = sum_c (n_a,c * n_b,c) / n^2`` the agreement
    expected from the two marginals. With ``labels`` only items both coded within ``labels``
    count. ``nan`` when ``p_e == 1`` (both codings use one and the same class), as the installed
    scikit-learn returns; a ``ValueError`` when no code of ``a`` is among ``labels``.
    """
    coded = _encode(_gold_strings(a, "a"), _pred_strings(b, len(a)), labels)
    cm = coded.confusion()
    if labels is not None:
        if not np.any(coded.g < coded.k):
            raise ValueError("None of the codes in the first coding is one of the labels.")
        cm = cm[: coded.k, : coded.k]
    return float(_kappa_batch(cm[None])[0])


def krippendorff_alpha(units: Sequence[Sequence[Any]]) -> float:
    """Krippendorff's alpha for nominal codes: ``1 - D_o / D_e``.

    ``units`` is units × coders: ``units[u]`` lists the codes unit u received, one entry per
    coder, ``None``/NaN where a coder gave none (lists may differ in length). Units with fewer
    than two codes are not pairable and are dropped. With the coincidence matrix
    ``o[c][k] = sum_u (pairs of codes c, k in u) / (m_u - 1)``, ``n_c = sum_k o[c][k]`` and
    ``n = sum_c n_c``: ``alpha = 1 - (n - 1) * (n - trace(o)) / (n^2 - sum_c n_c^2)``.
    Matches ``krippendorff.alpha(level_of_measurement="nominal")`` where that is defined; where
    it raises (a single value, or no pairable unit) this returns ``nan``.
    """
    if len(units) == 0:
        raise ValueError("No units to compute Krippendorff's alpha on.")
    values: dict[Any, int] = {}
    rows: list[list[int]] = []
    for unit in units:
        codes = [c for c in unit if not is_missing(c)]
        if len(codes) < 2:
            continue
        rows.append([values.setdefault(c, len(values)) for c in codes])
    if not rows:
        return math.nan
    counts = np.zeros((len(rows), len(values)))
    for u, row in enumerate(rows):
        np.add.at(counts[u], row, 1)
    m = counts.sum(axis=1)
    o = np.einsum("uc,uk->ck", counts / (m - 1)[:, None], counts) - np.diag(
        (counts / (m - 1)[:, None]).sum(axis=0)
    )
    return float(_alpha_from_coincidences(o[None])[0])


def confusion_matrix(
    gold: Sequence[Any], pred: Sequence[Any], labels: Sequence[str] | None = None
) -> list[list[int]]:
    """``cm[i][j]`` = number of items with gold ``labels[i]`` predicted ``labels[j]``.

    ``labels=None``: the sorted union of the codes seen, then :data:`MISSING` last if some
    predictions are missing. With ``labels``, items with a code outside them are not counted
    (as scikit-learn does).
    """
    coded = _encode(_gold_strings(gold, "gold"), _pred_strings(pred, len(gold)), labels)
    cm = coded.confusion()
    if labels is not None:
        cm = cm[: coded.k, : coded.k]
    return cm.astype(int).tolist()


def bootstrap_ci(
    gold: Sequence[Any],
    pred: Sequence[Any],
    metric: Callable[[Sequence[Any], Sequence[Any]], float],
    n_boot: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
) -> tuple[float, float]:
    """Percentile bootstrap ``(1 - alpha)`` interval of ``metric(gold, pred)`` over the n items.

    Each of ``n_boot`` resamples draws n item indices with replacement (numpy ``default_rng(seed)``,
    so a seed gives the same interval); the bounds are the ``alpha/2`` and ``1 - alpha/2``
    percentiles of the resampled values, ignoring ``nan`` ones (``(nan, nan)`` if all are).
    This module's :func:`accuracy`, :func:`macro_f1`, :func:`weighted_f1` and
    :func:`cohen_kappa` are computed for all resamples at once from confusion matrices, with
    the classes of the full data; any other callable is called once per resample.
    """
    if not 0 < alpha < 1:
        raise ValueError("alpha must be between 0 and 1.")
    if n_boot < 1:
        raise ValueError("n_boot must be at least 1.")
    gold_s = _gold_strings(gold, "gold")
    pred_s = _pred_strings(pred, len(gold_s))
    fast = {accuracy: "accuracy", macro_f1: "macro_f1", weighted_f1: "weighted_f1"}
    fast[cohen_kappa] = "cohen_kappa"
    values: list[np.ndarray] = []
    if metric in fast:
        coded = _encode(gold_s, pred_s, None)
        for idx in _resample_indices(coded.n, n_boot, seed):
            values.append(_batch_stats(_batch_confusions(coded, idx), coded.k, None)[fast[metric]])
    else:
        gold_a = np.array(gold, dtype=object)
        pred_a = np.array(pred, dtype=object)
        for idx in _resample_indices(len(gold_s), n_boot, seed):
            values.append(
                np.array([metric(list(gold_a[row]), list(pred_a[row])) for row in idx], float)
            )
    return _percentile_ci(np.concatenate(values), alpha)


def class_f1_intervals(
    gold: Sequence[Any],
    pred: Sequence[Any],
    labels: Sequence[str],
    seed: int = 0,
    n_boot: int = 1000,
    alpha: float = 0.05,
) -> dict[str, tuple[float, float]]:
    """Percentile-bootstrap ``(1 - alpha)`` intervals of every class's F1.

    The resamples are :func:`bootstrap_ci`'s (n items drawn with replacement, seeded); per
    class c, F1 = 2·TP / (2·TP + FP + FN) on the resample (0 when the class is absent from
    both, as in scikit-learn's ``zero_division=0``). A prediction that is missing or outside
    ``labels`` counts as wrong.
    """
    coded = _encode(_gold_strings(gold, "gold"), _pred_strings(pred, len(gold)), labels)
    f1s: list[np.ndarray] = []
    for idx in _resample_indices(coded.n, n_boot, seed):
        cm = _batch_confusions(coded, idx)
        tp = np.diagonal(cm, axis1=1, axis2=2)[:, : len(labels)]
        fp = cm.sum(axis=1)[:, : len(labels)] - tp
        fn = cm.sum(axis=2)[:, : len(labels)] - tp
        denom = 2 * tp + fp + fn
        f1s.append(np.where(denom > 0, 2 * tp / np.maximum(denom, 1), 0.0))
    f1 = np.concatenate(f1s)
    lo, hi = 100 * alpha / 2, 100 * (1 - alpha / 2)
    return {
        label: (float(np.percentile(f1[:, j], lo)), float(np.percentile(f1[:, j], hi)))
        for j, label in enumerate(labels)
    }


def expected_accuracy_halfwidth(n: int, p: float = 0.8, confidence: float = 0.95) -> float:
    """Normal-approximation half-width of a CI for an accuracy p measured on n items.

    ``z * sqrt(p * (1 - p) / n)`` with ``z`` the ``(1 + confidence) / 2`` normal quantile
    (1.96 for 95%): how precise a validation sample of n texts will be.
    """
    if n < 1:
        raise ValueError("n must be at least 1.")
    if not 0 <= p <= 1:
        raise ValueError("p must be between 0 and 1.")
    if not 0 < confidence < 1:
        raise ValueError("confidence must be between 0 and 1.")
    z = NormalDist().inv_cdf((1 + confidence) / 2)
    return z * math.sqrt(p * (1 - p) / n)


def sample_size_for_halfwidth(halfwidth: float, p: float = 0.8, confidence: float = 0.95) -> int:
    """Smallest n whose :func:`expected_accuracy_halfwidth` is at most ``halfwidth``.

    ``ceil(z^2 * p * (1 - p) / halfwidth^2)``, at least 1.
    """
    if halfwidth <= 0:
        raise ValueError("halfwidth must be positive.")
    if not 0 <= p <= 1:
        raise ValueError("p must be between 0 and 1.")
    if not 0 < confidence < 1:
        raise ValueError("confidence must be between 0 and 1.")
    z = NormalDist().inv_cdf((1 + confidence) / 2)
    n = max(1, math.ceil(z * z * p * (1 - p) / halfwidth**2 - 1e-9))
    while n > 1 and expected_accuracy_halfwidth(n - 1, p, confidence) <= halfwidth:
        n -= 1
    return n


def pairwise_agreement(codes: Mapping[str, Mapping[str, Any]]) -> PairwiseAgreement:
    """Agreement between human coders: ``codes`` maps coder -> {item_id: label}.

    For every pair of coders (in the mapping's order) on the items both coded: their number
    ``n``, percent agreement (share of identical labels) and Cohen's kappa (``nan`` when
    ``n == 0`` or undefined). ``krippendorff_alpha`` is computed over all coders at once, each
    item a unit and a coder who skipped it a missing value. ``None``/NaN labels are skipped.
    """
    if len(codes) < 2:
        raise ValueError("Pairwise agreement needs at least two coders.")
    clean = {
        str(coder): {str(i): str(v) for i, v in items.items() if not is_missing(v)}
        for coder, items in codes.items()
    }
    coders = list(clean)
    item_ids = sorted({i for items in clean.values() for i in items})
    if not item_ids:
        raise ValueError("No coder has coded any item.")
    pairs = []
    for a, b in combinations(coders, 2):
        shared = [i for i in item_ids if i in clean[a] and i in clean[b]]
        if shared:
            la = [clean[a][i] for i in shared]
            lb = [clean[b][i] for i in shared]
            pct = sum(x == y for x, y in zip(la, lb, strict=True)) / len(shared)
            kappa = cohen_kappa(la, lb)
        else:
            pct = kappa = math.nan
        pairs.append(CoderPair(a, b, len(shared), pct, kappa))
    alpha = krippendorff_alpha([[clean[c].get(i) for c in coders] for i in item_ids])
    return PairwiseAgreement(
        coders=coders, n_items=len(item_ids), pairs=pairs, krippendorff_alpha=alpha
    )


# --------------------------------------------------------------------------- private helpers


@dataclass
class _Coded:
    """Codes as integers: classes ``labels[:k]``, then other codes seen, then MISSING."""

    g: np.ndarray
    p: np.ndarray
    labels: list[str]
    k: int
    index: dict[str, int] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return len(self.g)

    @property
    def m(self) -> int:
        return len(self.labels)

    def confusion(self) -> np.ndarray:
        return np.bincount(self.g * self.m + self.p, minlength=self.m * self.m).reshape(
            self.m, self.m
        )


def _json_float(x: float | None) -> float | None:
    return None if x is None or math.isnan(x) else float(x)


def _label_list(labels: Sequence[Any]) -> list[str]:
    out = [str(x) for x in labels]
    if len(set(out)) != len(out):
        raise ValueError("The labels contain duplicates.")
    if MISSING in out:
        raise ValueError(f"{MISSING!r} is reserved for missing answers and cannot be a label.")
    return out


def _gold_strings(gold: Sequence[Any], name: str) -> list[str]:
    if len(gold) == 0:
        raise ValueError("There are no items to compare (the input is empty).")
    out = []
    for x in gold:
        if is_missing(x):
            raise ValueError(f"The {name} codes contain a missing value; drop uncoded items first.")
        s = str(x)
        if s == MISSING:
            raise ValueError(f"{MISSING!r} is reserved for missing answers and cannot be a label.")
        out.append(s)
    return out


def _pred_strings(pred: Sequence[Any], n: int) -> list[str]:
    if len(pred) != n:
        raise ValueError(f"The two codings differ in length ({n} and {len(pred)} items).")
    return [MISSING if is_missing(x) else str(x) for x in pred]


def _encode(gold: list[str], pred: list[str], labels: Sequence[Any] | None) -> _Coded:
    seen = set(gold) | {p for p in pred if p != MISSING}
    if labels is None:
        classes = sorted(seen)
    else:
        classes = _label_list(labels)
        if not classes:
            raise ValueError("The list of labels is empty.")
    extras = sorted(seen - set(classes))
    order = classes + extras + ([MISSING] if MISSING in pred else [])
    index = {label: i for i, label in enumerate(order)}
    g = np.fromiter((index[x] for x in gold), dtype=np.int64, count=len(gold))
    p = np.fromiter((index[x] for x in pred), dtype=np.int64, count=len(pred))
    return _Coded(g=g, p=p, labels=order, k=len(classes), index=index)


def _per_class_from_confusion(cm: np.ndarray, labels: list[str], k: int) -> dict[str, ClassMetrics]:
    """Per-class metrics of the first k classes of a confusion matrix (zero_division=0)."""
    tp = np.diag(cm).astype(float)
    true_sum = cm.sum(axis=1).astype(float)
    pred_sum = cm.sum(axis=0).astype(float)
    return {
        labels[i]: ClassMetrics(
            precision=_div(tp[i], pred_sum[i]),
            recall=_div(tp[i], true_sum[i]),
            f1=_div(2 * tp[i], true_sum[i] + pred_sum[i]),
            support=int(true_sum[i]),
        )
        for i in range(k)
    }


def _div(a: float, b: float) -> float:
    return float(a / b) if b > 0 else 0.0


def _batch_confusions(coded: _Coded, idx: np.ndarray) -> np.ndarray:
    """Confusion matrices (B, m, m) of the resamples given as rows of item indices (B, n)."""
    b, m = idx.shape[0], coded.m
    cells = coded.g[idx] * m + coded.p[idx] + (np.arange(b) * m * m)[:, None]
    return np.bincount(cells.ravel(), minlength=b * m * m).reshape(b, m, m)


def _kappa_batch(cm: np.ndarray) -> np.ndarray:
    """Cohen's kappa per confusion matrix (B, m, m), as scikit-learn: ``1 - sum(w*C)/sum(w*E)``."""
    cm = cm.astype(float)
    total = cm.sum(axis=(1, 2))
    trace = np.trace(cm, axis1=1, axis2=2)
    sum0, sum1 = cm.sum(axis=1), cm.sum(axis=2)
    with np.errstate(divide="ignore", invalid="ignore"):
        expected_off = (total**2 - (sum0 * sum1).sum(axis=1)) / total
        out = 1 - (total - trace) / expected_off
    return np.where((total > 0) & (expected_off > 0), out, np.nan)


def _alpha_from_coincidences(o: np.ndarray) -> np.ndarray:
    """Nominal Krippendorff's alpha per coincidence matrix (B, m, m)."""
    n_v = o.sum(axis=2)
    n = n_v.sum(axis=1)
    trace = np.trace(o, axis1=1, axis2=2)
    denom = n**2 - (n_v**2).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = 1 - (n - 1) * (n - trace) / denom
    return np.where(denom > 1e-12 * np.maximum(n, 1) ** 2, out, np.nan)


def _batch_stats(cm: np.ndarray, k: int, positive: int | None) -> dict[str, np.ndarray]:
    """Every metric of :func:`compare` for each confusion matrix (B, m, m); classes are 0..k-1."""
    cmf = cm.astype(float)
    total = cmf.sum(axis=(1, 2))
    diag = np.diagonal(cmf, axis1=1, axis2=2)
    true_sum, pred_sum = cmf.sum(axis=2), cmf.sum(axis=1)
    denom = (true_sum + pred_sum)[:, :k]
    with np.errstate(divide="ignore", invalid="ignore"):
        f1 = np.where(denom > 0, 2 * diag[:, :k] / denom, 0.0)
    support = true_sum[:, :k]
    support_total = support.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        weighted = np.where(
            support_total > 0, (f1 * support).sum(axis=1) / support_total, f1.mean(axis=1)
        )
    stats = {
        "accuracy": diag.sum(axis=1) / total,
        "macro_f1": f1.mean(axis=1),
        "weighted_f1": weighted,
        "cohen_kappa": _kappa_batch(cmf),
        "krippendorff_alpha": _alpha_from_coincidences(cmf + np.swapaxes(cmf, 1, 2)),
    }
    if positive is not None:
        stats["binary_f1"] = f1[:, positive]
    return stats


def _resample_indices(n: int, n_boot: int, seed: int) -> Iterator[np.ndarray]:
    """Bootstrap item indices, ``n_boot`` rows of n, in chunks that bound memory; seeded."""
    rng = np.random.default_rng(seed)
    chunk = max(1, _CHUNK_CELLS // max(n, 1))
    done = 0
    while done < n_boot:
        size = min(chunk, n_boot - done)
        yield rng.integers(0, n, size=(size, n))
        done += size


def _percentile_ci(values: np.ndarray, alpha: float) -> tuple[float, float]:
    values = values[~np.isnan(values)]
    if values.size == 0:
        return (math.nan, math.nan)
    lo, hi = np.percentile(values, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    return (float(lo), float(hi))

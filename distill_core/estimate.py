"""Corrected corpus shares: how common each category is in the whole corpus, with honest
confidence intervals, from a student's predictions and a small human-coded sample.

The share of texts a classifier puts in a category is biased whenever the classifier errs
unevenly (e.g. it calls 8% of texts "health" where 5% are). The human codes of a random sample
measure that bias, and the prediction-powered estimate (Angelopoulos, Bates, Fannjiang, Jordan
& Zrnic, "Prediction-powered inference", Science 382, 2023) removes it. For category c, with
``f_i = 1[pred_i = c]`` over the N corpus texts and ``y_j = 1[human_j = c]`` on the n coded texts::

    theta_PP = mean_N(f) + mean_n(y - f)                    (the "rectifier" mean_n(y - f))
    var      = var_N(f) / N + var_n(y - f) / n               (sample variances, ddof = 1)
    CI       = theta_PP ± z * sqrt(var),  z = 1.96 for 95%

The estimate is unbiased (nearly so with weights), and its interval has the nominal coverage
(by the central limit theorem, for a sample of a few dozen or more), when:

* the coded texts are a simple random sample of the corpus, or ``weights`` give their inverse
  inclusion probabilities (a stratified sample, see below);
* the coded texts were not used to train the model that made the predictions (a held-out test
  part; a model evaluated on its own training texts looks better than it is, and the rectifier
  would then under-correct);
* the human codes are the truth (coder error is not modelled).

The point estimate is left unclipped (it may fall slightly below 0 or above 1 for a rare
category: clipping would bias it, and unclipped shares sum to 1 over the categories); only the
reported intervals are clipped to [0, 1]. The corpus term ``var_N(f) / N`` treats the corpus as
a draw from a larger population of texts; for a corpus of thousands it is negligible.

Weighted (stratified) samples: with ``weights`` w_j (inverse inclusion probabilities, e.g.
``N_h / n_h`` from :func:`distill_core.sampling.inclusion_weights`) the sample means become
Hájek (ratio) means ``xbar_w = sum_j w_j x_j / sum_j w_j``; their variance is that of the
linearisation ``z_j = w_j (x_j - xbar_w) / sum_j w_j``: ``n / (n - 1) * sum_j z_j^2`` (which
equals ``var_n(x) / n`` when every weight is the same), or, when the sample's ``strata`` are
given, the stratified ``sum_h n_h / (n_h - 1) * sum_{j in h} (z_j - zbar_h)^2`` (with weights
``N_h / n_h`` this is the textbook ``sum_h (N_h / N)^2 s_h^2 / n_h``). Without strata the
variance ignores the gain from stratification and is conservative (intervals too wide);
finite-population corrections are left out (samples are small next to the corpus).

For comparison every category also gets the naive share (the mean of the predictions, with a
Wilson binomial interval over N: it says nothing about the classifier's errors, which is why it
is narrow and can be wrong) and the share among the coded sample alone (Wilson over n; with
weights or strata, the Hájek mean with the normal interval above): unbiased but wide.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from statistics import NormalDist
from typing import TYPE_CHECKING, Any

import numpy as np

from distill_core.values import is_blank

if TYPE_CHECKING:
    import pandas as pd

#: Below this many coded texts the report warns that the intervals are wide.
FEW_CODED = 30


class EstimateError(ValueError):
    """Inputs the estimate cannot be computed from (too few coded texts...); one sentence."""


@dataclass(frozen=True)
class Share:
    """One category's share of the corpus: naive, corrected and from the coded sample alone."""

    label: str
    naive: float
    naive_ci: tuple[float, float]
    corrected: float
    corrected_ci: tuple[float, float]
    sample_only: float
    sample_only_ci: tuple[float, float]
    n_corpus: int
    n_sample: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (intervals as ``[low, high]`` lists)."""
        out = asdict(self)
        for key in ("naive_ci", "corrected_ci", "sample_only_ci"):
            out[key] = [float(x) for x in out[key]]
        return out


@dataclass(frozen=True)
class Shares:
    """Every category's :class:`Share` (codebook order), and how they were computed."""

    rows: list[Share]
    n_corpus: int
    n_sample: int
    confidence: float = 0.95
    weighted: bool = False
    stratified: bool = False

    def to_frame(self) -> pd.DataFrame:
        """One row per category: the three shares with ``_low``/``_high`` interval columns and
        ``correction`` (corrected minus naive)."""
        import pandas as pd

        records = []
        for r in self.rows:
            rec: dict[str, Any] = {"label": r.label}
            for name in ("naive", "corrected", "sample_only"):
                lo, hi = getattr(r, f"{name}_ci")
                rec |= {name: getattr(r, name), f"{name}_low": lo, f"{name}_high": hi}
            rec |= {"correction": r.corrected - r.naive}
            rec |= {"n_corpus": r.n_corpus, "n_sample": r.n_sample}
            records.append(rec)
        return pd.DataFrame.from_records(records)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of the whole result."""
        out = {k: v for k, v in asdict(self).items() if k != "rows"}
        return out | {"rows": [r.to_dict() for r in self.rows]}


# ---------------------------------------------------------------- the estimator


def ppi_mean(
    f_corpus: np.ndarray,
    f_sample: np.ndarray,
    y_sample: np.ndarray,
    weights: np.ndarray | None = None,
    strata: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The prediction-powered mean and its variance, along the last axis (vectorised).

    ``f_corpus`` (..., N): predictions on the corpus; ``f_sample`` and ``y_sample`` (..., n):
    predictions and true values on the coded sample; ``weights`` and ``strata`` (integer
    stratum codes) broadcastable to (..., n). Returns ``(theta, variance)`` with
    ``theta = mean_N(f) + mean_n(y - f)`` and ``variance = var_N(f) / N + var(mean_n(y - f))``
    (module docstring); leading axes broadcast, so one call can hold every category and many
    repetitions of a simulation.
    """
    f_corpus = np.asarray(f_corpus, dtype=float)
    m_corpus, v_corpus = _mean_and_variance(f_corpus)
    residual = np.asarray(y_sample, dtype=float) - np.asarray(f_sample, dtype=float)
    m_res, v_res = _mean_and_variance(residual, weights, strata)
    return m_corpus + m_res, v_corpus + v_res


def _mean_and_variance(
    x: np.ndarray, weights: np.ndarray | None = None, strata: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Mean along the last axis and the estimated variance of that mean.

    Unweighted: ``var(x) / n`` (ddof 1). Weighted: the Hájek mean ``xbar_w`` and the variance
    of its linearisation ``z_j = w_j (x_j - xbar_w) / sum(w)``: ``n / (n - 1) * sum_j z_j^2``,
    or with strata ``sum_h n_h / (n_h - 1) * sum_{j in h} (z_j - zbar_h)^2`` (a stratum
    holding a single text adds its ``z_j^2``).
    """
    n = x.shape[-1]
    if weights is None and strata is None:
        return x.mean(axis=-1), x.var(axis=-1, ddof=1) / n
    w = np.ones(x.shape) if weights is None else np.asarray(weights, dtype=float)
    w = np.broadcast_to(w, x.shape)
    total = w.sum(axis=-1)
    mean = (w * x).sum(axis=-1) / total
    z = w * (x - mean[..., None]) / total[..., None]
    if strata is None:
        return mean, n / (n - 1) * (z**2).sum(axis=-1)
    codes = np.broadcast_to(np.asarray(strata), x.shape)
    member = codes[..., None] == np.unique(codes)  # (..., n, H)
    count = member.sum(axis=-2)  # (..., H)
    zbar = (z[..., None] * member).sum(axis=-2) / np.maximum(count, 1)
    own_count = (member * count[..., None, :]).sum(axis=-1)  # n_h of each text's stratum
    dev = z - (member * zbar[..., None, :]).sum(axis=-1)
    single = own_count == 1
    terms = np.where(single, z**2, own_count / np.where(single, 2, own_count - 1) * dev**2)
    return mean, terms.sum(axis=-1)


def wilson_interval(p: float, n: int, z: float) -> tuple[float, float]:
    """The Wilson score interval of a binomial proportion p observed on n trials."""
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def estimate_shares(
    corpus_pred: Sequence[str],
    sample_pred: Sequence[str],
    sample_gold: Sequence[str],
    labels: Sequence[str],
    *,
    weights: Sequence[float] | None = None,
    strata: Sequence[Any] | None = None,
    confidence: float = 0.95,
) -> Shares:
    """Every category's naive, corrected (prediction-powered) and sample-only corpus share.

    ``corpus_pred``: the predicted label of each of the N corpus texts; ``sample_pred`` and
    ``sample_gold``: the predicted and the human label of each of the n coded texts (the same
    model's predictions, the sample drawn from the same corpus); ``labels``: the categories in
    the order to report; ``weights``: inverse inclusion probabilities of the coded texts for a
    stratified sample, and ``strata``: each coded text's stratum (any hashable, ``None`` is a
    stratum of its own) for the stratified variance. Estimator, assumptions and intervals: see
    the module docstring.
    """
    labels = [str(x) for x in labels]
    corpus = np.asarray([str(x) for x in corpus_pred])
    pred = np.asarray([str(x) for x in sample_pred])
    gold = np.asarray([str(x) for x in sample_gold])
    _check_inputs(corpus, pred, gold, labels, weights, strata, confidence)
    z = NormalDist().inv_cdf((1 + confidence) / 2)
    codes = np.asarray(labels)[:, None]
    f_corpus, f_sample, y_sample = corpus == codes, pred == codes, gold == codes
    w = None if weights is None else np.asarray(weights, dtype=float)
    h = None if strata is None else _stratum_codes(strata)
    theta, var = ppi_mean(f_corpus, f_sample, y_sample, w, h)
    only, only_var = _mean_and_variance(y_sample.astype(float), w, h)
    naive = f_corpus.mean(axis=1)
    n_corpus, n_sample = len(corpus), len(gold)
    rows = []
    for k, label in enumerate(labels):
        if w is None and h is None:
            only_ci = wilson_interval(float(only[k]), n_sample, z)
        else:
            only_ci = _normal_interval(float(only[k]), float(only_var[k]), z)
        rows.append(
            Share(
                label=label,
                naive=float(naive[k]),
                naive_ci=wilson_interval(float(naive[k]), n_corpus, z),
                corrected=float(theta[k]),
                corrected_ci=_normal_interval(float(theta[k]), float(var[k]), z),
                sample_only=float(only[k]),
                sample_only_ci=only_ci,
                n_corpus=n_corpus,
                n_sample=n_sample,
            )
        )
    return Shares(
        rows,
        n_corpus,
        n_sample,
        confidence=confidence,
        weighted=w is not None,
        stratified=h is not None,
    )


def _stratum_codes(strata: Sequence[Any]) -> np.ndarray:
    """Integer codes of the strata, in order of first appearance (``None`` and NaN alike)."""
    codes: dict[Any, int] = {}
    return np.asarray([codes.setdefault(None if is_blank(x) else x, len(codes)) for x in strata])


def _normal_interval(estimate: float, variance: float, z: float) -> tuple[float, float]:
    """``estimate ± z * sqrt(variance)``, clipped to [0, 1]."""
    half = z * math.sqrt(max(variance, 0.0))
    return max(0.0, estimate - half), min(1.0, estimate + half)


def _check_inputs(corpus, pred, gold, labels, weights, strata, confidence) -> None:
    if len(set(labels)) != len(labels) or not labels:
        raise EstimateError("The categories must be a non-empty list without repeats.")
    if len(corpus) < 2:
        raise EstimateError("The corpus needs at least 2 predicted texts.")
    if len(pred) != len(gold):
        raise EstimateError(
            f"There are {len(gold)} human codes but {len(pred)} predictions for the sample."
        )
    if len(gold) < 2:
        raise EstimateError("At least 2 coded texts are needed to estimate corpus shares.")
    unknown = sorted(set(gold) - set(labels))
    if unknown:
        raise EstimateError(f"Human codes not among the categories: {', '.join(unknown)}.")
    if weights is not None:
        w = np.asarray(weights, dtype=float)
        if w.shape != (len(gold),):
            raise EstimateError(f"There are {len(gold)} coded texts but {w.size} weights.")
        if not np.all(np.isfinite(w)) or np.any(w <= 0):
            raise EstimateError("Sample weights must be positive numbers.")
    if strata is not None and len(strata) != len(gold):
        raise EstimateError(f"There are {len(gold)} coded texts but {len(strata)} strata.")
    if not 0 < confidence < 1:
        raise EstimateError("The confidence level must be between 0 and 1.")


# ---------------------------------------------------------------- from the store

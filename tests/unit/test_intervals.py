"""Do the 95% intervals of ``agreement`` cover the truth? Coverage simulations against a known
population, and paired differences between two classifiers.

The population: four categories with shares 0.4, 0.3, 0.2 and 0.1; an item of category c is
labelled c with probability ``acc`` and each other category with probability (1 - acc) / 3,
so the population accuracy is exactly ``acc`` and every population metric is a function of
the 4 × 4 table of cell probabilities. Samples of n items are drawn from that table, scored
with ``compare`` (1,000 resamples, as the pages do) and the share of samples whose interval
holds the population value is the coverage.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from distill_core import agreement as ag

LABELS = ["a", "b", "c", "d"]
SHARES = np.array([0.4, 0.3, 0.2, 0.1])
K = len(LABELS)


def error_table(acc: float) -> np.ndarray:
    """P(label | category): ``acc`` on the diagonal, the rest spread evenly."""
    q = np.full((K, K), (1 - acc) / (K - 1))
    np.fill_diagonal(q, acc)
    return q


def population(acc: float) -> np.ndarray:
    """Cell probabilities P(category i, label j)."""
    return SHARES[:, None] * error_table(acc)


def population_f1(table: np.ndarray) -> np.ndarray:
    """Every category's population F1, ``2 P(c, c) / (P(c, ·) + P(·, c))``."""
    return 2 * np.diag(table) / (table.sum(axis=1) + table.sum(axis=0))


def draw(rng: np.random.Generator, table: np.ndarray, n: int) -> tuple[list[str], list[str]]:
    cells = rng.choice(table.size, size=n, p=table.ravel())
    m = table.shape[1]
    return [LABELS[c // m] for c in cells], [LABELS[c % m] for c in cells]


def covers(ci: tuple[float, float], value: float) -> bool:
    return ci[0] - 1e-9 <= value <= ci[1] + 1e-9


# ----------------------------------------------------------------------------- accuracy, exact


@pytest.mark.parametrize(
    ("n", "floor"),
    [(15, 0.91), (30, 0.92), (100, 0.92), (200, 0.92)],
)
def test_accuracy_interval_exact_coverage(n, floor):
    """Exact coverage of ``compare``'s accuracy interval (Wilson): it depends only on the number
    k of correct items, k ~ Binomial(n, acc), so coverage = sum of P(k) over the k whose
    interval holds acc. Measured (acc 0.95 / 0.9 / 0.7):

    * n = 15: 0.964 / 0.944 / 0.915
    * n = 30: 0.939 / 0.974 / 0.930
    * n = 100: 0.966 / 0.936 / 0.937
    * n = 200: 0.967 / 0.956 / 0.947

    Wilson's coverage oscillates around 0.95 and dips to 0.915 at n = 15, acc 0.7 (where the
    results are flagged unreliable). The percentile bootstrap it replaces covered 0.516 at
    n = 15 and 0.755 at n = 30 for acc 0.95 (a perfect sample gave the interval (1, 1)).
    """
    intervals = []
    for k in range(n + 1):
        gold = ["a"] * n
        pred = ["a"] * k + ["b"] * (n - k)
        intervals.append(ag.compare(gold, pred, n_boot=1).ci["accuracy"])
    for acc in (0.95, 0.9, 0.7):
        coverage = sum(
            stats.binom.pmf(k, n, acc) for k, ci in enumerate(intervals) if covers(ci, acc)
        )
        assert coverage >= floor, (n, acc, coverage)
    assert all(ci[1] > ci[0] for ci in intervals)  # never zero width, even at 0 or n correct


# ----------------------------------------------------------------------------- simulation

#: Samples per (accuracy, n) in the simulation; ~2 percentage points of simulation error.
REPLICATIONS = 250


@pytest.mark.slow
@pytest.mark.parametrize("acc", [0.95, 0.7])
def test_coverage_simulation(acc):
    """Coverage of the 95% intervals of accuracy (Wilson), macro-F1 and each category's F1
    (BCa bootstrap widened by the weak-prior posterior), 250 samples per n.

    Measured with 1,000 samples per n (this test's 250 give figures within ~2 points):

    ======  ======  ========  ========  ============
    acc     n       accuracy  macro-F1  per-class F1
    ======  ======  ========  ========  ============
    0.95    15      0.965     0.990     0.979
    0.95    30      0.950     0.990     0.989
    0.95    100     0.959     0.966     0.934
    0.95    200     0.964     0.964     0.969
    0.70    15      0.916     0.943     0.889
    0.70    30      0.935     0.941     0.957
    0.70    100     0.938     0.954     0.961
    0.70    200     0.940     0.956     0.956
    ======  ======  ========  ========  ============

    (kappa, alpha and weighted-F1 measured 0.944-0.990 everywhere; with 8 categories of shares
    0.05-0.37 and acc 0.8 or 0.95 at n = 30-200, macro-F1 0.915-0.980, per-class F1 0.850-0.973.) BCa alone, without the
    posterior, covered macro-F1 0.51 / 0.76 at n = 15 / 30 and acc 0.95, per-class F1 0.30 /
    0.52: a sample without an error gives every resample F1 1. The old percentile bootstrap
    (absent classes as F1 0) covered macro-F1 0.72 / 0.87 there and accuracy 0.52 / 0.76.

    Tolerances: accuracy >= 0.88 (exact figures are in the test above), macro-F1 and per-class
    F1 >= 0.85 from n = 30, >= 0.80 at n = 15; and the percentile bootstrap of accuracy must
    fail at n = 15, acc 0.95 (< 0.80), so this test can tell a bad interval from a good one.
    """
    table = population(acc)
    true_acc = float(np.trace(table))
    class_f1 = population_f1(table)
    true_macro = float(class_f1.mean())
    for n in (15, 30, 100, 200):
        rng = np.random.default_rng(1000 + n)
        hits = {"accuracy": 0, "macro_f1": 0, "percentile": 0}
        class_hits = class_total = 0
        for r in range(REPLICATIONS):
            gold, pred = draw(rng, table, n)
            result = ag.compare(gold, pred, labels=LABELS, n_boot=1000, seed=r)
            assert result.reliable is (n >= ag.MIN_RELIABLE_N)
            hits["accuracy"] += covers(result.ci["accuracy"], true_acc)
            hits["macro_f1"] += covers(result.ci["macro_f1"], true_macro)
            for j, label in enumerate(LABELS):
                ci = result.per_class_ci[label]["f1"]
                if not math.isnan(ci[0]):
                    class_total += 1
                    class_hits += covers(ci, class_f1[j])
            if n == 15 and acc == 0.95:
                old = ag.bootstrap_ci(gold, pred, ag.accuracy, seed=r, method="percentile")
                hits["percentile"] += covers(old, true_acc)
        coverage = {k: v / REPLICATIONS for k, v in hits.items()}
        class_coverage = class_hits / class_total
        floor = 0.85 if n >= 30 else 0.80
        assert coverage["accuracy"] >= 0.88, (n, coverage)
        assert coverage["macro_f1"] >= floor, (n, coverage)
        assert class_coverage >= floor, (n, class_coverage)
        if n == 15 and acc == 0.95:
            assert coverage["percentile"] < 0.80, coverage


# ----------------------------------------------------------------------------- paired


def triples(acc_a: float, acc_b: float, copy: float) -> np.ndarray:
    """P(category, label of A, label of B): B copies A's label with probability ``copy``,
    otherwise labels on its own, so the two classifiers' errors are correlated."""
    qa, qb = error_table(acc_a), error_table(acc_b)
    same = np.eye(K)
    return (
        SHARES[:, None, None]
        * qa[:, :, None]
        * ((1 - copy) * qb[:, None, :] + copy * same[None, :, :])
    )


def population_metric(table: np.ndarray, metric: str) -> float:
    if metric == "accuracy":
        return float(np.trace(table))
    return float(population_f1(table).mean())


def draw_triples(rng, table, n):
    cells = rng.choice(table.size, size=n, p=table.ravel())
    g, a, b = np.unravel_index(cells, table.shape)
    return [LABELS[i] for i in g], [LABELS[i] for i in a], [LABELS[i] for i in b]


def test_paired_difference_of_identical_predictions_is_exactly_zero():
    rng = np.random.default_rng(0)
    gold, pred = draw(rng, population(0.8), 60)
    for metric in ag.PAIRED_METRICS:
        d = ag.paired_difference(gold, pred, list(pred), metric=metric)
        assert d.difference == 0.0 and d.ci == (0.0, 0.0), metric
        assert d.a == d.b == getattr(ag.compare(gold, pred, n_boot=0), metric)
        if metric == "accuracy":
            assert d.b01 == d.b10 == 0 and d.p_value == 1.0
        else:
            assert d.b01 is None and d.p_value is None
    assert ag.paired_difference(gold, pred, pred, metric="accuracy").to_dict()["ci"] == [0.0, 0.0]


def test_paired_difference_values_and_errors():
    rng = np.random.default_rng(1)
    gold, pred_a, pred_b = draw_triples(rng, triples(0.85, 0.7, 0.3), 80)
    pred_b[3] = None  # a missing answer counts as wrong, as in compare
    d = ag.paired_difference(gold, pred_a, pred_b, labels=LABELS)
    a = ag.compare(gold, pred_a, labels=LABELS, n_boot=0)
    b = ag.compare(gold, pred_b, labels=LABELS, n_boot=0)
    assert d.metric == "macro_f1" and d.n == 80
    assert d.a == pytest.approx(a.macro_f1) and d.b == pytest.approx(b.macro_f1)
    assert d.difference == pytest.approx(a.macro_f1 - b.macro_f1)
    assert d.ci[0] <= d.difference <= d.ci[1] and d.ci_method == "bca"
    assert d == ag.paired_difference(gold, pred_a, pred_b, labels=LABELS)  # seeded
    assert not ag.paired_difference(gold[:20], pred_a[:20], pred_b[:20]).reliable
    with pytest.raises(ValueError, match=r"same items.*80 gold codes, 80 .* A and 79 of B\."):
        ag.paired_difference(gold, pred_a, pred_b[:-1])
    with pytest.raises(ValueError, match="metric must be one of"):
        ag.paired_difference(gold, pred_a, pred_b, metric="recall")


@pytest.mark.parametrize(
    ("b01", "b10", "same"),
    [
        (0, 0, 10),
        (0, 1, 5),
        (1, 0, 0),
        (3, 9, 20),
        (9, 3, 1),
        (10, 10, 4),
        (0, 12, 30),
        (40, 61, 9),
    ],
)
def test_mcnemar_p_value_is_scipys_exact_binomial_test(b01, b10, same):
    # items: A wrong and B right (b01), A right and B wrong (b10), both right, both wrong
    gold = ["a"] * (b01 + b10 + 2 * same)
    pred_a = ["b"] * b01 + ["a"] * b10 + ["a"] * same + ["b"] * same
    pred_b = ["a"] * b01 + ["b"] * b10 + ["a"] * same + ["c"] * same
    d = ag.paired_difference(gold, pred_a, pred_b, metric="accuracy", n_boot=50)
    assert (d.b01, d.b10) == (b01, b10)
    expected = 1.0 if b01 + b10 == 0 else stats.binomtest(b10, b01 + b10, 0.5).pvalue
    assert d.p_value == pytest.approx(expected, rel=1e-12, abs=1e-15)
    assert d.difference == pytest.approx((b10 - b01) / len(gold))


@pytest.mark.slow
def test_paired_interval_covers_the_true_difference():
    """Paired BCa intervals of the difference cover the population difference, and McNemar's
    exact test holds its level under no difference.

    Measured with 500 samples: A (acc 0.85) against B (acc 0.75, copying A half the time),
    accuracy difference 0.050: coverage 0.900 / 0.942 / 0.940 at n = 30 / 100 / 200,
    macro-F1 difference 0.054: 0.902 / 0.932 / 0.934; two equal classifiers (acc 0.8):
    0.928 / 0.944 / 0.958 (accuracy) and 0.910 / 0.930 / 0.946 (macro-F1); McNemar rejected
    at 5% in 1.6% / 2.6% / 3.8% of the null samples (an exact test is conservative) and in
    19% / 33% of the A-B samples at n = 100 / 200. Tolerances: coverage >= 0.88 at n = 100
    with 200 samples, rejections under the null <= 0.06.
    """
    table = triples(0.85, 0.75, 0.5)
    for metric in ("accuracy", "macro_f1"):
        true = population_metric(table.sum(axis=2), metric) - population_metric(
            table.sum(axis=1), metric
        )
        rng = np.random.default_rng(7)
        hits = 0
        for r in range(200):
            gold, pred_a, pred_b = draw_triples(rng, table, 100)
            d = ag.paired_difference(gold, pred_a, pred_b, metric=metric, labels=LABELS, seed=r)
            hits += covers(d.ci, true)
        assert hits / 200 >= 0.88, (metric, hits)
        # one large sample: the real difference is found (the interval excludes 0)
        gold, pred_a, pred_b = draw_triples(np.random.default_rng(8), table, 3000)
        d = ag.paired_difference(gold, pred_a, pred_b, metric=metric, labels=LABELS)
        assert d.ci[0] > 0 and d.ci[1] - d.ci[0] < 0.04, (metric, d)
        if metric == "accuracy":
            assert d.p_value < 1e-4
    null = triples(0.8, 0.8, 0.3)
    rng = np.random.default_rng(9)
    rejected = 0
    for r in range(200):
        gold, pred_a, pred_b = draw_triples(rng, null, 100)
        d = ag.paired_difference(gold, pred_a, pred_b, metric="accuracy", n_boot=100, seed=r)
        rejected += d.p_value < 0.05
    assert rejected / 200 <= 0.06

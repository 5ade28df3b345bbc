"""Corrected corpus shares: the prediction-powered estimator on hand-computed inputs, its bias
and coverage in a simulation (random and stratified samples). The store-level report is
``tests/unit/study/test_shares.py``."""

from __future__ import annotations

import numpy as np
import pytest

from distill_core import estimate, sampling

Z95 = 1.959963984540054


# ---------------------------------------------------------------- hand-computed


def test_the_estimate_matches_hand_computed_numbers() -> None:
    # corpus: 6 a, 4 b; coded sample: predictions a a b b, human codes a b b b
    result = estimate.estimate_shares(
        ["a"] * 6 + ["b"] * 4, ["a", "a", "b", "b"], ["a", "b", "b", "b"], ["a", "b"]
    )
    a, b = result.rows
    # residual y - f for "a": 0, -1, 0, 0 (mean -0.25, sample variance 0.25)
    # corpus indicator for "a": six 1s, four 0s (mean 0.6, sample variance 2.4 / 9)
    assert a.naive == pytest.approx(0.6)
    assert a.corrected == pytest.approx(0.35)
    var_a = 0.25 / 4 + (2.4 / 9) / 10
    assert a.corrected_ci == pytest.approx((0.0, 0.35 + Z95 * var_a**0.5))  # low end clipped
    assert b.corrected == pytest.approx(0.65)
    assert b.corrected_ci == pytest.approx((0.65 - Z95 * var_a**0.5, 1.0))  # high end clipped
    assert a.sample_only == pytest.approx(0.25) and b.sample_only == pytest.approx(0.75)
    # Wilson score interval of 6 / 10 (published value 0.3127 to 0.8318)
    assert a.naive_ci == pytest.approx((0.3127, 0.8318), abs=1e-4)
    assert a.n_corpus == 10 and a.n_sample == 4
    assert result.weighted is False and result.stratified is False


def test_weights_give_the_hajek_mean_and_strata_the_textbook_stratified_variance() -> None:
    f = np.array([1.0, 1.0, 0.0, 0.0])
    y = np.array([1.0, 0.0, 0.0, 0.0])
    w = np.array([1.0, 1.0, 3.0, 3.0])
    corpus = np.array([1.0] * 6 + [0.0] * 4)
    v_corpus = (2.4 / 9) / 10
    theta, var = estimate.ppi_mean(corpus, f, y, w)
    assert theta == pytest.approx(0.6 - 1 / 8)  # residual Hájek mean: -1 / 8
    # linearised z_j = w_j (r_j + 1/8) / 8; variance n/(n-1) * sum z_j^2
    z = w * (y - f + 1 / 8) / 8
    assert var - v_corpus == pytest.approx(4 / 3 * (z**2).sum())
    _, var_strat = estimate.ppi_mean(corpus, f, y, w, np.array([0, 0, 1, 1]))
    # stratum x: share 2/8 of the weight, residuals 0, -1 (variance 0.5) over 2 texts;
    # stratum y: residuals all 0
    assert var_strat - v_corpus == pytest.approx(0.25**2 * 0.5 / 2)


def test_equal_weights_change_nothing_and_corrected_shares_sum_to_one() -> None:
    rng = np.random.default_rng(3)
    labels = ["x", "y", "z"]
    corpus = list(rng.choice(labels, 500))
    pred, gold = list(rng.choice(labels, 40)), list(rng.choice(labels, 40))
    plain = estimate.estimate_shares(corpus, pred, gold, labels)
    weighted = estimate.estimate_shares(corpus, pred, gold, labels, weights=[7.0] * 40)
    for p, w in zip(plain.rows, weighted.rows, strict=True):
        assert w.corrected == pytest.approx(p.corrected)
        assert w.corrected_ci == pytest.approx(p.corrected_ci)
    assert sum(r.corrected for r in plain.rows) == pytest.approx(1.0)
    frame = plain.to_frame()
    assert list(frame["label"]) == labels
    assert frame["correction"].to_numpy() == pytest.approx(
        frame["corrected"].to_numpy() - frame["naive"].to_numpy()
    )
    as_dict = plain.to_dict()
    assert as_dict["rows"][0]["corrected_ci"] == list(plain.rows[0].corrected_ci)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"sample_pred": ["a"], "sample_gold": ["a"]}, "At least 2 coded texts"),
        ({"sample_gold": ["a", "c"]}, "not among the categories: c"),
        ({"weights": [1.0]}, "but 1 weights"),
        ({"weights": [1.0, -1.0]}, "positive"),
        ({"strata": ["s"]}, "but 1 strata"),
    ],
)
def test_impossible_inputs_are_refused_with_a_sentence(kwargs, fragment) -> None:
    args = {"sample_pred": ["a", "b"], "sample_gold": ["a", "b"]} | kwargs
    with pytest.raises(estimate.EstimateError, match=fragment):
        estimate.estimate_shares(["a", "b", "a"], labels=["a", "b"], **args)


# ---------------------------------------------------------------- simulation

N, K, N_CODED, REPS = 20_000, 4, 300, 400
TRUE_SHARES = [0.50, 0.30, 0.15, 0.05]
#: Row: true class, column: predicted class. Over-predicts the rare class 3, misses class 0.
CONFUSION = np.array(
    [
        [0.80, 0.06, 0.06, 0.08],
        [0.05, 0.85, 0.05, 0.05],
        [0.04, 0.06, 0.85, 0.05],
        [0.02, 0.03, 0.05, 0.90],
    ]
)


@pytest.fixture(scope="module")
def corpus():
    """A corpus of N texts with true classes and a biased classifier's predictions."""
    rng = np.random.default_rng(2023)
    truth = rng.choice(K, size=N, p=TRUE_SHARES)
    pred = (rng.random(N)[:, None] > CONFUSION.cumsum(axis=1)[truth]).sum(axis=1)
    return truth, pred


def _indicators(classes: np.ndarray) -> np.ndarray:
    """(..., n) class codes -> (..., K, n) one-hot indicators."""
    return classes[..., None, :] == np.arange(K)[:, None]


def _coverage(theta, var, true_share) -> np.ndarray:
    return (np.abs(theta - true_share) <= Z95 * np.sqrt(var)).mean(axis=0)


def test_simulation_random_sample_corrected_is_unbiased_and_covers(corpus) -> None:
    truth, pred = corpus
    true_share = np.bincount(truth, minlength=K) / N
    naive = np.bincount(pred, minlength=K) / N
    assert np.abs(naive - true_share).max() > 0.05  # the classifier shifts shares by points
    rng = np.random.default_rng(1)
    idx = rng.random((REPS, N)).argpartition(N_CODED, axis=1)[:, :N_CODED]  # draws w/o repl.
    theta, var = estimate.ppi_mean(
        _indicators(pred), _indicators(pred[idx]), _indicators(truth[idx])
    )
    assert theta.shape == (REPS, K)
    assert np.abs((theta - true_share).mean(axis=0)).max() < 0.01
    coverage = _coverage(theta, var, true_share)
    assert np.all((coverage >= 0.92) & (coverage <= 0.98)), coverage
    # the public function gives the same numbers as the vectorised core
    names = np.array(["c0", "c1", "c2", "c3"])
    first = estimate.estimate_shares(
        names[pred], names[pred[idx[0]]], names[truth[idx[0]]], list(names)
    )
    assert [r.corrected for r in first.rows] == pytest.approx(theta[0])
    assert [r.naive for r in first.rows] == pytest.approx(naive)


def test_simulation_stratified_sample_needs_its_weights(corpus) -> None:
    truth, pred = corpus
    true_share = np.bincount(truth, minlength=K) / N
    strata = pred  # stratified by the predicted label, 75 texts per stratum
    rng = np.random.default_rng(2)
    per = N_CODED // K
    idx = np.concatenate(
        [
            np.flatnonzero(strata == h)[
                rng.random((REPS, int((strata == h).sum()))).argpartition(per, axis=1)[:, :per]
            ]
            for h in range(K)
        ],
        axis=1,
    )
    sample_strata = strata[idx[0]]  # the same stratum layout in every repetition
    by_stratum = sampling.inclusion_weights(list(strata), list(sample_strata))
    w = np.array([by_stratum[h] for h in sample_strata])
    f_c, f_s, y_s = _indicators(pred), _indicators(pred[idx]), _indicators(truth[idx])
    theta, var = estimate.ppi_mean(f_c, f_s, y_s, w, sample_strata)
    assert np.abs((theta - true_share).mean(axis=0)).max() < 0.01
    coverage = _coverage(theta, var, true_share)
    assert np.all((coverage >= 0.92) & (coverage <= 0.98)), coverage
    unweighted, _ = estimate.ppi_mean(f_c, f_s, y_s)
    assert np.abs((unweighted - true_share).mean(axis=0)).max() > 0.03  # weights matter


# ---------------------------------------------------------------- from the store

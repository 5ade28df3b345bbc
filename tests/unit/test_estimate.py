"""Corrected corpus shares: the prediction-powered estimator on hand-computed inputs, its bias
and coverage in a simulation (random and stratified samples). The store-level report is
``tests/unit/study/test_shares.py``."""

from __future__ import annotations

import numpy as np
import pytest

from distill_core import agreement, estimate, sampling

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


# ---------------------------------------------------------------- no information, exact bounds


#: The upper end of the two-sided exact (Clopper–Pearson) 95% interval of 0 of n.
def _cp0(n: float) -> float:
    return 1 - 0.025 ** (1 / n)


def test_a_category_never_predicted_nor_coded_is_bounded_not_zero() -> None:
    # corpus: 6 a, 4 b, no c; coded sample of 5: none is c and none is predicted c
    result = estimate.estimate_shares(
        ["a"] * 6 + ["b"] * 4, ["a", "a", "b", "b", "a"], ["a", "b", "b", "b", "a"], ["a", "b", "c"]
    )
    a, b, c = result.rows
    assert c.corrected == 0 and c.sample_only == 0 and c.naive == 0
    # was (0.0, 0.0): a normal interval around a sample variance of 0
    assert c.corrected_ci == pytest.approx((0.0, _cp0(5)))  # 0 of 5: 0.522
    assert c.sample_only_ci == pytest.approx((0.0, _cp0(5)))  # Wilson gave 0 to 0.434
    assert c.bound_only and "never predicts it" in c.note and "at most 52.2%" in c.note
    assert not a.bound_only and a.note is None and not b.bound_only
    assert estimate.no_variation_bound(100) == pytest.approx(0.0362, abs=1e-4)
    assert result.to_frame()["bound_only"].tolist() == [False, False, True]


def test_no_disagreement_on_a_predicted_category_adds_the_exact_bound() -> None:
    # a and b predicted; on the 4 coded texts the model agrees with the coders everywhere
    corpus = ["a"] * 6 + ["b"] * 4
    result = estimate.estimate_shares(
        corpus, ["a", "b", "b", "a"], ["a", "b", "b", "a"], ["a", "b"]
    )
    a = result.rows[0]
    assert a.corrected == pytest.approx(0.6)
    corpus_half = Z95 * ((2.4 / 9) / 10) ** 0.5
    # was 0.6 ± corpus_half: a rectifier variance of 0 from 4 texts without an error
    assert a.corrected_ci == pytest.approx(
        (max(0.0, 0.6 - corpus_half - _cp0(4)), min(1.0, 0.6 + corpus_half + _cp0(4)))
    )
    assert a.bound_only and "corrected interval adds an exact bound" in a.note
    assert a.sample_only_ci == pytest.approx(agreement.wilson_interval(2, 4))


def test_a_stratified_sample_without_variation_gets_the_stratified_exact_bound() -> None:
    # strata x (weight share 1/2, 2 coded texts) and y (1/2, 8 texts); nobody is "c"
    strata = ["x"] * 2 + ["y"] * 8
    weights = [10.0] * 2 + [2.5] * 8
    result = estimate.estimate_shares(
        ["a", "b"] * 10, ["a"] * 10, ["a"] * 10, ["a", "b", "c"], weights=weights, strata=strata
    )
    c = result.rows[2]
    # max 0.5 p_x + 0.5 p_y with 2 log(1 - p_x) + 8 log(1 - p_y) = log 0.025: the optimum has
    # 1 - p_h = lam * n_h / 0.5, so 10 log lam + 2 log 4 + 8 log 16 = log 0.025
    lam = np.exp((np.log(0.025) - 2 * np.log(4) - 8 * np.log(16)) / 10)
    bound = 0.5 * (1 - 4 * lam) + 0.5 * (1 - 16 * lam)
    assert 0 < 16 * lam < 1  # both strata take part
    assert c.sample_only_ci == pytest.approx((0.0, bound))  # was (0.0, 0.0)
    assert c.corrected_ci == pytest.approx((0.0, bound))
    assert c.bound_only
    # with equal weights and one stratum the bound is the plain 1 - 0.025^(1/n)
    even = estimate.estimate_shares(
        ["a", "b"] * 10, ["a"] * 10, ["a"] * 10, ["a", "b", "c"], weights=[2.0] * 10
    )
    assert even.rows[2].sample_only_ci == pytest.approx((0.0, _cp0(10)))


def test_a_stratum_without_coded_texts_stays_in_the_population() -> None:
    # corpus of 12: stratum x (6 texts), y (4), z (2, none coded); coded: 3 of x, 2 of y
    corpus_strata = ["x"] * 6 + ["y"] * 4 + ["z"] * 2
    corpus_pred = ["a"] * 6 + ["b"] * 4 + ["a", "b"]
    strata = ["x", "x", "x", "y", "y"]
    pred = ["a", "a", "a", "b", "b"]
    gold = ["a", "b", "a", "b", "b"]
    result = estimate.estimate_shares(
        corpus_pred, pred, gold, ["a", "b"], strata=strata, corpus_strata=corpus_strata
    )
    assert result.n_corpus == 12 and result.n_uncovered == 2
    assert result.uncovered == [("z", 2)]
    assert result.weighted and result.stratified
    a = result.rows[0]
    # weights N_h / n_h = 2 (x) and 2 (y) stand for the 10 covered texts; z's 2 texts are
    # counted by their predictions: theta = 7/12 + (2 * (0 - 1 + 0) + 2 * (0 + 0)) / 12
    assert 3 * 2 + 2 * 2 + result.n_uncovered == result.n_corpus
    assert a.corrected == pytest.approx(7 / 12 - 2 / 12)
    assert a.naive == pytest.approx(7 / 12)
    # the interval allows any share among z's texts: 1 of them predicted a, 1 not
    plain = estimate.ppi_interval(
        np.array(corpus_pred) == "a",
        np.array(pred) == "a",
        np.array(gold) == "a",
        np.full(5, 2.0),
        np.array([0, 0, 0, 1, 1]),
        covered=10 / 12,
    )
    assert a.corrected_ci == pytest.approx(
        (max(0.0, plain.low - 1 / 12), min(1.0, plain.high + 1 / 12))
    )
    assert a.corrected_ci[1] > plain.high
    # sample-only: the covered strata's share, its interval stretched over z's texts
    assert a.sample_only == pytest.approx((2 * 2 + 0) / 10)
    lo, hi = a.sample_only_ci
    only = estimate.share_interval(
        np.array(gold) == "a", np.full(5, 2.0), np.array([0, 0, 0, 1, 1])
    )
    assert (lo, hi) == pytest.approx((only.low * 10 / 12, only.high * 10 / 12 + 2 / 12))
    assert sum(r.corrected for r in result.rows) == pytest.approx(1.0)
    with pytest.raises(estimate.EstimateError, match="corpus only 0"):
        estimate.estimate_shares(
            corpus_pred, pred, gold, ["a", "b"], strata=["w"] * 5, corpus_strata=corpus_strata
        )


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


# ---------------------------------------------------------------- rare, never predicted

RARE_N, RARE_REPS = 20_000, 1000
#: Classes 0-4 are predicted (85% right); 5-8 (3%, 2%, 1.5%, 0.5%) never are.
RARE_SHARES = [0.43, 0.25, 0.15, 0.08, 0.02, 0.03, 0.02, 0.015, 0.005]
RARE_PREDICTED = 5
#: The coverage every category's interval must reach. Measured (seeds below): at least 0.903
#: for every category and n (corrected and sample-only; the lowest are Wilson's dip for the
#: 0.5% class at n = 100 and the normal interval of the predicted 2% class at n = 200, 0.905,
#: as before); the test leaves one point for simulation noise (sd about 0.007 at 1,000
#: samples). The plain normal interval, zero-width when no coded text is in a category the
#: model never predicts, covered the 0.5% class in 0.375, 0.629 and 0.748 of the samples of
#: 100, 200 and 300.
RARE_COVERAGE = 0.89


@pytest.fixture(scope="module")
def rare_corpus():
    rng = np.random.default_rng(7)
    k = len(RARE_SHARES)
    truth = rng.choice(k, size=RARE_N, p=RARE_SHARES)
    pred = truth.copy()
    wrong = rng.random(RARE_N) < 0.15
    pred[wrong] = rng.choice(RARE_PREDICTED, size=wrong.sum())
    never = truth >= RARE_PREDICTED
    pred[never] = rng.choice(RARE_PREDICTED, size=never.sum(), p=[0.4, 0.3, 0.2, 0.1, 0.0])
    return truth, pred


@pytest.mark.parametrize("n_coded", [100, 200, 300])
def test_simulation_rare_and_never_predicted_categories_are_covered(rare_corpus, n_coded):
    truth, pred = rare_corpus
    k = len(RARE_SHARES)
    onehot = lambda c: c[..., None, :] == np.arange(k)[:, None]  # noqa: E731
    true_share = np.bincount(truth, minlength=k) / RARE_N
    assert np.bincount(pred, minlength=k)[RARE_PREDICTED:].sum() == 0  # never predicted
    rng = np.random.default_rng(n_coded)
    idx = rng.random((RARE_REPS, RARE_N)).argpartition(n_coded, axis=1)[:, :n_coded]
    f_c, f_s, y_s = onehot(pred), onehot(pred[idx]), onehot(truth[idx])
    result = estimate.ppi_interval(f_c, f_s, y_s)
    covered = (result.low <= true_share) & (true_share <= result.high)
    coverage = covered.mean(axis=0)
    assert np.all(coverage >= RARE_COVERAGE), coverage
    assert np.all(result.high - result.low > 0)  # never a zero-width interval
    # the sample-only intervals too
    only = estimate.share_interval(y_s)
    only_coverage = ((only.low <= true_share) & (true_share <= only.high)).mean(axis=0)
    assert np.all(only_coverage >= RARE_COVERAGE), only_coverage
    # the plain normal interval fails here: zero width where no coded text is in the class
    theta, var = estimate.ppi_mean(f_c, f_s, y_s)
    normal = (np.abs(theta - true_share) <= Z95 * np.sqrt(var)).mean(axis=0)
    assert normal[-1] < 0.8, normal  # 0.375, 0.629, 0.748
    # the public function agrees with the vectorised core
    names = np.array([f"c{j}" for j in range(k)])
    first = estimate.estimate_shares(
        names[pred], names[pred[idx[0]]], names[truth[idx[0]]], list(names)
    )
    assert [r.corrected_ci[0] for r in first.rows] == pytest.approx(result.low[0])
    assert [r.corrected_ci[1] for r in first.rows] == pytest.approx(result.high[0])

"""Agreement metrics against scikit-learn and the krippendorff package, edge cases, bootstrap."""

from __future__ import annotations

import json
import math

import krippendorff
import numpy as np
import pytest
from sklearn import metrics as skm

from distill_core import agreement as ag

# scikit-learn warns (UndefinedMetricWarning, a UserWarning) on the edge cases we compare to.
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

TOL = 1e-9


def random_codings(seed: int, k: int, n: int, extra_pred_class: bool = False):
    """Gold and noisy predictions over k classes (class names unsorted on purpose)."""
    rng = np.random.default_rng(seed)
    names = [f"c{(7 * i) % 11}" for i in range(k)]
    probs = rng.dirichlet(np.ones(k))
    gold = [names[i] for i in rng.choice(k, size=n, p=probs)]
    pool = [*names, "zz_other"] if extra_pred_class else names
    pred = [g if rng.random() < 0.6 else pool[rng.integers(len(pool))] for g in gold]
    return gold, pred


def kripp_reference(coders: list[list[object]]) -> float:
    """krippendorff.alpha on coders × units data, labels mapped to ints, missing to nan."""
    values = sorted({str(v) for row in coders for v in row if v is not None})
    index = {v: i for i, v in enumerate(values)}
    data = np.array(
        [[np.nan if v is None else index[str(v)] for v in row] for row in coders], dtype=float
    )
    return float(krippendorff.alpha(reliability_data=data, level_of_measurement="nominal"))


CASES = [
    (seed, k, n, extra)
    for seed, (k, n) in enumerate([(2, 10), (3, 37), (4, 120), (5, 500), (6, 250), (2, 500)])
    for extra in (False, True)
]


@pytest.mark.parametrize(("seed", "k", "n", "extra"), CASES)
def test_metrics_match_sklearn_on_random_data(seed, k, n, extra):
    gold, pred = random_codings(seed, k, n, extra)
    labels = sorted(set(gold) | set(pred))
    assert abs(ag.accuracy(gold, pred) - skm.accuracy_score(gold, pred)) < TOL
    for avg, fn in (("macro", ag.macro_f1), ("weighted", ag.weighted_f1)):
        expected = skm.f1_score(gold, pred, average=avg, zero_division=0)
        assert abs(fn(gold, pred) - expected) < TOL
    assert abs(ag.cohen_kappa(gold, pred) - skm.cohen_kappa_score(gold, pred)) < TOL
    assert ag.confusion_matrix(gold, pred) == skm.confusion_matrix(gold, pred).tolist()

    p, r, f, s = skm.precision_recall_fscore_support(gold, pred, zero_division=0)
    got = ag.per_class(gold, pred)
    assert list(got) == labels
    for i, label in enumerate(labels):
        m = got[label]
        assert abs(m.precision - p[i]) < TOL
        assert abs(m.recall - r[i]) < TOL
        assert abs(m.f1 - f[i]) < TOL
        assert m.support == s[i]

    result = ag.compare(gold, pred, n_boot=0)
    assert result.n == n
    assert abs(result.accuracy - skm.accuracy_score(gold, pred)) < TOL
    assert abs(result.macro_f1 - skm.f1_score(gold, pred, average="macro", zero_division=0)) < TOL
    assert abs(result.cohen_kappa - skm.cohen_kappa_score(gold, pred)) < TOL
    assert abs(result.krippendorff_alpha - kripp_reference([gold, pred])) < TOL
    assert result.confusion == skm.confusion_matrix(gold, pred).tolist()
    assert result.labels == labels


@pytest.mark.parametrize("seed", range(4))
def test_explicit_labels_follow_sklearn(seed):
    gold, pred = random_codings(seed, 4, 200, extra_pred_class=True)
    present = sorted(set(gold))
    for labels in (present[::-1], present[:2], [*present, "never_seen"]):
        p, r, f, s = skm.precision_recall_fscore_support(gold, pred, labels=labels, zero_division=0)
        got = ag.per_class(gold, pred, labels)
        assert list(got) == labels
        assert np.allclose([got[x].precision for x in labels], p, atol=TOL)
        assert np.allclose([got[x].recall for x in labels], r, atol=TOL)
        assert np.allclose([got[x].f1 for x in labels], f, atol=TOL)
        assert [got[x].support for x in labels] == s.tolist()
        for avg, fn in (("macro", ag.macro_f1), ("weighted", ag.weighted_f1)):
            expected = skm.f1_score(gold, pred, labels=labels, average=avg, zero_division=0)
            assert abs(fn(gold, pred, labels) - expected) < TOL
        assert (
            ag.confusion_matrix(gold, pred, labels)
            == skm.confusion_matrix(gold, pred, labels=labels).tolist()
        )
        expected_kappa = skm.cohen_kappa_score(gold, pred, labels=labels)
        assert abs(ag.cohen_kappa(gold, pred, labels) - expected_kappa) < TOL


@pytest.mark.parametrize("seed", range(4))
def test_binary_f1_matches_sklearn(seed):
    gold, pred = random_codings(seed, 2, 150)
    for positive in sorted(set(gold)):
        expected = skm.f1_score(gold, pred, pos_label=positive, average="binary", zero_division=0)
        assert abs(ag.binary_f1(gold, pred, positive) - expected) < TOL
        result = ag.compare(gold, pred, positive_label=positive, n_boot=50)
        assert result.binary_f1 == pytest.approx(expected, abs=TOL)
        assert "binary_f1" in result.ci
    # on multi-class data: that class's one-vs-rest F1
    gold, pred = random_codings(seed, 4, 150)
    label = sorted(set(gold))[0]
    expected = skm.f1_score(gold, pred, labels=[label], average=None, zero_division=0)[0]
    assert abs(ag.binary_f1(gold, pred, label) - expected) < TOL


def test_one_class_only():
    gold = pred = ["a"] * 5
    assert ag.accuracy(gold, pred) == 1.0
    assert ag.macro_f1(gold, pred) == skm.f1_score(gold, pred, average="macro") == 1.0
    assert math.isnan(skm.cohen_kappa_score(gold, pred))
    assert math.isnan(ag.cohen_kappa(gold, pred))
    assert ag.confusion_matrix(gold, pred) == [[5]]
    result = ag.compare(gold, pred, n_boot=20)
    assert math.isnan(result.cohen_kappa) and math.isnan(result.krippendorff_alpha)
    assert math.isnan(result.ci["cohen_kappa"][0])
    assert result.ci["accuracy"] == (1.0, 1.0)
    d = result.to_dict()
    json.dumps(d, allow_nan=False)
    assert d["cohen_kappa"] is None and d["krippendorff_alpha"] is None


def test_kappa_when_each_coding_uses_a_different_single_class():
    # Each coding uses one class, not the same one: p_e = 0, so kappa is defined (0).
    gold, pred = ["a"] * 4, ["b"] * 4
    assert ag.cohen_kappa(gold, pred) == pytest.approx(skm.cohen_kappa_score(gold, pred))
    assert ag.cohen_kappa(gold, pred) == 0.0


def test_label_never_predicted_has_precision_zero():
    gold = ["a", "a", "b", "b", "c"]
    pred = ["a", "a", "b", "a", "a"]
    got = ag.per_class(gold, pred)
    assert got["c"] == ag.ClassMetrics(precision=0.0, recall=0.0, f1=0.0, support=1)
    assert got["a"].precision == pytest.approx(0.5)
    p, _, _, _ = skm.precision_recall_fscore_support(gold, pred, zero_division=0)
    assert got["c"].precision == p[2] == 0.0


def test_all_wrong():
    gold = ["a", "b", "a", "b"]
    pred = ["b", "a", "b", "a"]
    assert ag.accuracy(gold, pred) == 0.0
    assert ag.macro_f1(gold, pred) == 0.0
    assert ag.cohen_kappa(gold, pred) == pytest.approx(skm.cohen_kappa_score(gold, pred)) == -1.0
    assert ag.compare(gold, pred, n_boot=0).krippendorff_alpha == pytest.approx(
        kripp_reference([gold, pred])
    )


@pytest.mark.parametrize(
    "call",
    [
        lambda: ag.compare([], []),
        lambda: ag.accuracy([], []),
        lambda: ag.macro_f1([], []),
        lambda: ag.cohen_kappa([], []),
        lambda: ag.confusion_matrix([], []),
        lambda: ag.krippendorff_alpha([]),
    ],
)
def test_empty_input_is_a_clear_value_error(call):
    with pytest.raises(ValueError, match=r"\w+ .*\."):
        call()


def test_bad_input_errors():
    with pytest.raises(ValueError, match="differ in length"):
        ag.accuracy(["a", "b"], ["a"])
    with pytest.raises(ValueError, match="missing value"):
        ag.compare(["a", None], ["a", "a"])
    with pytest.raises(ValueError, match="not one of the labels"):
        ag.compare(["a", "x"], ["a", "a"], labels=["a", "b"])
    with pytest.raises(ValueError, match="positive label"):
        ag.compare(["a", "b"], ["a", "a"], positive_label="z")
    with pytest.raises(ValueError, match="positive label"):
        ag.compare(["a", "b"], ["a", None], positive_label=ag.MISSING)
    with pytest.raises(ValueError, match="reserved"):
        ag.compare([ag.MISSING], ["a"])


def test_missing_predictions_count_against():
    gold = ["a", "a", "b", "b", "c", "c"]
    pred = ["a", None, "b", float("nan"), "c", "a"]
    filled = [ag.MISSING if p is None or p != p else p for p in pred]
    result = ag.compare(gold, pred, n_boot=0)
    assert result.n == 6 and result.n_missing == 2
    assert result.accuracy == pytest.approx(3 / 6)
    labels = ["a", "b", "c"]
    # missing is an answer, not a class: classes averaged over exclude it
    assert list(result.per_class) == labels
    assert result.per_class["a"].recall == 0.5
    expected = skm.f1_score(gold, filled, labels=labels, average="macro", zero_division=0)
    assert result.macro_f1 == pytest.approx(expected, abs=TOL)
    assert ag.macro_f1(gold, pred) == pytest.approx(expected, abs=TOL)
    assert result.cohen_kappa == pytest.approx(skm.cohen_kappa_score(gold, filled), abs=TOL)
    assert result.krippendorff_alpha == pytest.approx(kripp_reference([gold, filled]), abs=TOL)
    assert result.labels == [*labels, ag.MISSING]
    assert result.confusion == skm.confusion_matrix(gold, filled, labels=result.labels).tolist()
    assert result.confusion[0][3] == 1 and result.confusion[3] == [0, 0, 0, 0]


def test_prediction_outside_codebook_labels_is_invalid():
    gold = ["a", "b", "a", "b"]
    pred = ["a", "b", "maybe", "b"]
    result = ag.compare(gold, pred, labels=["b", "a"], n_boot=0)
    assert result.labels == ["b", "a", ag.MISSING]
    assert result.n_missing == 1
    assert list(result.per_class) == ["b", "a"]
    assert result.accuracy == 0.75


def test_krippendorff_alpha_three_coders_with_missing():
    # The krippendorff package's documented example (coders × units), 0.691358.
    nan = None
    coders = [
        [nan, nan, nan, nan, nan, 3, 4, 1, 2, 1, 1, 3, 3, nan, 3],
        [1, nan, 2, 1, 3, 3, 4, 3, nan, nan, nan, nan, nan, nan, nan],
        [nan, nan, 2, 1, 3, 4, 4, nan, 2, 1, 1, 3, 3, nan, 4],
    ]
    units = [list(u) for u in zip(*coders, strict=True)]
    assert ag.krippendorff_alpha(units) == pytest.approx(0.691358, abs=1e-6)
    assert abs(ag.krippendorff_alpha(units) - kripp_reference(coders)) < TOL


@pytest.mark.parametrize("seed", range(5))
def test_krippendorff_alpha_random_against_package(seed):
    rng = np.random.default_rng(100 + seed)
    n_coders, n_units, k = 2 + seed % 3, 30 + 40 * seed, 2 + seed
    truth = rng.integers(k, size=n_units)
    coders = []
    for _ in range(n_coders):
        row = [
            None if rng.random() < 0.2 else f"v{t if rng.random() < 0.7 else rng.integers(k)}"
            for t in truth
        ]
        coders.append(row)
    units = [list(u) for u in zip(*coders, strict=True)]
    assert abs(ag.krippendorff_alpha(units) - kripp_reference(coders)) < TOL


def test_krippendorff_alpha_undefined_cases_are_nan():
    units = [["a", "a"], ["a", "a", None], ["a"]]
    # the package refuses a single value; we return nan, like kappa's undefined case
    with pytest.raises(ValueError):
        krippendorff.alpha(
            reliability_data=[[1, 1, 1], [1, 1, np.nan]], level_of_measurement="nominal"
        )
    assert math.isnan(ag.krippendorff_alpha(units))
    assert math.isnan(ag.krippendorff_alpha([["a"], ["b", None]]))  # no pairable unit
    # units with one code do not count
    assert ag.krippendorff_alpha([["a", "a"], ["b", "b"], ["c"]]) == 1.0


def test_bootstrap_ci_reproducible_contains_estimate_and_narrows():
    gold, pred = random_codings(3, 3, 200)
    ci = ag.bootstrap_ci(gold, pred, ag.accuracy, n_boot=500, seed=7)
    assert ci == ag.bootstrap_ci(gold, pred, ag.accuracy, n_boot=500, seed=7)
    # accuracy on 200 items is a multiple of 1/200: compare a continuous metric across seeds
    f1_ci = ag.bootstrap_ci(gold, pred, ag.macro_f1, n_boot=500, seed=7)
    assert f1_ci != ag.bootstrap_ci(gold, pred, ag.macro_f1, n_boot=500, seed=8)
    acc = ag.accuracy(gold, pred)
    assert ci[0] < acc < ci[1]
    big_gold, big_pred = random_codings(3, 3, 2000)
    big = ag.bootstrap_ci(big_gold, big_pred, ag.accuracy, n_boot=500, seed=7)
    assert big[1] - big[0] < 0.6 * (ci[1] - ci[0])
    # the vectorised path equals calling the metric once per resample on the same resamples
    labels = sorted(set(gold) | set(pred))
    generic = ag.bootstrap_ci(
        gold, pred, lambda g, p: ag.macro_f1(g, p, labels), n_boot=100, seed=3
    )
    fast = ag.bootstrap_ci(gold, pred, ag.macro_f1, n_boot=100, seed=3)
    assert fast == pytest.approx(generic, abs=TOL)
    result = ag.compare(gold, pred, n_boot=100, seed=3)
    assert result.ci["macro_f1"] == pytest.approx(generic, abs=TOL)
    kappa_generic = ag.bootstrap_ci(
        gold, pred, lambda g, p: ag.cohen_kappa(g, p), n_boot=100, seed=3
    )
    assert result.ci["cohen_kappa"] == pytest.approx(kappa_generic, abs=TOL)


def test_compare_cis_and_to_dict():
    gold, pred = random_codings(5, 4, 1000)
    result = ag.compare(gold, pred, positive_label=sorted(set(gold))[0], n_boot=1000, seed=1)
    assert set(result.ci) == {*ag.CI_METRICS, "binary_f1"}
    for name, (lo, hi) in result.ci.items():
        assert lo <= getattr(result, name) <= hi, name
    assert result == ag.compare(gold, pred, positive_label=sorted(set(gold))[0], seed=1)
    d = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert set(d) >= {
        "n",
        "accuracy",
        "macro_f1",
        "weighted_f1",
        "cohen_kappa",
        "krippendorff_alpha",
        "per_class",
        "ci",
        "binary_f1",
        "positive_label",
        "labels",
        "confusion",
    }
    assert d["ci"]["accuracy"] == list(result.ci["accuracy"])
    assert set(d["per_class"][d["labels"][0]]) == {"precision", "recall", "f1", "support"}
    assert sum(map(sum, d["confusion"])) == 1000


def test_expected_accuracy_halfwidth():
    assert ag.expected_accuracy_halfwidth(100, 0.8) == pytest.approx(1.959963985 * 0.04, rel=1e-8)
    assert ag.expected_accuracy_halfwidth(400, 0.5, 0.9) == pytest.approx(
        1.644853627 * 0.025, rel=1e-8
    )
    assert ag.expected_accuracy_halfwidth(10, 1.0) == 0.0
    n = ag.sample_size_for_halfwidth(0.05, 0.8)
    assert n == 246
    assert ag.expected_accuracy_halfwidth(n, 0.8) <= 0.05 < ag.expected_accuracy_halfwidth(n - 1)
    with pytest.raises(ValueError):
        ag.expected_accuracy_halfwidth(0)


def test_pairwise_agreement():
    codes = {
        "ann": {"1": "x", "2": "y", "3": "x", "4": "y", "5": "x"},
        "bob": {"1": "x", "2": "y", "3": "y", "4": "y", "6": "x"},
        "cyd": {"1": "x", "3": "x", "5": "y", "6": "x", "7": None},
        "dan": {"9": "x"},
    }
    result = ag.pairwise_agreement(codes)
    assert result.coders == ["ann", "bob", "cyd", "dan"]
    assert result.n_items == 7  # items 1-6 and 9 (7 has no code)
    pairs = {(p.coder_a, p.coder_b): p for p in result.pairs}
    ab = pairs[("ann", "bob")]
    assert ab.n == 4 and ab.percent_agreement == 0.75
    assert ab.cohen_kappa == pytest.approx(
        skm.cohen_kappa_score(["x", "y", "x", "y"], ["x", "y", "y", "y"]), abs=TOL
    )
    assert pairs[("ann", "cyd")].n == 3
    assert pairs[("ann", "dan")].n == 0 and math.isnan(pairs[("ann", "dan")].percent_agreement)
    ids = ["1", "2", "3", "4", "5", "6", "9"]
    coders = [[codes[c].get(i) for i in ids] for c in result.coders]
    assert abs(result.krippendorff_alpha - kripp_reference(coders)) < TOL
    json.dumps(result.to_dict(), allow_nan=False)
    with pytest.raises(ValueError, match="two coders"):
        ag.pairwise_agreement({"ann": {"1": "x"}})


def test_class_f1_intervals_match_per_class_f1_on_the_same_resamples() -> None:
    rng = np.random.default_rng(3)
    labels = ["a", "b", "c"]
    gold = list(rng.choice(labels, 80))
    pred = [g if rng.random() < 0.7 else rng.choice(labels) for g in gold]
    got = ag.class_f1_intervals(gold, pred, labels, seed=5, n_boot=200)
    idx = np.random.default_rng(5).integers(0, len(gold), size=(200, len(gold)))
    for label in labels:
        f1s = [
            ag.per_class([gold[i] for i in row], [pred[i] for i in row], labels=labels)[label].f1
            for row in idx
        ]
        assert got[label] == pytest.approx((np.percentile(f1s, 2.5), np.percentile(f1s, 97.5)))
        point = ag.per_class(gold, pred, labels=labels)[label].f1
        assert got[label][0] <= point <= got[label][1]

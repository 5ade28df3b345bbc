"""Agreement metrics against scikit-learn and the krippendorff package, edge cases, bootstrap."""

from __future__ import annotations

import json
import math
from statistics import NormalDist

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
        # Changed rule: a codebook label that occurs nowhere (no gold item, no prediction:
        # "never_seen") has nan precision/recall/F1 and is left out of macro-F1, where
        # scikit-learn, given labels, writes 0 and averages it in. So per class we check
        # scikit-learn's figures for the labels that occur and nan for the others, and
        # macro-F1 against scikit-learn's with labels = the labels that occur.
        occurring = [x for x in labels if x in set(gold) | set(pred)]
        p, r, f, s = skm.precision_recall_fscore_support(gold, pred, labels=labels, zero_division=0)
        got = ag.per_class(gold, pred, labels)
        assert list(got) == labels
        for i, x in enumerate(labels):
            if x in occurring:
                assert abs(got[x].precision - p[i]) < TOL
                assert abs(got[x].recall - r[i]) < TOL
                assert abs(got[x].f1 - f[i]) < TOL
            else:
                assert math.isnan(got[x].precision) and math.isnan(got[x].recall)
                assert math.isnan(got[x].f1)
        assert [got[x].support for x in labels] == s.tolist()
        for avg, fn in (("macro", ag.macro_f1), ("weighted", ag.weighted_f1)):
            expected = skm.f1_score(gold, pred, labels=occurring, average=avg, zero_division=0)
            assert abs(fn(gold, pred, labels) - expected) < TOL
        # weighted-F1 weights by support, so an unused label never moved it
        assert (
            abs(
                ag.weighted_f1(gold, pred, labels)
                - skm.f1_score(gold, pred, labels=labels, average="weighted", zero_division=0)
            )
            < TOL
        )
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
    # Changed: accuracy's interval is Wilson's now, not a bootstrap's (which was (1, 1), zero
    # width, at 5 of 5 correct): (5 / (5 + z²), 1).
    z = 1.959963984540054
    assert result.ci["accuracy"] == pytest.approx((5 / (5 + z * z), 1.0), abs=1e-12)
    assert result.ci_method["accuracy"] == "wilson"
    assert not result.reliable and "5 texts" in result.caution
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
    # Changed: compare's macro-F1 and kappa intervals are this BCa interval widened, where
    # needed, to hold the weak-prior posterior interval (module docstring), so they contain it
    # rather than equal it; on 200 items the widening is small.
    result = ag.compare(gold, pred, n_boot=100, seed=3)
    kappa_generic = ag.bootstrap_ci(
        gold, pred, lambda g, p: ag.cohen_kappa(g, p), n_boot=100, seed=3
    )
    for name, bca in (("macro_f1", generic), ("cohen_kappa", kappa_generic)):
        lo, hi = result.ci[name]
        assert lo <= bca[0] + TOL and hi >= bca[1] - TOL, name
        assert (bca[0] - lo) + (hi - bca[1]) < 0.05, name
        assert result.ci_method[name] == "bca+dirichlet"


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
        "averaged",
        "ci_method",
        "per_class_ci",
        "reliable",
        "caution",
    }
    assert d["ci"]["accuracy"] == list(result.ci["accuracy"])
    assert d["reliable"] is True and d["caution"] is None
    assert d["averaged"] == d["labels"] == sorted(set(gold))
    assert d["ci_method"] == {
        "accuracy": "wilson",
        **{k: "bca+dirichlet" for k in (*ag.CI_METRICS[1:], "binary_f1")},
    }
    assert ag.Agreement.from_dict(d) == result
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


def reference_bca(gold, pred, stat, idx, alpha=0.05):
    """BCa written out plainly (Efron & Tibshirani 1993, 14.3): ``stat`` on each resample
    (rows of ``idx``; nan values dropped) and on each leave-one-out sample."""
    theta = stat(gold, pred)
    boot = [stat([gold[i] for i in row], [pred[i] for i in row]) for row in idx]
    boot = np.array([b for b in boot if not math.isnan(b)])
    share = (np.sum(boot < theta - 1e-12) + np.sum(boot <= theta + 1e-12)) / (2 * len(boot))
    share = min(max(share, 0.5 / len(boot)), 1 - 0.5 / len(boot))
    nd = NormalDist()
    z0 = nd.inv_cdf(share)
    jack = [stat(gold[:i] + gold[i + 1 :], pred[:i] + pred[i + 1 :]) for i in range(len(gold))]
    jack = np.array([j for j in jack if not math.isnan(j)])
    d = jack.mean() - jack
    d[np.abs(d) < 1e-10] = 0
    a = (d**3).sum() / (6 * (d**2).sum() ** 1.5) if (d**2).sum() > 0 else 0.0
    bounds = []
    for q in (alpha / 2, 1 - alpha / 2):
        z = nd.inv_cdf(q)
        bounds.append(float(np.percentile(boot, 100 * nd.cdf(z0 + (z0 + z) / (1 - a * (z0 + z))))))
    return tuple(bounds)


def test_class_f1_intervals_are_bca_on_the_resamples_where_the_class_occurs() -> None:
    # Changed: the per-class F1 interval was the percentile interval over all resamples, with
    # F1 0 where the class was absent; now it is BCa over the resamples where the class
    # occurs, widened (if at all) by the weak-prior posterior interval.
    rng = np.random.default_rng(3)
    labels = ["a", "b", "c", "rare"]
    gold = list(rng.choice(labels[:3], 80)) + ["rare"]
    pred = [g if rng.random() < 0.7 else rng.choice(labels[:3]) for g in gold[:-1]] + ["rare"]
    got = ag.class_f1_intervals(gold, pred, labels, seed=5, n_boot=200)
    idx = np.random.default_rng(5).integers(0, len(gold), size=(200, len(gold)))
    result = ag.compare(gold, pred, labels=labels, n_boot=200, seed=5)
    for label in labels:

        def f1_of(g, p, label=label):
            return ag.per_class(g, p, labels=labels)[label].f1

        bca = reference_bca(gold, pred, f1_of, idx)
        assert ag.bootstrap_ci(gold, pred, f1_of, n_boot=200, seed=5) == pytest.approx(bca)
        lo, hi = got[label]
        assert lo <= bca[0] + TOL and hi >= bca[1] - TOL
        point = ag.per_class(gold, pred, labels=labels)[label].f1
        assert lo <= point <= hi
        assert result.per_class_ci[label]["f1"] == got[label]
    # "rare" (one gold item, predicted right: F1 1) is absent from about a third of the
    # resamples; those do not count as F1 0 (which made the old interval start at 0) ...
    assert sum("rare" not in [gold[i] for i in row] for row in idx) > 50

    def f1_rare(g, p):
        return ag.per_class(g, p, labels=labels)["rare"].f1

    assert ag.bootstrap_ci(gold, pred, f1_rare, n_boot=200, seed=5) == (1.0, 1.0)
    assert ag.bootstrap_ci(gold, pred, f1_rare, n_boot=200, seed=5, method="percentile") == (
        1.0,
        1.0,
    )
    # ... and one item cannot show that an F1 near 1 is likely: the posterior keeps the
    # interval open below
    assert got["rare"][1] == 1.0 and got["rare"][0] < 0.5


def test_codebook_category_that_occurs_nowhere_is_left_out():
    gold = ["a", "a", "b", "b", "b", "a", "c", "a"]
    pred = ["a", "b", "b", "b", "a", "a", "c", None]
    labels = ["a", "b", "c", "unused", "also_unused"]
    result = ag.compare(gold, pred, labels=labels, n_boot=200)
    occurring = ["a", "b", "c"]
    filled = [ag.MISSING if p is None else p for p in pred]
    expected = skm.f1_score(gold, filled, labels=occurring, average="macro", zero_division=0)
    assert result.macro_f1 == pytest.approx(expected, abs=TOL)
    assert result.averaged == occurring
    assert result.weighted_f1 == pytest.approx(
        skm.f1_score(gold, filled, labels=labels, average="weighted", zero_division=0), abs=TOL
    )
    for label in ("unused", "also_unused"):
        m = result.per_class[label]
        assert math.isnan(m.precision) and math.isnan(m.recall) and math.isnan(m.f1)
        assert m.support == 0
        assert all(math.isnan(v) for ci in result.per_class_ci[label].values() for v in ci)
    # the confusion matrix keeps every codebook label, then the missing answer
    assert result.labels == [*labels, ag.MISSING]
    assert len(result.confusion) == 6 and result.confusion[3] == [0] * 6
    d = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert d["per_class"]["unused"] == {"precision": None, "recall": None, "f1": None, "support": 0}
    assert d["averaged"] == occurring
    back = ag.Agreement.from_dict(d)
    assert back.averaged == occurring and math.isnan(back.per_class["unused"].f1)
    assert back.ci == result.ci and back.ci_method == result.ci_method
    assert back.per_class_ci["a"] == result.per_class_ci["a"]


def test_from_dict_reads_a_record_written_before_the_new_fields():
    old = {
        "n": 40,
        "accuracy": 0.5,
        "macro_f1": 0.4,
        "weighted_f1": 0.45,
        "cohen_kappa": 0.2,
        "krippendorff_alpha": 0.19,
        "per_class": {
            "a": {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 20},
            "b": {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 20},
            "c": {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0},
        },
        "ci": {"accuracy": [0.35, 0.65], "macro_f1": [0.3, 0.5]},
        "binary_f1": None,
        "positive_label": None,
        "labels": ["a", "b", "c"],
        "confusion": [[10, 10, 0], [10, 10, 0], [0, 0, 0]],
        "n_missing": 0,
    }
    back = ag.Agreement.from_dict(old)
    # what was true then: macro-F1 over every class, percentile bootstrap intervals
    assert back.averaged == ["a", "b", "c"]
    assert back.ci_method == {"accuracy": "percentile", "macro_f1": "percentile"}
    assert back.per_class_ci == {} and back.reliable and back.caution is None
    assert back.ci["accuracy"] == (0.35, 0.65)


def test_five_of_five_correct_is_no_longer_dragged_to_half():
    # Before: a class absent from a resample counted as F1 0, so 5 of 5 correct gave a
    # macro-F1 interval (0.5, 1.0). Now no resample is below 1 ...
    gold = ["a", "a", "b", "b", "a"]
    assert ag.bootstrap_ci(gold, gold, ag.macro_f1) == (1.0, 1.0)
    assert ag.bootstrap_ci(gold, gold, ag.macro_f1, method="percentile") == (1.0, 1.0)
    # ... but five texts cannot show an error rate, so compare's interval keeps the width the
    # weak prior gives (like Wilson's for accuracy), and says the intervals are unreliable.
    result = ag.compare(gold, gold, labels=["a", "b", "c"])
    assert result.macro_f1 == 1.0 and result.averaged == ["a", "b"]
    lo, hi = result.ci["macro_f1"]
    assert hi == 1.0 and 0.4 < lo < 0.8
    assert result.reliable is False
    assert result.caution.startswith("Only 5 texts were scored, fewer than 30")


def test_reliable_from_min_reliable_n():
    for n, reliable in ((1, False), (ag.MIN_RELIABLE_N - 1, False), (ag.MIN_RELIABLE_N, True)):
        gold = (["a", "b"] * n)[:n]
        result = ag.compare(gold, gold, n_boot=10)
        assert result.reliable is reliable
        assert (result.caution is None) is reliable
        assert result.to_dict()["reliable"] is reliable
    assert ag.caution_for(1).startswith("Only 1 text was scored")
    assert ag.caution_for(29).count(".") == 1  # one sentence


def test_wilson_intervals_for_accuracy_precision_and_recall():
    z = 1.959963984540054

    def wilson(k, t):
        p = k / t
        centre = (p + z * z / (2 * t)) / (1 + z * z / t)
        half = z * math.sqrt(p * (1 - p) / t + z * z / (4 * t * t)) / (1 + z * z / t)
        return (centre - half, centre + half)

    assert ag.wilson_interval(15, 15) == pytest.approx((0.7961, 1.0), abs=1e-4)
    assert ag.wilson_interval(7, 20) == pytest.approx(wilson(7, 20), abs=1e-12)
    assert ag.wilson_interval(0, 10)[0] == 0.0
    assert all(math.isnan(x) for x in ag.wilson_interval(0, 0))
    gold, pred = random_codings(2, 3, 90)
    result = ag.compare(gold, pred, n_boot=50)
    cm = np.array(result.confusion)
    assert result.ci["accuracy"] == pytest.approx(wilson(np.trace(cm), cm.sum()), abs=1e-12)
    for j, label in enumerate(result.labels):
        tp = cm[j, j]
        ci = result.per_class_ci[label]
        assert ci["precision"] == pytest.approx(wilson(tp, cm[:, j].sum()), abs=1e-12)
        assert ci["recall"] == pytest.approx(wilson(tp, cm[j].sum()), abs=1e-12)
        assert ci["precision"][0] <= result.per_class[label].precision <= ci["precision"][1]
        assert result.ci_method["accuracy"] == "wilson"


def test_bca_agrees_with_scipy_on_a_mean():
    # Independent check of the BCa formula: scipy's own BCa on the share of correct items, with
    # its own resamples, lands within resampling noise of ours.
    from scipy import stats

    gold, pred = random_codings(4, 3, 120)
    ours = ag.bootstrap_ci(gold, pred, ag.accuracy, n_boot=8000, seed=1)
    correct = np.array([g == p for g, p in zip(gold, pred, strict=True)], float)
    theirs = stats.bootstrap(
        (correct,), np.mean, n_resamples=8000, method="BCa", random_state=1
    ).confidence_interval
    assert ours == pytest.approx((theirs.low, theirs.high), abs=0.01)


def test_codes_are_read_as_text_the_same_way_everywhere():
    # 1, 1.0, numpy's 1 and "1" are one code for alpha, as for the other metrics
    units = [[1, "1"], [2.0, "2"], [np.int64(1), 1.0], ["3", 3]]
    assert ag.krippendorff_alpha(units) == 1.0
    assert ag.krippendorff_alpha(units) == ag.krippendorff_alpha(
        [["1", "1"], ["2", "2"], ["1", "1"], ["3", "3"]]
    )
    mixed = [[1, "2"], ["1", 2.0], [1.0, "1"], [2, 2]]
    as_text = [[str(int(float(c))) for c in u] for u in mixed]
    assert ag.krippendorff_alpha(mixed) == pytest.approx(
        kripp_reference([[u[0] for u in as_text], [u[1] for u in as_text]]), abs=TOL
    )
    result = ag.compare([1, 2, 1, 2], ["1", 2.0, np.int64(1), "2"], labels=["1", "2"], n_boot=0)
    assert result.accuracy == 1.0 and result.krippendorff_alpha == 1.0
    assert result.labels == ["1", "2"]
    pa = ag.pairwise_agreement({"ann": {"x": 1, "y": 2}, "bob": {"x": "1", "y": 2.0}})
    assert pa.pairs[0].percent_agreement == 1.0 and pa.krippendorff_alpha == 1.0


def test_posterior_draws_are_the_dirichlet_posterior():
    # The posterior part of the intervals draws the confusion table from Dirichlet(counts +
    # prior) with a shortcut for the empty cells (Gamma(a) as Gamma(1 + a) * U^(1/a), masses
    # under 1e-12 dropped); its marginals must be the exact Beta ones.
    from scipy import stats

    cm = np.array([[5, 0, 0], [0, 4, 1], [0, 0, 5]])
    draws = np.concatenate(list(ag._posterior_draws(cm, 3, 20000, 0))) / cm.sum()
    prior = ag.PRIOR_WEIGHT / 9  # spread over the 3 x 3 cells of the classes that occur
    total = cm.sum() + ag.PRIOR_WEIGHT
    off = draws.sum(axis=(1, 2)) - np.trace(draws, axis1=1, axis2=2)
    floor = 1e-9  # below it the shortcut may write 0: compare the rest, and the share below
    for values, a in ((off, 1 + 6 * prior), (draws[:, 0, 1], prior), (draws[:, 1, 2], 1 + prior)):
        beta = stats.beta(a, total - a)
        below = beta.cdf(floor)
        assert abs(np.mean(values <= floor) - below) < 4 * math.sqrt(below * (1 - below) / 20000)
        above = values[values > floor]

        def cdf(x, beta=beta, below=below):
            return (beta.cdf(x) - below) / (1 - below)

        assert stats.kstest(above, cdf).pvalue > 0.001
    assert np.allclose(draws.sum(axis=(1, 2)), 1.0)

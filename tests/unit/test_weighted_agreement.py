"""Design-weighted agreement of stratified samples (``agreement.weighted_compare``): equal to
scikit-learn's ``sample_weight`` figures and a hand computation, unbiased for the corpus where
the unweighted sample figures are not, with intervals that cover, and strata without a scored
text listed, never dropped silently."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support

from distill_core import sampling
from distill_core.agreement import (
    MISSING,
    STRATIFIED,
    accuracy,
    macro_f1,
    weighted_compare,
)

GOLD = ["a", "a", "b", "b", "c", "a", "b", "c"]
PRED = ["a", "b", "b", "b", "a", "a", "c", "c"]
STRATA = ["x", "x", "x", "y", "y", "z", "z", "z"]
POPULATION = {"x": 30, "y": 10, "z": 60}
WEIGHTS = [10, 10, 10, 5, 5, 20, 20, 20]  # N_h / n_h


def test_weighted_figures_equal_scikit_learns_sample_weight() -> None:
    r = weighted_compare(GOLD, PRED, STRATA, POPULATION, n_boot=0)
    assert r.accuracy == pytest.approx(accuracy_score(GOLD, PRED, sample_weight=WEIGHTS))
    assert r.macro_f1 == pytest.approx(f1_score(GOLD, PRED, average="macro", sample_weight=WEIGHTS))
    p, rc, f, _ = precision_recall_fscore_support(GOLD, PRED, sample_weight=WEIGHTS)
    for j, label in enumerate(["a", "b", "c"]):
        m = r.per_class[label]
        assert (m.precision, m.recall, m.f1) == pytest.approx((p[j], rc[j], f[j]))
        assert m.support == GOLD.count(label)  # the scored texts, not weights
    assert r.n == 8 and r.population == 100 and r.uncovered == [] and r.ci == {}


def test_weighted_figures_by_hand() -> None:
    # weighted confusion (gold row, pred column), classes a, b, c:
    #   a: a 10+20, b 10        b: b 10+5, c 20        c: a 5, c 20
    r = weighted_compare(GOLD, PRED, STRATA, POPULATION, n_boot=0)
    assert r.accuracy == pytest.approx((30 + 15 + 20) / 100)
    assert r.per_class["a"].precision == pytest.approx(30 / 35)
    assert r.per_class["b"].recall == pytest.approx(15 / 35)
    assert r.per_class["c"].f1 == pytest.approx(2 * 20 / (25 + 40))
    f1s = [2 * 30 / (40 + 35), 2 * 15 / (35 + 25), 2 * 20 / (25 + 40)]
    assert r.macro_f1 == pytest.approx(sum(f1s) / 3)
    # equal weights give the unweighted figures
    flat = weighted_compare(GOLD, PRED, ["s"] * 8, {"s": 80}, n_boot=0)
    assert flat.accuracy == pytest.approx(accuracy(GOLD, PRED))
    assert flat.macro_f1 == pytest.approx(macro_f1(GOLD, PRED))


def test_codebook_labels_missing_answers_and_absent_classes() -> None:
    pred = list(PRED)
    pred[0] = None  # an invalid answer: always wrong, never a class
    r = weighted_compare(GOLD, pred, STRATA, POPULATION, labels=["a", "b", "c", "d"], n_boot=50)
    w = np.array(WEIGHTS, float)
    right = np.array([g == p for g, p in zip(GOLD, pred, strict=True)])
    assert r.accuracy == pytest.approx(w[right].sum() / w.sum())
    assert math.isnan(r.per_class["d"].f1) and r.averaged == ["a", "b", "c"]
    assert all(math.isnan(x) for x in r.per_class_ci["d"]["f1"])
    assert MISSING not in r.per_class


def test_a_stratum_without_a_scored_text_is_listed_not_dropped() -> None:
    r = weighted_compare(GOLD, PRED, STRATA, {**POPULATION, "q": 5, None: 7}, n_boot=0)
    assert [(s.key, s.population, s.scored) for s in r.uncovered] == [("q", 5, 0), (None, 7, 0)]
    assert r.population == 100 and math.isnan(r.uncovered[0].weight)
    assert r.to_dict()["strata"][-1] == {"key": None, "population": 7, "scored": 0}
    # the figures are those of the covered strata
    assert r.accuracy == pytest.approx(0.65)


def test_bad_strata_are_one_sentence() -> None:
    with pytest.raises(ValueError, match="population holds 1"):
        weighted_compare(GOLD, PRED, STRATA, {"x": 1, "y": 10, "z": 60})
    with pytest.raises(ValueError, match="population holds 0"):
        weighted_compare(GOLD, PRED, STRATA, {"x": 30, "y": 10})
    with pytest.raises(ValueError, match="strata values"):
        weighted_compare(GOLD, PRED, STRATA[:-1], POPULATION)


def test_intervals_have_width_and_a_thin_stratum_is_a_caution() -> None:
    perfect = weighted_compare(GOLD, GOLD, STRATA, POPULATION, n_boot=200)
    assert perfect.accuracy == 1 and perfect.ci["accuracy"][0] < 0.9  # not (1, 1)
    assert perfect.ci_method == {"accuracy": STRATIFIED, "macro_f1": STRATIFIED}
    thin = weighted_compare(GOLD[:7], PRED[:7], ["x", "x", "x", "y", "y", "z", "w"],
                            {"x": 30, "y": 10, "z": 20, "w": 40}, n_boot=100)  # fmt: skip
    assert [s.key for s in thin.thin] == ["z", "w"] and not thin.reliable
    assert "2 strata have a single scored text" in thin.caution


def _corpus(n: int = 20_000, seed: int = 1, accuracies=(0.95, 0.55, 0.40)):
    """An LLM-labelled corpus whose LLM labels are the strata, 85%, 11% and 4% of the texts,
    right for ``accuracies`` of them (by default: the rare labels are often wrong)."""
    rng = np.random.default_rng(seed)
    classes = np.array(["common", "rare", "tiny"])
    pred = classes[rng.choice(3, size=n, p=[0.85, 0.11, 0.04])]
    common, rare, tiny = accuracies
    right = rng.random(n) < np.select([pred == "common", pred == "rare"], [common, rare], tiny)
    shift = rng.integers(1, 3, size=n)  # a wrong answer: one of the two other classes
    other = classes[(np.searchsorted(classes, pred) + shift) % 3]
    gold = np.where(right, pred, other)
    return gold, pred


def test_the_weighted_estimate_is_unbiased_for_the_corpus_and_its_intervals_cover() -> None:
    gold, pred = _corpus()
    ids = [str(i) for i in range(len(gold))]
    population = {c: int((pred == c).sum()) for c in ("common", "rare", "tiny")}
    true_acc, true_f1 = accuracy(gold, pred), macro_f1(gold, pred)
    reps = 300
    weighted, unweighted, cover_acc, cover_f1 = [], [], 0, 0
    for r in range(reps):
        # 150 texts, at least 40 per LLM label: 'rare' 2.4 and 'tiny' 6.9 times over-sampled
        chosen = sampling.stratified(ids, list(pred), 150, seed=r, min_per_stratum=40)
        idx = np.array([int(c) for c in chosen])
        res = weighted_compare(gold[idx], pred[idx], pred[idx], population, n_boot=300, seed=r)
        weighted.append(res.accuracy)
        unweighted.append(accuracy(gold[idx], pred[idx]))
        cover_acc += res.ci["accuracy"][0] <= true_acc <= res.ci["accuracy"][1]
        cover_f1 += res.ci["macro_f1"][0] <= true_f1 <= res.ci["macro_f1"][1]
    se = np.std(weighted) / np.sqrt(reps)
    assert abs(np.mean(weighted) - true_acc) < max(3 * se, 0.004)
    assert np.mean(unweighted) < true_acc - 0.1  # the sample's figure is not the corpus's
    # nominal 95%; measured 96% and 96%
    assert cover_acc / reps >= 0.92 and cover_f1 / reps >= 0.92


def test_small_stratified_samples_whose_strata_show_no_error_still_get_honest_intervals() -> None:
    gold, pred = _corpus(accuracies=(0.98, 0.9, 0.9), seed=3)
    ids = [str(i) for i in range(len(gold))]
    population = {c: int((pred == c).sum()) for c in ("common", "rare", "tiny")}
    true_acc, true_f1 = accuracy(gold, pred), macro_f1(gold, pred)
    reps, cover_acc, cover_f1, narrow = 200, 0, 0, 0
    for r in range(reps):
        chosen = sampling.stratified(ids, list(pred), 30, seed=r, min_per_stratum=8)
        idx = np.array([int(c) for c in chosen])
        res = weighted_compare(gold[idx], pred[idx], pred[idx], population, n_boot=200, seed=r)
        cover_acc += res.ci["accuracy"][0] <= true_acc <= res.ci["accuracy"][1]
        cover_f1 += res.ci["macro_f1"][0] <= true_f1 <= res.ci["macro_f1"][1]
        narrow += res.ci["accuracy"][1] - res.ci["accuracy"][0] < 0.02
        if all(res.per_class[c].recall == 1 for c in res.averaged):
            assert res.ci["accuracy"][0] < 0.95  # no error seen, none ruled out
    assert narrow == 0 and cover_acc / reps >= 0.93 and cover_f1 / reps >= 0.93

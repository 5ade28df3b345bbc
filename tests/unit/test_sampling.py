"""Sampling: reproducible draws, proportional stratification, dev/test splits, weights."""

from __future__ import annotations

import random
from collections import Counter

import numpy as np
import pytest
from scipy import stats

from distill_core import sampling as sm

IDS = [f"t{i:04d}" for i in range(1000)]
# 590 a, 300 b, 100 c, 10 rare; interleaved so strata are not contiguous
STRATA = [("a" * 6 + "b" * 3 + "c")[i % 10] if i % 100 else "rare" for i in range(1000)]


def test_simple_random_reproducible_and_ordered():
    s1 = sm.simple_random(IDS, 100, seed=1)
    assert s1 == sm.simple_random(IDS, 100, seed=1)
    assert s1 != sm.simple_random(IDS, 100, seed=2)
    assert len(s1) == len(set(s1)) == 100
    assert set(s1) <= set(IDS)
    assert s1 == sorted(s1, key=IDS.index)  # input order kept
    assert sm.simple_random(IDS[:5], 10, seed=0) == IDS[:5]
    assert sm.simple_random(IDS, 0, seed=0) == []


def test_simple_random_rejects_bad_input():
    with pytest.raises(ValueError, match="negative"):
        sm.simple_random(IDS, -1, seed=0)
    with pytest.raises(ValueError, match="unique"):
        sm.simple_random(["x", "x"], 1, seed=0)


@pytest.mark.parametrize("n", [10, 57, 250, 999])
def test_stratified_keeps_proportions_within_rounding(n):
    sample = sm.stratified(IDS, STRATA, n, seed=3)
    assert len(sample) == len(set(sample)) == n
    assert sample == sorted(sample, key=IDS.index)
    stratum = dict(zip(IDS, STRATA, strict=True))
    got = Counter(stratum[i] for i in sample)
    sizes = Counter(STRATA)
    for key, size in sizes.items():
        assert abs(got[key] - n * size / len(IDS)) < 1, (key, got[key])
    assert sample == sm.stratified(IDS, STRATA, n, seed=3)
    assert sample != sm.stratified(IDS, STRATA, n, seed=4)


def test_min_per_stratum_makes_a_rare_class_appear():
    stratum = dict(zip(IDS, STRATA, strict=True))
    plain = sm.stratified(IDS, STRATA, 50, seed=0)
    assert Counter(stratum[i] for i in plain)["rare"] == 0
    boosted = sm.stratified(IDS, STRATA, 50, seed=0, min_per_stratum=5)
    counts = Counter(stratum[i] for i in boosted)
    assert len(boosted) == 50
    assert counts["rare"] == 5 and counts["c"] == 5
    # the remaining 40 shared in proportion between a (590) and b (300)
    assert (counts["a"], counts["b"]) == (27, 13)
    # the boost is capped by the stratum's size
    capped = sm.stratified(IDS, STRATA, 100, seed=0, min_per_stratum=20)
    assert Counter(stratum[i] for i in capped)["rare"] == 10


def test_stratified_edge_cases():
    assert sm.stratified(IDS[:4], ["a", "b", None, "a"], 10, seed=0) == IDS[:4]
    sample = sm.stratified(IDS[:6], ["a", None, None, "a", "b", float("nan")], 3, seed=0)
    assert len(sample) == 3
    with pytest.raises(ValueError, match="strata"):
        sm.stratified(IDS[:3], ["a"], 2, seed=0)
    with pytest.raises(ValueError, match="cannot hold"):
        sm.stratified(IDS, STRATA, 8, seed=0, min_per_stratum=3)


def test_allocate_invariants():
    rng = random.Random(0)
    for _ in range(2000):
        sizes = [rng.choice([0, 1, 2, 5, 10, 50, 200]) for _ in range(rng.randint(1, 6))]
        n, floor = rng.randint(0, sum(sizes) + 2), rng.randint(0, 5)
        try:
            alloc = sm.allocate(sizes, n, floor)
        except ValueError:
            assert sum(min(floor, s) for s in sizes) > n
            continue
        assert sum(alloc) == min(n, sum(sizes))
        assert all(min(floor, s) <= a <= s for a, s in zip(alloc, sizes, strict=True))
    assert sm.allocate([5, 3, 2], 5) == [3, 1, 1]  # 2.5, 1.5, 1.0 -> largest remainder


@pytest.mark.parametrize("strata", [None, STRATA[:300]])
def test_split_dev_test(strata):
    sample = IDS[:300]
    split = sm.split_dev_test(sample, 0.3, seed=5, strata=strata)
    assert len(split.test) == 90 and len(split.dev) == 210
    assert not set(split.dev) & set(split.test)
    assert set(split.dev) | set(split.test) == set(sample)
    assert split.dev == sorted(split.dev, key=sample.index)
    assert split == sm.split_dev_test(sample, 0.3, seed=5, strata=strata)
    assert split != sm.split_dev_test(sample, 0.3, seed=6, strata=strata)
    if strata is not None:
        stratum = dict(zip(sample, strata, strict=True))
        test_counts = Counter(stratum[i] for i in split.test)
        for key, size in Counter(strata).items():
            assert abs(test_counts[key] - 0.3 * size) < 1
    assert sm.split_dev_test(sample, 0.0, seed=0) == sm.Split(dev=sample, test=[])
    with pytest.raises(ValueError, match="test_share"):
        sm.split_dev_test(sample, 1.5, seed=0)


def test_inclusion_weights():
    sample = sm.stratified(IDS, STRATA, 50, seed=0, min_per_stratum=5)
    stratum = dict(zip(IDS, STRATA, strict=True))
    weights = sm.inclusion_weights(STRATA, [stratum[i] for i in sample])
    assert weights == {"a": 590 / 27, "b": 300 / 13, "c": 100 / 5, "rare": 10 / 5}
    # weighted counts recover the population size of each stratum
    total = sum(weights[stratum[i]] for i in sample)
    assert total == pytest.approx(1000)
    assert sm.inclusion_weights(["a", "a", None], [None]) == {None: 1.0}
    with pytest.raises(ValueError, match="population"):
        sm.inclusion_weights(["a"], ["a", "a"])


# ---------------------------------------------------------------- independent streams


def _test_part_counts(n_corpus: int, n: int, seeds: int, *, stratify: bool):
    """How often each corpus position lands in the test part when a sample of n is drawn and
    split half/half with the same seed, as ``validation.draw_sample`` does."""
    ids = IDS[:n_corpus]
    # a 60%, b 30%, c 10%: proportional allocation gives every text the same inclusion chance
    strata = [("a" * 6 + "b" * 3 + "c")[i % 10] for i in range(n_corpus)]
    position = {d: i for i, d in enumerate(ids)}
    counts = np.zeros(n_corpus)
    for seed in range(seeds):
        if stratify:
            chosen = sm.stratified(ids, strata, n, seed)
            chosen_strata = [strata[position[d]] for d in chosen]
        else:
            chosen, chosen_strata = sm.simple_random(ids, n, seed), None
        split = sm.split_dev_test(chosen, 0.5, seed, strata=chosen_strata)
        counts[[position[d] for d in split.test]] += 1
    return counts, len(split.test)


@pytest.mark.parametrize(("n_corpus", "n", "stratify"), [(60, 40, False), (200, 40, True)])
def test_every_position_is_equally_likely_to_land_in_the_test_part(n_corpus, n, stratify):
    # Each position is in the test part of one seed's sample with probability p = n_test / N, so
    # over S seeds its count is Binomial(S, p) (the N counts are tied by their fixed sum, and a
    # draw without replacement makes the Pearson statistic sum (O - E)^2 / E come out (1 - p)
    # times a chi-square with N - 1 degrees of freedom). A seed shared by the draw and the split
    # fails this: chi2/df 5.2 (p ~ 1e-35) for (60, 40) and 1.5 (p ~ 1e-6) for (200, 40,
    # stratified) over 2,000 seeds; independent streams give 0.9-1.1.
    seeds = 2000
    counts, n_test = _test_part_counts(n_corpus, n, seeds, stratify=stratify)
    p = n_test / n_corpus
    expected = seeds * p
    chi2 = float(((counts - expected) ** 2 / (expected * (1 - p))).sum())
    df = n_corpus - 1
    assert stats.chi2.sf(chi2, df) > 0.001, (chi2 / df, counts[:10] / expected)
    assert 0.7 < chi2 / df < 1.3, chi2 / df


def test_the_split_stream_is_reproducible_and_not_the_draws():
    sample = sm.simple_random(IDS, 100, seed=9)
    assert sm.split_dev_test(sample, 0.5, seed=9) == sm.split_dev_test(sample, 0.5, seed=9)
    # the split of a sample is not the draw's choice of positions under the same seed
    draw_positions = np.sort(np.random.default_rng(9).choice(100, size=50, replace=False))
    split = sm.split_dev_test(IDS[:100], 0.5, seed=9)
    assert [IDS.index(d) for d in split.test] != list(draw_positions)
    split_positions = np.sort(sm.split_stream(9).choice(100, size=50, replace=False))
    assert [IDS.index(d) for d in split.test] == list(split_positions)

"""Drawing the texts experts will hand-code, and splitting them into development and test parts.

Every draw is reproducible (numpy ``default_rng(seed)``) and returns ids in the order they had
in the input, so a sample reads like the corpus. A stratified draw (e.g. by LLM label) makes
rare classes appear in the validation sample; :func:`inclusion_weights` gives the weights that
turn its per-stratum results back into corpus-level estimates.

Random streams: a draw (:func:`simple_random`, :func:`stratified`) uses the stream of its seed,
``default_rng(seed)``, i.e. ``SeedSequence(seed)``; a split (:func:`split_dev_test`) uses an
independent child stream of the same seed, ``SeedSequence(seed, spawn_key=(1,))`` (the second
of ``SeedSequence(seed).spawn(2)``). So one seed can serve a draw and the split of that draw:
with a shared stream the two choices are correlated (numpy picks positions with the same random
numbers), and the first texts of the corpus landed in the test part up to 1.4 times as often
as the others (``tests/unit/test_sampling.py`` checks that every position is equally likely).
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np

from distill_core.values import is_missing


@dataclass(frozen=True)
class Split:
    """A sample split into a development part (codebook iteration) and a held-out test part."""

    dev: list[str]
    test: list[str]


def simple_random(ids: Sequence[str], n: int, seed: int) -> list[str]:
    """n ids drawn without replacement (all of them if ``n >= len(ids)``), in their input order."""
    _check_ids(ids)
    if n < 0:
        raise ValueError("The sample size cannot be negative.")
    if n >= len(ids):
        return list(ids)
    return _simple_random(ids, n, np.random.default_rng(seed))


def _simple_random(ids: Sequence[str], n: int, rng: np.random.Generator) -> list[str]:
    chosen = np.sort(rng.choice(len(ids), size=n, replace=False))
    return [ids[i] for i in chosen]


def allocate(sizes: Sequence[int], n: int, min_per_stratum: int = 0) -> list[int]:
    """How many of n draws each stratum of the given sizes gets (sums to ``min(n, sum(sizes))``).

    Proportional allocation ``n * N_h / N`` rounded by largest remainder (ties to the earlier
    stratum). A stratum whose share falls below ``b_h = min(min_per_stratum, N_h)`` gets
    exactly ``b_h`` and the others share the rest proportionally, so rare strata appear.
    ``ValueError`` when n cannot give every stratum its ``b_h``.
    """
    sizes = [int(s) for s in sizes]
    if any(s < 0 for s in sizes):
        raise ValueError("Stratum sizes cannot be negative.")
    if n < 0:
        raise ValueError("The sample size cannot be negative.")
    if min_per_stratum < 0:
        raise ValueError("min_per_stratum cannot be negative.")
    total = sum(sizes)
    if n >= total:
        return list(sizes)
    floors = [min(min_per_stratum, s) for s in sizes]
    if sum(floors) > n:
        raise ValueError(
            f"A sample of {n} cannot hold {min_per_stratum} per stratum across "
            f"{len(sizes)} strata (it needs at least {sum(floors)})."
        )
    fixed: set[int] = set()
    while True:
        rest = [h for h in range(len(sizes)) if h not in fixed]
        remaining = n - sum(floors[h] for h in fixed)
        rest_total = sum(sizes[h] for h in rest)
        quotas = {h: remaining * sizes[h] / rest_total if rest_total else 0.0 for h in rest}
        below = {h for h in rest if quotas[h] < floors[h]}
        if not below:
            break
        fixed |= below
    alloc = [floors[h] if h in fixed else math.floor(quotas[h]) for h in range(len(sizes))]
    left = n - sum(alloc)
    by_remainder = sorted(rest, key=lambda h: (-(quotas[h] - math.floor(quotas[h])), h))
    for h in by_remainder[:left]:
        alloc[h] += 1
    return alloc


def stratified(
    ids: Sequence[str],
    strata: Sequence[str | None],
    n: int,
    seed: int,
    *,
    min_per_stratum: int = 0,
) -> list[str]:
    """n ids drawn without replacement within strata (e.g. the LLM label), in their input order.

    Stratum sizes come from :func:`allocate` (proportional, largest remainder, rare strata
    boosted to ``min_per_stratum`` capped by their size); the total is exactly n, or all ids
    if ``n >= len(ids)``. ``None`` (e.g. no valid LLM label) is a stratum of its own.
    """
    _check_ids(ids)
    if len(strata) != len(ids):
        raise ValueError(f"There are {len(ids)} ids but {len(strata)} strata values.")
    if n < 0:
        raise ValueError("The sample size cannot be negative.")
    if n >= len(ids):
        return list(ids)
    return _stratified(ids, strata, n, np.random.default_rng(seed), min_per_stratum)


def _stratified(
    ids: Sequence[str],
    strata: Sequence[str | None],
    n: int,
    rng: np.random.Generator,
    min_per_stratum: int = 0,
) -> list[str]:
    groups = _groups(strata)
    keys = sorted(groups, key=_stratum_order)
    alloc = allocate([len(groups[k]) for k in keys], n, min_per_stratum)
    chosen: list[int] = []
    for key, size in zip(keys, alloc, strict=True):
        members = groups[key]
        chosen.extend(members[i] for i in rng.choice(len(members), size=size, replace=False))
    return [ids[i] for i in sorted(chosen)]


def split_dev_test(
    sample_ids: Sequence[str],
    test_share: float,
    seed: int,
    strata: Sequence[str | None] | None = None,
) -> Split:
    """Split a sample into dev and test parts; test has ``round(test_share * n)`` ids.

    Stratified by ``strata`` when given (each stratum split in the same proportion, within
    rounding). Both parts keep the input order; they do not overlap and together are the sample.
    The split draws from :func:`split_stream` of ``seed``, independent of the stream a draw with
    the same seed uses, so the seed that drew the sample can split it.
    """
    _check_ids(sample_ids)
    if not 0 <= test_share <= 1:
        raise ValueError("test_share must be between 0 and 1.")
    if strata is not None and len(strata) != len(sample_ids):
        raise ValueError(f"There are {len(sample_ids)} ids but {len(strata)} strata values.")
    n_test = int(round(test_share * len(sample_ids)))
    rng = split_stream(seed)
    if n_test >= len(sample_ids):
        test = list(sample_ids)
    elif strata is None:
        test = _simple_random(sample_ids, n_test, rng)
    else:
        test = _stratified(sample_ids, strata, n_test, rng)
    in_test = set(test)
    return Split(dev=[i for i in sample_ids if i not in in_test], test=test)


def split_stream(seed: int) -> np.random.Generator:
    """The random stream a dev/test split with ``seed`` uses: the child ``spawn_key=(1,)`` of
    ``SeedSequence(seed)``, independent of ``default_rng(seed)`` that a draw uses."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(_SPLIT_STREAM,)))


#: The spawn key of the split's stream (``SeedSequence(seed).spawn(2)[1]``).
_SPLIT_STREAM = 1


def inclusion_weights(
    population_strata: Sequence[str | None], sample_strata: Sequence[str | None]
) -> dict[str | None, float]:
    """Per stratum h, the inverse inclusion probability ``N_h / n_h`` of a stratified sample.

    ``population_strata`` holds the stratum of every corpus text (N of them), ``sample_strata``
    that of every sampled text. A corpus-level estimate weights each sampled text by its
    stratum's weight, e.g. accuracy = ``sum_i w_i * correct_i / sum_i w_i``. Strata with no
    sampled text are left out (their weight is undefined); a sampled stratum that is not in the
    population is a ``ValueError``.
    """
    population = {k: len(v) for k, v in _groups(population_strata).items()}
    sample = {k: len(v) for k, v in _groups(sample_strata).items()}
    for key, count in sample.items():
        if count > population.get(key, 0):
            raise ValueError(
                f"The sample has {count} texts of stratum {key!r} but the population "
                f"only {population.get(key, 0)}."
            )
    return {
        key: population[key] / sample[key]
        for key in sorted(population, key=_stratum_order)
        if key in sample
    }


def _check_ids(ids: Sequence[str]) -> None:
    if len(set(ids)) != len(ids):
        raise ValueError("The ids are not unique.")


def _groups(strata: Sequence[Hashable | None]) -> dict[Hashable | None, list[int]]:
    groups: dict[Hashable | None, list[int]] = {}
    for i, key in enumerate(strata):
        groups.setdefault(None if is_missing(key) else key, []).append(i)
    return groups


def _stratum_order(key: Hashable | None) -> tuple[int, str]:
    return (1, "") if key is None else (0, str(key))

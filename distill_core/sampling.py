"""Drawing the texts experts will hand-code, and splitting them into development and test parts.

Every draw is reproducible (numpy ``default_rng(seed)``) and returns ids in the order they had
in the input, so a sample reads like the corpus. A stratified draw (e.g. by LLM label) makes
rare classes appear in the validation sample; :func:`inclusion_weights` gives the weights that
turn its per-stratum results back into corpus-level estimates.
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
    rng = np.random.default_rng(seed)
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
    groups = _groups(strata)
    keys = sorted(groups, key=_stratum_order)
    alloc = allocate([len(groups[k]) for k in keys], n, min_per_stratum)
    rng = np.random.default_rng(seed)
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
    """
    _check_ids(sample_ids)
    if not 0 <= test_share <= 1:
        raise ValueError("test_share must be between 0 and 1.")
    n_test = int(round(test_share * len(sample_ids)))
    if strata is None:
        test = simple_random(sample_ids, n_test, seed)
    else:
        test = stratified(sample_ids, strata, n_test, seed)
    in_test = set(test)
    return Split(dev=[i for i in sample_ids if i not in in_test], test=test)


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

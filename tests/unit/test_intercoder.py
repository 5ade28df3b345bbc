"""Agreement among human coders (``agreement.intercoder_agreement``): Krippendorff's alpha,
Fleiss' kappa, Gwet's AC1, Cohen's kappa per pair and per-category figures, against the
``krippendorff`` package, statsmodels, published results and a plain transcription of the
formulas; missing codes; the intervals' construction and coverage."""

from __future__ import annotations

import json
import math

import krippendorff
import numpy as np
import pytest
from sklearn import metrics as skm
from statsmodels.stats import inter_rater

from distill_core import agreement as ag
from tests.unit.test_agreement import reference_bca as plain_bca

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::RuntimeWarning")

TOL = 1e-9

# ------------------------------------------------------------------------------- helpers


def as_codes(units: list[list[object]]) -> dict[str, dict[str, object]]:
    """units × coders rows as coder -> {text id: code}; ids sort in row order."""
    coders = max(len(u) for u in units)
    return {
        f"coder{j}": {f"t{u:04d}": row[j] for u, row in enumerate(units) if len(row) > j}
        for j in range(coders)
    }


def kripp_reference(units: list[list[object]], binary: str | None = None) -> float:
    """krippendorff.alpha (nominal) on the units × coders rows; with ``binary``, on the codes
    recoded to that category (1) or another (0)."""
    values = sorted({str(v) for row in units for v in row if v is not None})
    index = {v: i for i, v in enumerate(values)}

    def value(v):
        if v is None:
            return np.nan
        return float(str(v) == binary) if binary is not None else index[str(v)]

    width = max(len(u) for u in units)
    data = np.array(
        [[value(row[j]) if j < len(row) else np.nan for row in units] for j in range(width)]
    )
    return float(krippendorff.alpha(reliability_data=data, level_of_measurement="nominal"))


def statsmodels_fleiss(units: list[list[object]], binary: str | None = None) -> float:
    """statsmodels' fleiss_kappa on complete rows (every unit the same number of codes)."""
    values = sorted({str(v) for row in units for v in row})
    if binary is not None:
        rows = [[int(str(v) == binary) for v in row] for row in units]
    else:
        rows = [[values.index(str(v)) for v in row] for row in units]
    table, _ = inter_rater.aggregate_raters(np.array(rows))
    return float(inter_rater.fleiss_kappa(table, method="fleiss"))


def irrcac_reference(
    units: list[list[object]], categories: list[str]
) -> tuple[float, float, float]:
    """(p_a, Fleiss' kappa, AC1) transcribed loop by loop from irrCAC's ``fleiss.kappa.raw`` and
    ``gwet.ac1.raw`` (Gwet 2014), unweighted: p_a over the units with two or more ratings,
    pi over every unit with a rating."""
    rows = [[str(v) for v in u if v is not None] for u in units]
    rows = [r for r in rows if r]
    terms = [
        sum(r.count(c) * (r.count(c) - 1) for c in categories) / (len(r) * (len(r) - 1))
        for r in rows
        if len(r) >= 2
    ]
    pa = sum(terms) / len(terms)
    pi = [sum(r.count(c) / len(r) for r in rows) / len(rows) for c in categories]
    pe_f = sum(p * p for p in pi)
    pe_g = sum(p * (1 - p) for p in pi) / (len(categories) - 1)
    return pa, (pa - pe_f) / (1 - pe_f), (pa - pe_g) / (1 - pe_g)


def random_units(seed: int, n: int, coders: int, q: int, missing: float) -> list[list[object]]:
    """n texts with a true category each; every coder codes a text with probability
    1 - ``missing`` (at least one code per text), right with probability 0.7."""
    rng = np.random.default_rng(seed)
    names = [f"k{(5 * i) % 13}" for i in range(q)]
    shares = rng.dirichlet(np.ones(q) * 2)
    units = []
    for _ in range(n):
        true = rng.choice(q, p=shares)
        row: list[object] = []
        for _ in range(coders):
            if rng.random() < missing:
                row.append(None)
            else:
                row.append(names[true] if rng.random() < 0.7 else names[rng.integers(q)])
        if all(v is None for v in row):
            row[rng.integers(coders)] = names[true]
        units.append(row)
    return units


# Gwet (2014), Handbook of Inter-Rater Reliability, 4th ed., p. 120: 4 raters, 12 subjects,
# categories 1-5, no rater rated every subject (irrCAC's dataset cac.raw4raters; the same
# data as Krippendorff's "Computing Krippendorff's alpha-reliability" (2011) example).
N = None
RAW4RATERS = [
    [1, 1, N, 1],
    [2, 2, 3, 2],
    [3, 3, 3, 3],
    [3, 3, 3, 3],
    [2, 2, 2, 2],
    [1, 2, 3, 4],
    [4, 4, 4, 4],
    [1, 1, 2, 1],
    [2, 2, 2, 2],
    [N, 5, 5, 5],
    [N, N, 1, 1],
    [N, N, 3, N],
]


# ------------------------------------------------------------------------------- references


def test_published_irrcac_example_with_missing_ratings():
    """irrCAC's README (Gwet, irrCAC 1.0, 2019) on cac.raw4raters: pa.coeff.raw 0.8181818,
    gwet.ac1.raw 0.77544 (pe 0.1903212), fleiss.kappa.raw 0.76117 (pe 0.2387153),
    krippen.alpha.raw 0.74342 (Krippendorff 2011 gives alpha = 0.743 for these data)."""
    result = ag.intercoder_agreement(as_codes(RAW4RATERS), n_boot=200)
    assert result.percent_agreement == pytest.approx(0.8181818, abs=5e-8)
    assert result.gwet_ac1 == pytest.approx(0.77544, abs=5e-6)
    assert result.fleiss_kappa == pytest.approx(0.76117, abs=5e-6)
    assert result.krippendorff_alpha == pytest.approx(0.74342, abs=5e-6)
    assert ag.gwet_ac1(RAW4RATERS) == pytest.approx(0.77544, abs=5e-6)
    assert ag.fleiss_kappa(RAW4RATERS) == pytest.approx(0.76117, abs=5e-6)
    assert result.krippendorff_alpha == pytest.approx(kripp_reference(RAW4RATERS), abs=TOL)
    # 12 texts coded, 11 by two or more; unit 12's single code counts toward pi, not p_a
    assert (result.n_items, result.n, result.n_codes) == (12, 11, 40)
    assert result.codes_per_text == {1: 1, 2: 1, 3: 2, 4: 8}
    assert result.labels == ["1", "2", "3", "4", "5"]


def test_published_irrcac_two_rater_table():
    """irrCAC's README on cont3x3abstractors (100 subjects, 2 raters): Scott's pi 0.7962397
    (Fleiss' kappa for two raters), Gwet's AC1 0.8493305, Krippendorff's alpha 0.7972585,
    percent agreement 0.89, Cohen's kappa 0.7964094."""
    table = [[13, 0, 0], [0, 20, 7], [0, 4, 56]]
    names = ["Ectopic", "AIU", "NIU"]
    units = [[names[i], names[j]] for i in range(3) for j in range(3) for _ in range(table[i][j])]
    result = ag.intercoder_agreement(as_codes(units), n_boot=200)
    assert result.fleiss_kappa == pytest.approx(0.7962397, abs=5e-8)
    assert result.gwet_ac1 == pytest.approx(0.8493305, abs=5e-8)
    assert result.krippendorff_alpha == pytest.approx(0.7972585, abs=5e-8)
    assert result.percent_agreement == pytest.approx(0.89, abs=TOL)
    (pair,) = result.pairs
    assert pair.cohen_kappa == pytest.approx(0.7964094, abs=5e-8)
    assert pair.n == 100 and pair.percent_agreement == pytest.approx(0.89)


@pytest.mark.parametrize(
    ("seed", "n", "coders", "q"),
    [(0, 10, 2, 2), (1, 40, 3, 3), (2, 120, 5, 4), (3, 300, 4, 6), (4, 25, 7, 3), (5, 200, 2, 5)],
)
def test_complete_tables_match_statsmodels_and_krippendorff(seed, n, coders, q):
    units = random_units(seed, n, coders, q, missing=0.0)
    result = ag.intercoder_agreement(as_codes(units), n_boot=0)
    assert result.fleiss_kappa == pytest.approx(statsmodels_fleiss(units), abs=TOL)
    assert ag.fleiss_kappa(units) == pytest.approx(statsmodels_fleiss(units), abs=TOL)
    assert result.krippendorff_alpha == pytest.approx(kripp_reference(units), abs=TOL)
    categories = sorted({str(v) for row in units for v in row})
    pa, _, ac1 = irrcac_reference(units, categories)
    assert result.gwet_ac1 == pytest.approx(ac1, abs=TOL)
    assert result.percent_agreement == pytest.approx(pa, abs=TOL)
    for c in categories:  # one against the rest
        cat = result.per_category[c]
        assert cat.fleiss_kappa == pytest.approx(statsmodels_fleiss(units, binary=c), abs=TOL)
        assert cat.krippendorff_alpha == pytest.approx(kripp_reference(units, binary=c), abs=TOL)
        binary = [["y" if str(v) == c else "n" for v in row] for row in units]
        assert cat.gwet_ac1 == pytest.approx(irrcac_reference(binary, ["y", "n"])[2], abs=TOL)
        # Fleiss (1971), eq. 10: kappa_j = 1 - sum_u n_uj (m - n_uj) / (N m (m - 1) p_j q_j)
        n_uj = np.array([sum(str(v) == c for v in row) for row in units], float)
        p_j = n_uj.sum() / (n * coders)
        fleiss_j = 1 - (n_uj * (coders - n_uj)).sum() / (
            n * coders * (coders - 1) * p_j * (1 - p_j)
        )
        assert cat.fleiss_kappa == pytest.approx(fleiss_j, abs=TOL)


@pytest.mark.parametrize(
    ("seed", "n", "coders", "q", "missing"),
    [(10, 30, 3, 3, 0.3), (11, 80, 4, 4, 0.5), (12, 200, 7, 5, 0.6), (13, 15, 2, 2, 0.2)],
)
def test_missing_codes_match_references(seed, n, coders, q, missing):
    """Any number of coders, each skipping texts: alpha equals the krippendorff package (also
    per category), Fleiss' kappa and AC1 the transcription of irrCAC's generalisation, and
    each pair's kappa scikit-learn's on the texts both coded."""
    units = random_units(seed, n, coders, q, missing)
    assert any(sum(v is not None for v in row) == 1 for row in units)  # single-coded texts
    codes = as_codes(units)
    result = ag.intercoder_agreement(codes, n_boot=0)
    assert result.krippendorff_alpha == pytest.approx(kripp_reference(units), abs=TOL)
    assert ag.krippendorff_alpha(units) == pytest.approx(kripp_reference(units), abs=TOL)
    categories = sorted({str(v) for row in units for v in row if v is not None})
    pa, kappa, ac1 = irrcac_reference(units, categories)
    assert result.percent_agreement == pytest.approx(pa, abs=TOL)
    assert result.fleiss_kappa == pytest.approx(kappa, abs=TOL)
    assert result.gwet_ac1 == pytest.approx(ac1, abs=TOL)
    for c in categories:
        assert result.per_category[c].krippendorff_alpha == pytest.approx(
            kripp_reference(units, binary=c), abs=TOL
        )
    sizes = [sum(v is not None for v in row) for row in units]
    assert result.n_items == n and result.n == sum(s >= 2 for s in sizes)
    assert result.n_codes == sum(s for s in sizes if s >= 2)
    for pair in result.pairs:
        a, b = codes[pair.coder_a], codes[pair.coder_b]
        shared = [t for t in a if a[t] is not None and b.get(t) is not None]
        assert pair.n == len(shared)
        if len({a[t] for t in shared} | {b[t] for t in shared}) > 1:
            expected = skm.cohen_kappa_score([a[t] for t in shared], [b[t] for t in shared])
            assert pair.cohen_kappa == pytest.approx(expected, abs=TOL)


def test_missing_code_handling():
    codes = {
        "ann": {"1": "x", "2": "y", "3": "x", "4": None, "5": float("nan")},
        "bob": {"1": "x", "2": "x", "3": "x", "4": "y"},
        "cyd": {"1": 1, "2": "y", "6": "x"},
        "dan": {},
    }
    result = ag.intercoder_agreement(codes, n_boot=0)
    assert result.coders == ["ann", "bob", "cyd", "dan"]
    # texts 1-4 and 6 have a code (5 only a NaN); 1-3 have two or more
    assert (result.n_items, result.n, result.n_codes) == (5, 3, 8)
    assert result.codes_per_text == {1: 2, 2: 1, 3: 2}
    units = [["x", "x", "1"], ["y", "x", "y"], ["x", "x"], ["y"], ["x"]]
    assert result.krippendorff_alpha == pytest.approx(kripp_reference(units), abs=TOL)
    pa, kappa, ac1 = irrcac_reference(units, ["1", "x", "y"])
    assert (result.fleiss_kappa, result.gwet_ac1) == pytest.approx((kappa, ac1), abs=TOL)
    pairs = {(p.coder_a, p.coder_b): p for p in result.pairs}
    assert pairs[("ann", "bob")].n == 3 and pairs[("ann", "cyd")].n == 2
    assert pairs[("ann", "dan")].n == 0 and math.isnan(pairs[("ann", "dan")].cohen_kappa)
    # A text coded once moves the category shares (kappa, AC1) but not alpha or p_a.
    more = {**codes, "dan": {"7": "y", "8": "y"}}
    after = ag.intercoder_agreement(more, n_boot=0)
    assert after.krippendorff_alpha == result.krippendorff_alpha
    assert after.percent_agreement == result.percent_agreement
    assert after.fleiss_kappa != result.fleiss_kappa and after.n == result.n
    with pytest.raises(ValueError, match="two coders"):
        ag.intercoder_agreement({"ann": {"1": "x"}})
    with pytest.raises(ValueError, match="No coder"):
        ag.intercoder_agreement({"ann": {"1": None}, "bob": {}})


def test_codebook_labels():
    codes = {"ann": {"1": "x", "2": "y", "3": "x"}, "bob": {"1": "x", "2": "x", "3": "x"}}
    seen = ag.intercoder_agreement(codes, n_boot=0)
    book = ag.intercoder_agreement(codes, labels=["y", "x", "z"], n_boot=0)
    assert book.labels == ["y", "x", "z"] and list(book.per_category) == ["y", "x", "z"]
    # kappa and alpha ignore an unused category; AC1 counts it (q = 3)
    assert book.fleiss_kappa == seen.fleiss_kappa
    assert book.krippendorff_alpha == seen.krippendorff_alpha
    units = [["x", "x"], ["y", "x"], ["x", "x"]]
    assert book.gwet_ac1 == pytest.approx(irrcac_reference(units, ["x", "y", "z"])[2], abs=TOL)
    assert ag.gwet_ac1(units, labels=["x", "y", "z"]) == pytest.approx(book.gwet_ac1)
    z = book.per_category["z"]
    assert z.n_codes == 0 and math.isnan(z.fleiss_kappa) and math.isnan(z.gwet_ac1)
    with pytest.raises(ValueError, match="not one of the labels"):
        ag.intercoder_agreement(codes, labels=["x"], n_boot=0)


def test_dominated_category_kappa_collapses_ac1_does_not():
    """50 texts, 3 coders; 47 texts all "no", on 3 one coder says "yes". Hand computation:
    p_a = (47 + 3 * 1/3) / 50 = 0.96; pi_yes = 3 * (1/3) / 50 = 0.02; kappa's chance
    agreement 0.02^2 + 0.98^2 = 0.9608, so kappa = (0.96 - 0.9608) / 0.0392 = -0.0204; AC1's
    2 * 0.02 * 0.98 = 0.0392, so AC1 = (0.96 - 0.0392) / 0.9608 = 0.9584."""
    units = [["no"] * 3 for _ in range(47)] + [
        ["yes", "no", "no"],
        ["no", "yes", "no"],
        ["no", "no", "yes"],
    ]
    result = ag.intercoder_agreement(as_codes(units), n_boot=500)
    assert result.percent_agreement == pytest.approx(0.96, abs=TOL)
    assert result.fleiss_kappa == pytest.approx((0.96 - 0.9608) / 0.0392, abs=TOL)
    assert result.gwet_ac1 == pytest.approx((0.96 - 0.0392) / 0.9608, abs=TOL)
    assert result.fleiss_kappa < 0 and result.krippendorff_alpha < 0.01
    assert result.gwet_ac1 > 0.95
    lo, hi = result.ci["gwet_ac1"]
    assert lo > 0.85 and hi <= 1  # stays high across resamples too
    assert result.ci["fleiss_kappa"][0] < 0
    assert result.per_category["yes"].specific_agreement == 0.0
    assert result.per_category["no"].specific_agreement == pytest.approx(144 / 147)


# ------------------------------------------------------------------------------- intervals


def reference_bca(units, stat, idx):
    """test_agreement's plain BCa (Efron & Tibshirani 1993, 14.3) with the units as the items."""
    return plain_bca(units, [None] * len(units), lambda us, _: stat(us), idx)


def test_intervals_are_bca_over_texts():
    units = random_units(21, 40, 3, 3, missing=0.3)
    result = ag.intercoder_agreement(as_codes(units), n_boot=300, seed=4)
    idx = np.random.default_rng(4).integers(0, len(units), size=(300, len(units)))
    categories = sorted({str(v) for row in units for v in row if v is not None})
    checks = {
        "krippendorff_alpha": ag.krippendorff_alpha,
        "fleiss_kappa": lambda us: irrcac_reference(us, categories)[1],
        "gwet_ac1": lambda us: irrcac_reference(us, categories)[2],
    }
    for name, stat in checks.items():
        assert result.ci[name] == pytest.approx(reference_bca(units, stat, idx), abs=1e-9), name
        assert result.ci_method[name] == ag.BCA
    c = categories[0]
    binary = [[None if v is None else ("y" if str(v) == c else "n") for v in row] for row in units]
    assert result.per_category[c].ci["krippendorff_alpha"] == pytest.approx(
        reference_bca(binary, ag.krippendorff_alpha, idx), abs=1e-9
    )
    codes = as_codes(units)
    for pair in result.pairs:
        a, b = codes[pair.coder_a], codes[pair.coder_b]
        shared = sorted(t for t in a if a[t] is not None and b.get(t) is not None)
        expected = ag.bootstrap_ci(
            [a[t] for t in shared], [b[t] for t in shared], ag.cohen_kappa, 300, 4
        )
        assert pair.ci == expected and pair.ci_method == ag.BCA
    again = ag.intercoder_agreement(as_codes(units), n_boot=300, seed=4)
    assert again.to_dict() == result.to_dict()  # seeded


def population_values(shares: np.ndarray, right: float) -> dict[str, float]:
    """Population agreement of coders who code a text of category t as t with probability
    ``right`` and as each other category with (1 - right) / (q - 1), independently, whatever
    texts they skip: p_a = sum_t s_t sum_c P(c|t)^2 and pi_c = sum_t s_t P(c|t), so Fleiss'
    kappa and AC1 follow, and alpha's limit is Fleiss' kappa's."""
    q = len(shares)
    p = np.full((q, q), (1 - right) / (q - 1))
    np.fill_diagonal(p, right)
    pa = float(shares @ (p**2).sum(axis=1))
    pi = shares @ p
    pe = float((pi**2).sum())
    pe_g = (1 - pe) / (q - 1)
    kappa = (pa - pe) / (1 - pe)
    return {
        "percent_agreement": pa,
        "krippendorff_alpha": kappa,
        "fleiss_kappa": kappa,
        "gwet_ac1": (pa - pe_g) / (1 - pe_g),
    }


def draw_units(rng, shares, right, n, coders, missing):
    q = len(shares)
    true = rng.choice(q, size=n, p=shares)
    wrong = (true[:, None] + rng.integers(1, q, size=(n, coders))) % q
    codes = np.where(rng.random((n, coders)) < right, true[:, None], wrong)
    coded = rng.random((n, coders)) >= missing
    return [
        [str(c) if k else None for c, k in zip(row, ks, strict=True)]
        for row, ks in zip(codes, coded, strict=True)
    ]


def test_population_values_are_the_large_sample_limit():
    shares, right = np.array([0.5, 0.3, 0.2]), 0.8
    truth = population_values(shares, right)
    units = draw_units(np.random.default_rng(0), shares, right, 50_000, 3, 0.3)
    units = [u for u in units if any(u)]
    assert ag.fleiss_kappa(units) == pytest.approx(truth["fleiss_kappa"], abs=0.015)
    assert ag.gwet_ac1(units) == pytest.approx(truth["gwet_ac1"], abs=0.015)
    assert ag.krippendorff_alpha(units) == pytest.approx(truth["krippendorff_alpha"], abs=0.015)


@pytest.mark.slow
def test_interval_coverage_simulation():
    """Coverage of the 95% BCa intervals: 300 samples of 80 texts, 3 coders who each skip a
    text with probability 0.3 (about 63 texts with two or more codes), categories of shares
    0.5 / 0.3 / 0.2 coded right with probability 0.8 (population p_a 0.660, alpha = Fleiss'
    kappa 0.472, AC1 0.499: :func:`population_values`).

    Measured (seed 0, 300 samples of 500 resamples each; simulation error ~1.3 points):

    ======  ===============  =====  =============  =====
    texts   percent agreed   alpha  Fleiss' kappa  AC1
    ======  ===============  =====  =============  =====
    30      0.920            0.933  0.920          0.917
    80      0.960            0.950  0.970          0.957
    200     0.953            0.963  0.953          0.940
    ======  ===============  =====  =============  =====

    (at 30 texts, about 24 with two codes, the result carries the small-n caution). The test
    runs the 80-text case and fails below 0.90 or above 0.99 (an interval far too wide covers
    everything too).
    """
    shares, right = np.array([0.5, 0.3, 0.2]), 0.8
    truth = population_values(shares, right)
    rng = np.random.default_rng(0)
    hits = {name: 0 for name in truth}
    reps = 300
    for r in range(reps):
        units = [u for u in draw_units(rng, shares, right, 80, 3, 0.3) if any(u)]
        result = ag.intercoder_agreement(as_codes(units), n_boot=500, seed=r)
        for name, value in truth.items():
            lo, hi = result.ci[name]
            hits[name] += lo - 1e-9 <= value <= hi + 1e-9
    coverage = {name: h / reps for name, h in hits.items()}
    assert all(0.90 <= cov <= 0.99 for cov in coverage.values()), coverage


# ------------------------------------------------------------------------------- the record


def test_record_round_trip_and_old_dicts():
    result = ag.intercoder_agreement(as_codes(RAW4RATERS), n_boot=100)
    data = result.to_dict()
    text = json.dumps(data, allow_nan=False)
    back = ag.IntercoderAgreement.from_dict(json.loads(text))
    assert back.to_dict() == data
    assert isinstance(back, ag.PairwiseAgreement)
    assert data["reliable"] is False and "11 texts were coded by two or more" in data["caution"]
    assert set(data["ci"]) == set(ag.INTERCODER_METRICS)
    assert set(data["per_category"]["3"]["ci"]) == set(ag.CATEGORY_METRICS)
    # A dict written by PairwiseAgreement.to_dict, before these statistics existed.
    old = ag.pairwise_agreement(as_codes(RAW4RATERS)).to_dict()
    assert "ci" not in old["pairs"][0]
    read = ag.IntercoderAgreement.from_dict(old)
    assert read.krippendorff_alpha == pytest.approx(result.krippendorff_alpha)
    assert math.isnan(read.fleiss_kappa) and read.ci == {} and read.per_category == {}
    assert read.n == max(p.n for p in result.pairs) and read.pairs[0].ci_method is None
    json.dumps(read.to_dict(), allow_nan=False)
    # no interval when n_boot=0
    bare = ag.intercoder_agreement(as_codes(RAW4RATERS), n_boot=0)
    assert bare.ci == {} and bare.pairs[0].ci_method is None
    assert all(c.ci == {} for c in bare.per_category.values())


def test_unanimous_coders_are_flagged():
    units = [["a", "a"], ["b", "b", "b"], ["a", "a"]] * 12
    result = ag.intercoder_agreement(as_codes(units), n_boot=100)
    assert result.unanimous and result.reliable
    assert result.ci["fleiss_kappa"] == (1.0, 1.0)
    assert "no width" in result.caution
    one = ag.intercoder_agreement(as_codes([["a", "a"]] * 40), n_boot=100)
    assert math.isnan(one.fleiss_kappa) and math.isnan(one.krippendorff_alpha)
    assert math.isnan(one.gwet_ac1)  # one category: q - 1 = 0
    assert one.percent_agreement == 1.0

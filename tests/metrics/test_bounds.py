"""One-sided Clopper-Pearson bounds and the fewest correct answers that reach a level."""

import math

import numpy as np
import pytest

from hier.metrics import bounds as B


@pytest.mark.parametrize("k, n, expected", [
    (10, 10, 0.05 ** (1 / 10)),  # all correct: delta ** (1 / n) = 0.7411
    (95, 100, 0.89775),          # P(X >= 95 | n = 100, p = 0.89775) = 0.0500
    (5, 10, 0.22244),            # the Beta(5, 6) quantile at 0.05
    (0, 10, 0.0),
])
def test_clopper_pearson_lower_bound_known_values(k, n, expected):
    assert B.clopper_pearson_lower(k, n, 0.05) == pytest.approx(expected, abs=5e-5)


def test_clopper_pearson_upper_bound_mirrors_the_lower():
    assert B.clopper_pearson_upper(0, 10, 0.05) == pytest.approx(1 - 0.05 ** (1 / 10))
    assert B.clopper_pearson_upper(5, 100, 0.05) == pytest.approx(1 - 0.89775, abs=5e-5)
    assert B.clopper_pearson_upper(10, 10, 0.05) == 1.0


def test_clopper_pearson_bound_solves_the_tail_equation():
    bound = B.clopper_pearson_lower(870, 1000, 0.05)
    assert B.log_upper_tail(870, 1000, bound) == pytest.approx(math.log(0.05), abs=1e-6)
    assert B.clopper_pearson_lower(870, 1000, 0.01) < bound < 0.87


@pytest.mark.parametrize("n", [10, 59, 300, 2000])
@pytest.mark.parametrize("level", [0.5, 0.8, 0.9, 0.95, 0.99])
def test_minimum_correct_is_the_first_count_whose_bound_reaches_the_level(n, level):
    k = B.minimum_correct(n, level, 0.05)
    if k <= n:
        assert B.clopper_pearson_lower(k, n, 0.05) >= level
    if 0 < k:
        assert B.clopper_pearson_lower(min(k, n + 1) - 1, n, 0.05) < level


def test_minimum_correct_impossible_levels():
    assert B.minimum_correct(10, 0.75, 0.05) == 11  # 10 of 10 gives only 0.7411
    assert B.minimum_correct(59, 0.95, 0.05) == 59  # 0.05 ** (1/59) = 0.9505


@pytest.mark.parametrize("seed", range(10))
def test_bounds_agree_with_scipy(seed):
    """scipy.stats as an oracle: Clopper-Pearson bounds are Beta quantiles, the tail is binom.sf."""
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 3000))
    k = int(rng.integers(0, n + 1))
    delta = float(rng.choice([0.01, 0.05, 0.1]))
    lower = stats.beta.ppf(delta, k, n - k + 1) if k > 0 else 0.0
    upper = stats.beta.ppf(1 - delta, k + 1, n - k) if k < n else 1.0
    assert B.clopper_pearson_lower(k, n, delta) == pytest.approx(lower, abs=1e-9)
    assert B.clopper_pearson_upper(k, n, delta) == pytest.approx(upper, abs=1e-9)
    p = float(np.clip(k / n + rng.uniform(-0.03, 0.03), 0.01, 0.99))  # near k / n: scipy's tail does not underflow
    assert B.log_upper_tail(k, n, p) == pytest.approx(stats.binom.logsf(k - 1, n, p), rel=1e-7, abs=1e-9)
    level = float(rng.uniform(0.5, 0.99))
    tails = stats.binom.sf(np.arange(n + 1) - 1, n, level)  # P(X >= k) for k = 0..n
    passing = np.flatnonzero(tails <= delta)
    assert B.minimum_correct(n, level, delta) == (int(passing[0]) if len(passing) else n + 1)


def test_the_class_most_surely_short_is_the_lowest_upper_bound_not_the_lowest_fraction():
    from hier.metrics.bounds import most_surely_short

    counts = {"one image wrong": (0, 1), "7 of 20": (7, 20), "19 of 20": (19, 20)}
    # 0 of 1 has the lowest fraction but an upper bound of 0.95; 7 of 20 is surely short (bound about 0.57)
    assert most_surely_short(list(counts), lambda c: counts[c][0], lambda c: counts[c][1]) == "7 of 20"

"""One-sided Clopper-Pearson bounds of a binomial proportion, from its upper tail summed in log space."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import torch

DELTA = 0.05  # the risk that a bound fails


@functools.lru_cache(maxsize=8)
def _log_choose(n: int) -> torch.Tensor:
    """log C(n, j), j = 0..n (the same for every p of a bisection)."""
    j = torch.arange(n + 1, dtype=torch.float64)
    return math.lgamma(n + 1) - torch.lgamma(j + 1) - torch.lgamma(n - j + 1)


def _log_binomial_pmf(n: int, p: float) -> torch.Tensor:
    """log P(X = j), j = 0..n, X ~ Binomial(n, p), for 0 < p < 1."""
    j = torch.arange(n + 1, dtype=torch.float64)
    return _log_choose(n) + j * math.log(p) + (n - j) * math.log1p(-p)


def log_upper_tail(k: int, n: int, p: float) -> float:
    """log P(X >= k) for X ~ Binomial(n, p), summed in log space (no underflow for large n)."""
    if k <= 0 or p >= 1:
        return 0.0
    if k > n or p <= 0:
        return -math.inf
    return torch.logsumexp(_log_binomial_pmf(n, p)[k:], 0).item()


def clopper_pearson_lower(k: int, n: int, delta: float = DELTA) -> float:
    """One-sided lower confidence bound of a binomial proportion after k successes in n trials.

    The p at which P(X >= k | p) = delta (bisection: the tail grows with p); with probability at
    least 1 - delta the true proportion is above it. k = n gives delta ** (1 / n).
    """
    if not 0 < delta < 1:
        raise ValueError(f"delta must be in (0, 1), got {delta}")
    if not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n, got k={k}, n={n}")
    if k == 0:
        return 0.0
    low, high, target = 0.0, 1.0, math.log(delta)
    for _ in range(60):  # 2^-60: below float64 resolution of p
        mid = (low + high) / 2
        if log_upper_tail(k, n, mid) < target:
            low = mid
        else:
            high = mid
    return low


def clopper_pearson_upper(k: int, n: int, delta: float = DELTA) -> float:
    """One-sided upper confidence bound: the true proportion is below it with probability >= 1 - delta."""
    return 1.0 - clopper_pearson_lower(n - k, n, delta)


def minimum_correct(n: int, level: float, delta: float = DELTA) -> int:
    """The fewest correct answers out of n whose Clopper-Pearson lower bound is >= level (n + 1: none).

    bound(k) >= level exactly when P(X >= k | p = level) <= delta, so one pass over the tail at p = level
    answers every k at once.
    """
    if level <= 0:
        return 0
    if level >= 1:
        return n + 1
    tails = _log_binomial_pmf(n, level).flip(0).logcumsumexp(0).flip(0)  # tails[k] = log P(X >= k)
    passing = (tails <= math.log(delta)).nonzero()
    return int(passing[0]) if len(passing) else n + 1


def most_surely_short(classes: list, correct: Callable, images: Callable):
    """Of ``classes``, the one most surely answered right too seldom: the lowest upper bound (risk DELTA) of its
    fraction correct (``correct(c)`` of ``images(c)``), so that 0 of 1 image (bound 0.95) does not hide 7 of 20
    (0.57). ``hier evaluate``'s JSON and the report page name their worst class by it."""
    return min(classes, key=lambda c: (clopper_pearson_upper(correct(c), images(c)), correct(c) / images(c)))

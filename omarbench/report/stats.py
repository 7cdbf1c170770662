"""Statistics of the report: ties by Welch's t-test, IQM and probability of improvement with
stratified bootstrap confidence intervals, t-intervals for curves, improvement percentages.

The aggregate measures follow Agarwal, Schwarzer, Castro, Courville and Bellemare, "Deep Reinforcement
Learning at the Edge of the Statistical Precipice" (NeurIPS 2021; the rliable library): the
interquartile mean (IQM) of all runs pooled over tasks, and confidence intervals from a bootstrap that
resamples runs (seeds) independently inside each task (stratified). Implemented here with numpy and
scipy; every bootstrap takes an explicit seed so reports are reproducible.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as sst

BOOTSTRAP_REPS = 2000
BOOTSTRAP_SEED = 0
CONFIDENCE = 0.95
ALPHA = 0.05  # ties: not significantly below the best at this level


@dataclass(frozen=True)
class Estimate:
    """A point estimate with a confidence interval (NaN when it cannot be computed)."""

    value: float
    lo: float
    hi: float

    def fmt(self, digits: int = 1) -> str:
        if not math.isfinite(self.value):
            return "—"
        if not (math.isfinite(self.lo) and math.isfinite(self.hi)):
            return f"{self.value:.{digits}f}"
        return f"{self.value:.{digits}f} [{self.lo:.{digits}f}, {self.hi:.{digits}f}]"


NAN_ESTIMATE = Estimate(math.nan, math.nan, math.nan)


def welch_p(a: Sequence[float], b: Sequence[float]) -> float:
    """Two-sided p-value of Welch's t-test (unequal variances) that the means of ``a`` and ``b`` differ.

    Degenerate cases get a definite answer instead of NaN: with fewer than two values on a side the
    test cannot run, and with no spread on either side the means are either equal (p = 1) or not (p = 0).
    """
    a, b = np.asarray(a, float), np.asarray(b, float)
    if len(a) < 2 or len(b) < 2:
        return math.nan
    if np.ptp(a) == 0 and np.ptp(b) == 0:
        return 1.0 if a.mean() == b.mean() else 0.0
    p = float(sst.ttest_ind(a, b, equal_var=False).pvalue)
    return p if math.isfinite(p) else 1.0


def welch_p_from_stats(m1: float, s1: float, n1: int, m2: float, s2: float, n2: int) -> float:
    """Welch's test from summary statistics (used for the paper's table, which gives mean, std and n)."""
    if n1 < 2 or n2 < 2:
        return math.nan
    if s1 == 0 and s2 == 0:
        return 1.0 if m1 == m2 else 0.0
    p = float(sst.ttest_ind_from_stats(m1, s1, n1, m2, s2, n2, equal_var=False).pvalue)
    return p if math.isfinite(p) else 1.0


def iqm(x: np.ndarray, axis: int | None = None) -> np.ndarray | float:
    """Interquartile mean: the mean of the middle 50% of the values (25% trimmed from each end)."""
    return sst.trim_mean(x, 0.25, axis=axis)


def _percentile_ci(reps: np.ndarray, confidence: float = CONFIDENCE) -> tuple[float, float]:
    reps = reps[np.isfinite(reps)]
    if reps.size == 0:
        return math.nan, math.nan
    tail = 100 * (1 - confidence) / 2
    lo, hi = np.percentile(reps, [tail, 100 - tail])
    return float(lo), float(hi)


def _resample(groups: Sequence[np.ndarray], reps: int, rng: np.random.Generator) -> list[np.ndarray]:
    """For each group of n values, ``reps`` resamples of size n drawn with replacement: [reps, n]."""
    return [g[rng.integers(0, len(g), size=(reps, len(g)))] for g in groups]


def stratified_bootstrap(
    groups: Sequence[Sequence[float]],
    statistic: Callable[[np.ndarray], np.ndarray],
    *,
    reps: int = BOOTSTRAP_REPS,
    seed: int = BOOTSTRAP_SEED,
    confidence: float = CONFIDENCE,
) -> Estimate:
    """``statistic`` of the pooled values, with a percentile CI from resampling inside each group.

    ``statistic`` maps an array [k, N] to [k] (one value per row); groups are the strata (task × level
    cells), each holding its runs (one value per seed).
    """
    groups = [np.asarray(g, float) for g in groups if len(g)]
    if not groups:
        return NAN_ESTIMATE
    point = float(statistic(np.concatenate(groups)[None, :])[0])
    rng = np.random.default_rng(seed)
    pooled = np.concatenate(_resample(groups, reps, rng), axis=1)
    lo, hi = _percentile_ci(np.asarray(statistic(pooled), float), confidence)
    return Estimate(point, lo, hi)


def iqm_ci(groups: Sequence[Sequence[float]], **kw) -> Estimate:
    return stratified_bootstrap(groups, lambda x: iqm(x, axis=1), **kw)


def mean_ci(groups: Sequence[Sequence[float]], **kw) -> Estimate:
    return stratified_bootstrap(groups, lambda x: x.mean(axis=1), **kw)


def _prob_greater(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """P(X > Y) + ½ P(X = Y) between the last axes of x [k, n] and y [k, m] → [k] (Mann–Whitney U / nm)."""
    gt = (x[:, :, None] > y[:, None, :]).mean(axis=(1, 2))
    eq = (x[:, :, None] == y[:, None, :]).mean(axis=(1, 2))
    return gt + 0.5 * eq


def probability_of_improvement(
    pairs: Sequence[tuple[Sequence[float], Sequence[float]]],
    *,
    reps: int = BOOTSTRAP_REPS,
    seed: int = BOOTSTRAP_SEED,
    confidence: float = CONFIDENCE,
) -> Estimate:
    """Average over cells of P(X > Y) (X: one algorithm's runs, Y: another's, in the same cell),
    with a CI from resampling each side's runs inside each cell."""
    pairs = [(np.asarray(x, float), np.asarray(y, float)) for x, y in pairs if len(x) and len(y)]
    if not pairs:
        return NAN_ESTIMATE
    point = float(np.mean([_prob_greater(x[None], y[None])[0] for x, y in pairs]))
    rng = np.random.default_rng(seed)
    reps_per_cell = []
    for x, y in pairs:
        xs, ys = _resample([x, y], reps, rng)
        reps_per_cell.append(_prob_greater(xs, ys))
    lo, hi = _percentile_ci(np.mean(reps_per_cell, axis=0), confidence)
    return Estimate(point, lo, hi)


def improvement_pct(
    new: Sequence[float],
    base: Sequence[float] | float,
    *,
    reps: int = BOOTSTRAP_REPS,
    seed: int = BOOTSTRAP_SEED,
    confidence: float = CONFIDENCE,
) -> Estimate:
    """``100 × (mean(new) − mean(base)) / mean(base)`` with a bootstrap CI over seeds.

    ``base`` is either runs (resampled too) or a constant (a behaviour policy's score). Undefined (NaN)
    when the base mean is not positive: a percentage of a score at or below zero has no meaning.
    """
    new = np.asarray(new, float)
    base_arr = np.atleast_1d(np.asarray(base, float))
    if new.size == 0 or base_arr.size == 0 or base_arr.mean() <= 0:
        return NAN_ESTIMATE
    point = 100.0 * (new.mean() - base_arr.mean()) / base_arr.mean()
    rng = np.random.default_rng(seed)
    nb = new[rng.integers(0, len(new), size=(reps, len(new)))].mean(axis=1)
    if base_arr.size > 1:
        bb = base_arr[rng.integers(0, len(base_arr), size=(reps, len(base_arr)))].mean(axis=1)
    else:
        bb = np.full(reps, base_arr[0])
    with np.errstate(divide="ignore", invalid="ignore"):
        boot = np.where(bb > 0, 100.0 * (nb - bb) / bb, np.nan)
    lo, hi = _percentile_ci(boot, confidence)
    return Estimate(float(point), lo, hi)


def t_interval(values: np.ndarray, axis: int = 0, confidence: float = CONFIDENCE) -> tuple[np.ndarray, np.ndarray]:
    """Mean and half-width of the Student-t confidence interval of the mean along ``axis`` (NaN for n < 2)."""
    values = np.asarray(values, float)
    n = values.shape[axis]
    mean = values.mean(axis=axis)
    if n < 2:
        return mean, np.full_like(mean, np.nan)
    sem = values.std(axis=axis, ddof=1) / math.sqrt(n)
    return mean, sem * sst.t.ppf(0.5 + confidence / 2, n - 1)


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman rank correlation (NaN for fewer than three points or constant input)."""
    if len(x) < 3:
        return math.nan
    x, y = np.asarray(x, float), np.asarray(y, float)
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return math.nan
    return float(sst.spearmanr(x, y).statistic)

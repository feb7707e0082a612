"""Significance on leaderboards: bootstrap intervals, paired tests between runs, significance groups.

Every function here works on per-item data of runs scored on the same items (images, questions,
arguments, ...). A metric has one of two forms (``include/metrics/registry.py``,
``MetricSpec.corpus_statistic``):

* **mean** form: the run's value is the mean of its per-item scores (concept F1, METEOR, nDCG@5,
  accuracy...). Its item data is one column, the per-item score.
* **corpus** form: the value is not a mean of per-item values (kappa, F1 of a label, pooled
  Jaccard, word error rate...). It has no per-item form; instead each item carries additive
  *components* (a confusion-matrix cell, an overlap and a union, errors and reference words) and
  a rule (:data:`CORPUS_RULES`) turns their sums into the value. Resampling items resamples the
  components, so every test below works on both forms.

Tests (all vectorised: one matrix product per block of resamples, whatever the number of runs):

* :func:`bootstrap_interval`: percentile bootstrap of items (resample the items with replacement,
  recompute the value), two-sided ``level`` interval.
* :func:`paired_permutation_test`: two-sided paired randomization test (Fisher's): under the null
  hypothesis the two runs' scores of an item are exchangeable, so each item's pair is swapped with
  probability 1/2; p = (1 + #{|d*| >= |d|}) / (1 + resamples).
* :func:`paired_bootstrap_test`: two-sided paired bootstrap test: resample items, recompute the
  difference d*, p = (1 + #{|d* - d| >= |d|}) / (1 + resamples) (the bootstrap distribution
  shifted to the null hypothesis).
* :func:`paired_t_test`: Student's paired t-test (mean form only), for reference.
* :func:`significance_groups`: the best ranked run is compared with each other ranked run; the
  p-values are Holm-corrected over those comparisons; runs not significantly different from the
  best share its group ``a``. The procedure repeats among the remaining runs (next best run,
  group ``b``, Holm over that round's comparisons), until every run has a group.

Random numbers come from ``numpy.random.default_rng(seed)``: the seed, the number of resamples
and the level are recorded with every result, so anyone can reproduce the numbers.
"""
from __future__ import annotations

import math
import string
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

DEFAULT_SEED = 20250901
DEFAULT_RESAMPLES = 10_000
DEFAULT_LEVEL = 0.95
DEFAULT_ALPHA = 0.05
# Rows of random resamples drawn at once: bounds memory to about BLOCK x items x 8 bytes.
BLOCK = 256
# Differences closer than this to the observed one count as "at least as extreme" (float noise).
RELATIVE_TIE = 1e-9
MEAN = "mean"
PERMUTATION, BOOTSTRAP = "permutation", "bootstrap"


class StatisticsError(ValueError):
    """The data cannot be tested (no items, runs on different items, an unknown rule)."""


# --- corpus rules: the value from sums of per-item components -------------------------------------


def _ratio(sums: np.ndarray) -> np.ndarray:
    numerator, denominator = sums[..., 0], sums[..., 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denominator != 0, numerator / np.where(denominator != 0, denominator, 1), np.nan)


def _kappa(sums: np.ndarray) -> np.ndarray:
    """Cohen's kappa from confusion cells (gold 0/1 x predicted 0/1: g0p0, g0p1, g1p0, g1p1)."""
    g0p0, g0p1, g1p0, g1p1 = (sums[..., i] for i in range(4))
    total = g0p0 + g0p1 + g1p0 + g1p1
    with np.errstate(divide="ignore", invalid="ignore"):
        observed = (g0p0 + g1p1) / total
        expected = ((g0p0 + g0p1) * (g0p0 + g1p0) + (g1p0 + g1p1) * (g0p1 + g1p1)) / (total * total)
        return np.where(expected < 1, (observed - expected) / (1 - expected), np.nan)


def _f1_of_label_1(sums: np.ndarray) -> np.ndarray:
    _, g0p1, g1p0, g1p1 = (sums[..., i] for i in range(4))
    denominator = 2 * g1p1 + g0p1 + g1p0
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denominator > 0, 2 * g1p1 / np.where(denominator > 0, denominator, 1), np.nan)


@dataclass(frozen=True)
class CorpusRule:
    """How a corpus-level value follows from the sums of its per-item components."""

    name: str
    components: tuple[str, ...]
    combine: Callable[[np.ndarray], np.ndarray]  # (..., components) sums -> (...) values


CONFUSION_CELLS = ("g0p0", "g0p1", "g1p0", "g1p1")
CORPUS_RULES: dict[str, CorpusRule] = {
    "ratio": CorpusRule("ratio", ("numerator", "denominator"), _ratio),
    "kappa": CorpusRule("kappa", CONFUSION_CELLS, _kappa),
    "f1": CorpusRule("f1", CONFUSION_CELLS, _f1_of_label_1),
}


def rule_for(form: str) -> CorpusRule | None:
    """The corpus rule of a form name, None for the mean form; ``StatisticsError`` for a rule with no implementation."""
    if form == MEAN:
        return None
    if form not in CORPUS_RULES:
        raise StatisticsError(f"the corpus statistic {form!r} has no item components to resample "
                              f"(known: {', '.join(CORPUS_RULES)})")
    return CORPUS_RULES[form]


def value_of(data: np.ndarray, form: str = MEAN) -> float:
    """The value a run's item data gives: the mean, or the corpus rule on the component sums."""
    data = _as_items(data)
    rule = rule_for(form)
    if rule is None:
        return float(data[:, 0].mean())
    return float(rule.combine(data.sum(axis=0)))


def _as_items(data: Any) -> np.ndarray:
    array = np.asarray(data, dtype=np.float64)
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2 or array.shape[0] == 0:
        raise StatisticsError("item data must be a non-empty (items x components) array")
    if not np.isfinite(array).all():
        raise StatisticsError("item data holds a missing or infinite value")
    return array


# --- random resamples ---------------------------------------------------------------------------


def _blocks(resamples: int) -> Iterable[int]:
    done = 0
    while done < resamples:
        size = min(BLOCK, resamples - done)
        yield size
        done += size


def _bootstrap_counts(rng: np.random.Generator, size: int, items: int) -> np.ndarray:
    """(size, items) matrix: how often each item is drawn in each resample (multinomial, sums to items)."""
    drawn = rng.integers(0, items, size=(size, items), dtype=np.int32)
    counts = np.empty((size, items))
    for row in range(size):  # one row's counts fit in cache; a flat bincount over the block does not
        counts[row] = np.bincount(drawn[row], minlength=items)
    return counts


def _swaps(rng: np.random.Generator, size: int, items: int) -> np.ndarray:
    """(size, items) matrix of 0/1: 1 where a resample swaps the two runs' scores of an item."""
    raw = rng.bytes(size * ((items + 7) // 8))
    bits = np.unpackbits(np.frombuffer(raw, dtype=np.uint8).reshape(size, -1), axis=1, count=items)
    return bits.astype(np.float64)


def resampled_sums(stack: np.ndarray, kind: str, resamples: int, seed: int) -> np.ndarray:
    """(resamples, runs, components) sums over items, weighted by each resample.

    ``kind`` ``bootstrap``: item counts of a resample with replacement; ``permutation``: 0/1 swap
    indicators. The weights depend only on (seed, resample, item), never on the runs, so every run
    and every pair sees the same resamples: one matrix product per block covers all of them, and
    any pair's test follows from these sums by linearity (see :func:`_swap_differences`).
    """
    items, count, width = stack.shape
    flat = stack.reshape(items, count * width)
    draw = _bootstrap_counts if kind == BOOTSTRAP else _swaps
    rng = np.random.default_rng(seed)
    out = np.empty((resamples, count * width))
    start = 0
    for size in _blocks(resamples):
        out[start:start + size] = draw(rng, size, items) @ flat
        start += size
    return out.reshape(resamples, count, width)


def _values_from_sums(sums: np.ndarray, items: int, rule: CorpusRule | None) -> np.ndarray:
    return sums[..., 0] / items if rule is None else rule.combine(sums)


def bootstrap_values(runs: Sequence[np.ndarray] | np.ndarray, form: str = MEAN, resamples: int = DEFAULT_RESAMPLES,
                     seed: int = DEFAULT_SEED) -> np.ndarray:
    """(resamples, runs) bootstrap replicates of each run's value, the same item resamples for every run.

    ``runs`` is a list of (items x components) arrays on the same items, or one (runs x items)
    matrix of mean-form scores.
    """
    stack = _stack(runs)
    return _values_from_sums(resampled_sums(stack, BOOTSTRAP, resamples, seed), stack.shape[0], rule_for(form))


def _stack(runs: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
    """(items, runs, components) array of runs on the same items."""
    if isinstance(runs, np.ndarray) and runs.ndim == 2:
        runs = list(runs)
    arrays = [_as_items(run) for run in runs]
    if not arrays:
        raise StatisticsError("no run to resample")
    if len({a.shape for a in arrays}) != 1:
        raise StatisticsError(f"runs differ in items or components: {sorted({a.shape for a in arrays})}")
    return np.stack(arrays, axis=1)


def percentile_interval(replicates: np.ndarray, level: float = DEFAULT_LEVEL) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper percentile bounds along the first axis; undefined replicates (NaN) are left out."""
    tail = (1 - level) / 2 * 100
    low, high = np.nanpercentile(replicates, [tail, 100 - tail], axis=0)
    return low, high


def bootstrap_interval(data: np.ndarray, form: str = MEAN, level: float = DEFAULT_LEVEL,
                       resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED) -> tuple[float, float]:
    """The percentile bootstrap ``level`` interval of one run's value."""
    low, high = percentile_interval(bootstrap_values([data], form, resamples, seed), level)
    return float(low[0]), float(high[0])


# --- paired tests -------------------------------------------------------------------------------


@dataclass(frozen=True)
class PairedTest:
    """The outcome of one paired test of run A against run B."""

    method: str
    difference: float  # value(A) - value(B)
    p_value: float
    resamples: int
    seed: int
    interval: tuple[float, float] | None = None  # bootstrap interval of the difference (bootstrap method)

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "difference": self.difference, "p_value": self.p_value,
                "resamples": self.resamples, "seed": self.seed,
                "difference_interval": list(self.interval) if self.interval else None}


def _paired(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a, b = _as_items(a), _as_items(b)
    if a.shape != b.shape:
        raise StatisticsError(f"paired runs need the same items and components: {a.shape} vs {b.shape}")
    return a, b


def _at_least_as_extreme(statistics: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """Count per column of |statistic| >= |observed| (ties within float noise count); NaN never counts."""
    threshold = np.abs(observed) * (1 - RELATIVE_TIE) - 1e-15
    with np.errstate(invalid="ignore"):
        return (np.abs(statistics) >= threshold).sum(axis=0)


@dataclass
class _Resampled:
    """Runs on the same items with their totals and resampled sums, for any number of pairwise tests."""

    stack: np.ndarray  # (items, runs, components)
    rule: CorpusRule | None
    method: str
    resamples: int
    sums: np.ndarray  # (resamples, runs, components): swap or bootstrap weighted sums

    @classmethod
    def of(cls, stack: np.ndarray, form: str, method: str, resamples: int, seed: int) -> "_Resampled":
        return cls(stack, rule_for(form), method, resamples, resampled_sums(stack, method, resamples, seed))

    @property
    def items(self) -> int:
        return self.stack.shape[0]

    def values(self) -> np.ndarray:
        return _values_from_sums(self.stack.sum(axis=0), self.items, self.rule)

    def test(self, leader: int, others: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """Observed value(leader) - value(other) and the two-sided p-value of each pair."""
        totals = self.stack.sum(axis=0)  # (runs, components)
        observed = self.values()[leader] - self.values()[list(others)]
        if self.method == PERMUTATION:
            statistics = self._swap_differences(totals, leader, others)
            extreme = _at_least_as_extreme(statistics, observed)
            return observed, (1 + extreme) / (1 + self.resamples)
        replicates = _values_from_sums(self.sums, self.items, self.rule)
        differences = replicates[:, [leader]] - replicates[:, list(others)]
        extreme = _at_least_as_extreme(differences - observed, observed)
        valid = np.isfinite(differences).sum(axis=0)
        return observed, (1 + extreme) / (1 + valid)

    def _swap_differences(self, totals: np.ndarray, leader: int, others: Sequence[int]) -> np.ndarray:
        """value(leader') - value(other') in every resample, where primes swap the pair's items marked 1.

        With swap weights s: leader' = total(leader) + s.(x_other - x_leader) and other' = total(other)
        - s.(x_other - x_leader); s.x is already in ``sums`` for every run, so each pair costs O(resamples).
        """
        others = list(others)
        moved = self.sums[:, others, :] - self.sums[:, [leader], :]  # (resamples, m, components)
        leader_sums = totals[[leader]][None, :, :] + moved
        other_sums = totals[others][None, :, :] - moved
        return _values_from_sums(leader_sums, self.items, self.rule) - _values_from_sums(other_sums, self.items, self.rule)


def permutation_differences(leader: np.ndarray, others: Sequence[np.ndarray], form: str = MEAN,
                            resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED) -> tuple[np.ndarray, np.ndarray]:
    """Observed differences value(leader) - value(other) and their paired randomization p-values.

    Each resample swaps the two runs' data on a random half of the items (the same swaps for every pair).
    """
    resampled = _Resampled.of(_stack([leader, *others]), form, PERMUTATION, resamples, seed)
    return resampled.test(0, range(1, len(others) + 1))


def paired_permutation_test(a: np.ndarray, b: np.ndarray, form: str = MEAN, resamples: int = DEFAULT_RESAMPLES,
                            seed: int = DEFAULT_SEED) -> PairedTest:
    """Two-sided paired randomization test of value(a) = value(b)."""
    a, b = _paired(a, b)
    observed, p_values = permutation_differences(a, [b], form, resamples, seed)
    return PairedTest(PERMUTATION, float(observed[0]), float(p_values[0]), resamples, seed)


def paired_bootstrap_test(a: np.ndarray, b: np.ndarray, form: str = MEAN, resamples: int = DEFAULT_RESAMPLES,
                          seed: int = DEFAULT_SEED, level: float = DEFAULT_LEVEL) -> PairedTest:
    """Two-sided paired bootstrap test of value(a) = value(b), with the interval of the difference."""
    a, b = _paired(a, b)
    resampled = _Resampled.of(_stack([a, b]), form, BOOTSTRAP, resamples, seed)
    observed, p_values = resampled.test(0, [1])
    replicates = _values_from_sums(resampled.sums, resampled.items, resampled.rule)
    low, high = percentile_interval((replicates[:, 0] - replicates[:, 1])[:, None], level)
    return PairedTest(BOOTSTRAP, float(observed[0]), float(p_values[0]), resamples, seed, (float(low[0]), float(high[0])))


def paired_t_test(a: np.ndarray, b: np.ndarray) -> PairedTest:
    """Student's two-sided paired t-test on mean-form scores (assumes roughly normal item differences)."""
    from scipy.stats import ttest_rel

    a, b = _paired(a, b)
    if a.shape[1] != 1:
        raise StatisticsError("the paired t-test needs per-item scores (mean form)")
    difference = float(a[:, 0].mean() - b[:, 0].mean())
    if np.allclose(a[:, 0], b[:, 0]):
        return PairedTest("t-test", difference, 1.0, 0, 0)
    return PairedTest("t-test", difference, float(ttest_rel(a[:, 0], b[:, 0]).pvalue), 0, 0)


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values (family-wise error rate), in the input order."""
    p = np.asarray(p_values, dtype=float)
    m = len(p)
    if m == 0:
        return p
    order = np.argsort(p, kind="stable")
    adjusted_sorted = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    adjusted = np.empty(m)
    adjusted[order] = adjusted_sorted
    return adjusted


# --- significance groups -----------------------------------------------------------------------------


@dataclass
class RunStatistics:
    """One ranked run's interval and group on a leaderboard."""

    value: float
    interval: tuple[float, float]
    group: str
    leader: bool  # the best run of its group
    compared_with: int | None = None  # index of the group's leader it was tested against
    difference: float | None = None  # leader - this run
    p_value: float | None = None  # raw p of the test against its group's leader (None for a leader)
    p_adjusted: float | None = None  # Holm-adjusted over the round's comparisons
    differs_from_best: bool = False  # significantly different from the overall best run (group a's leader)
    p_vs_best: float | None = None  # Holm-adjusted p against the best run (round 1)


@dataclass
class Significance:
    """Intervals and groups for runs in rank order (index 0 is the best)."""

    form: str
    runs: list[RunStatistics]
    settings: dict[str, Any] = field(default_factory=dict)


def group_name(index: int) -> str:
    """a, b, ..., z, aa, ab, ...: the marker of the index-th group."""
    letters = string.ascii_lowercase
    name = ""
    index += 1
    while index:
        index, remainder = divmod(index - 1, 26)
        name = letters[remainder] + name
    return name


def significance_groups(runs: Sequence[np.ndarray], form: str = MEAN, higher_is_better: bool = True,
                        resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED, alpha: float = DEFAULT_ALPHA,
                        level: float = DEFAULT_LEVEL, method: str = PERMUTATION) -> Significance:
    """Intervals and significance groups of runs given best first (the leaderboard's rank order).

    Round 1 tests the best run against every other run (paired, ``method``) and Holm-corrects the
    p-values over those comparisons: the runs whose adjusted p is at least ``alpha`` join the best
    run in group ``a``. Each next round starts at the best run not yet in a group and does the same
    among the runs not yet in a group. Ties with the leader (equal value) always share its group.
    Every test and interval uses the same ``seed``: a pair's p-value equals
    ``paired_permutation_test`` (or ``paired_bootstrap_test``) on that pair alone.
    """
    if method not in (PERMUTATION, BOOTSTRAP):
        raise StatisticsError(f"unknown test method {method!r}: use {PERMUTATION!r} or {BOOTSTRAP!r}")
    stack = _stack(runs)
    bootstrap = _Resampled.of(stack, form, BOOTSTRAP, resamples, seed)
    low, high = percentile_interval(_values_from_sums(bootstrap.sums, bootstrap.items, bootstrap.rule), level)
    tests = bootstrap if method == BOOTSTRAP else _Resampled.of(stack, form, PERMUTATION, resamples, seed)
    values = tests.values()
    stats = [RunStatistics(float(values[i]), (float(low[i]), float(high[i])), "", False) for i in range(len(values))]
    pending = list(range(len(values)))
    round_number = 0
    while pending:
        leader, others = pending[0], pending[1:]
        _assign_round(stats, tests, leader, others, alpha, group_name(round_number))
        if round_number == 0:
            for index in others:
                stats[index].p_vs_best = stats[index].p_adjusted
                stats[index].differs_from_best = stats[index].group != stats[leader].group
        pending = [i for i in others if not stats[i].group]
        round_number += 1
    settings = {"method": method, "resamples": resamples, "seed": seed, "alpha": alpha, "level": level,
                "correction": "holm", "interval": "percentile bootstrap of items", "form": form,
                "items": int(stack.shape[0]), "higher_is_better": higher_is_better}
    return Significance(form, stats, settings)


def _assign_round(stats: list[RunStatistics], tests: _Resampled, leader: int, others: list[int], alpha: float, group: str) -> None:
    stats[leader].group, stats[leader].leader = group, True
    if not others:
        return
    observed, p_values = tests.test(leader, others)
    adjusted = holm(p_values)
    for position, index in enumerate(others):
        run = stats[index]
        run.compared_with, run.difference = leader, float(observed[position])
        run.p_value, run.p_adjusted = float(p_values[position]), float(adjusted[position])
        tied = math.isclose(run.value, stats[leader].value, rel_tol=1e-12, abs_tol=1e-12)
        if tied or adjusted[position] >= alpha:
            run.group = group


# --- per-item tables ---------------------------------------------------------------------------------


def component_column(metric: str, component: str) -> str:
    """The per-item file's column of one component of a corpus metric: ``metric:component``."""
    return f"{metric}:{component}"


def item_data(table: "Any", metric: str, form: str) -> "Any":
    """A run's item data for one metric from its per-item table (pandas, index = item id), or None.

    Mean form: the metric's column. Corpus form: the rule's component columns, in rule order.
    Rows with a missing value are dropped (that item was not scored for this metric).
    """
    rule = rule_for(form)
    columns = [metric] if rule is None else [component_column(metric, c) for c in rule.components]
    if any(column not in table.columns for column in columns):
        return None
    return table[columns].dropna()


def align(tables: Sequence[Any]) -> tuple[list[np.ndarray], list[str]]:
    """The runs' item data on their common items (sorted), and the common item ids."""
    common = None
    for table in tables:
        common = table.index if common is None else common.intersection(table.index)
    items = sorted(str(item) for item in (common if common is not None else []))
    if not items:
        raise StatisticsError("the runs share no scored item")
    return [table.loc[items].to_numpy(dtype=np.float64) for table in tables], items


def check_value(data: np.ndarray, form: str, reported: float | None) -> str | None:
    """Why the item data does not reproduce the reported value (None when it does)."""
    if reported is None:
        return "the run has no value"
    try:
        recomputed = value_of(data, form)
    except StatisticsError as exc:
        return str(exc)
    if not math.isclose(recomputed, reported, rel_tol=1e-6, abs_tol=1e-9):
        what = "the mean of its per-item scores" if form == MEAN else f"the {form} of its item components"
        return f"its value {reported!r} is not {what} ({recomputed!r}) under the task's metric options"
    return None


def interval_text(interval: Sequence[float] | None, decimals: int = 4) -> str:
    """``[low, high]`` for display; empty when there is no interval."""
    if not interval:
        return ""
    return f"[{interval[0]:.{decimals}f}, {interval[1]:.{decimals}f}]"


def settings_text(settings: Mapping[str, Any]) -> str:
    """One sentence saying how the intervals and groups were computed."""
    test = "paired randomization (permutation) test" if settings.get("method") == PERMUTATION else "paired bootstrap test"
    return (f"{int(round(settings['level'] * 100))} % percentile bootstrap intervals over {settings['items']} items; "
            f"groups by a two-sided {test} against each group's best run, Holm-corrected, alpha = {settings['alpha']}; "
            f"{settings['resamples']} resamples, seed {settings['seed']}")

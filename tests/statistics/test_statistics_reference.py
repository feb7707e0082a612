"""The significance tests against independent implementations: scipy, ranx and scikit-learn.

Tolerances (docs/metrics.md): two Monte Carlo p-values from B resamples each agree within
4 standard errors, 4 * sqrt(p (1 - p) / B) + 2 / B; two percentile-bootstrap bounds from B
resamples each agree within 4 standard errors of their difference, 4 * sqrt(2 q (1 - q) / B) /
phi(z_q) bootstrap standard errors (0.24 SE for B = 4000, q = 0.025); exact quantities (values,
the t-test, Holm) to 1e-12.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats
from sklearn.metrics import cohen_kappa_score, f1_score

from include.campaign import significance as st

RESAMPLES = 4000


def monte_carlo_tolerance(p: float, resamples: int) -> float:
    return 4 * math.sqrt(max(p * (1 - p), 1 / resamples) / resamples) + 2 / resamples


def paired_scores(rng, items: int, shift: float, noise: float = 0.2):
    a = rng.random(items)
    return a, np.clip(a - shift + rng.normal(0, noise, items), 0, 1)


def interval_tolerance(standard_error: float, resamples: int, tail: float = 0.025) -> float:
    quantile_error = math.sqrt(2 * tail * (1 - tail) / resamples) / scipy_stats.norm.pdf(scipy_stats.norm.ppf(tail))
    return 4 * quantile_error * standard_error


def mean_difference(x, y, axis=-1):
    return np.mean(x, axis=axis) - np.mean(y, axis=axis)


@pytest.mark.parametrize("shift", [0.0, 0.02, 0.04])
def test_permutation_p_values_match_scipy_permutation_test(shift):
    a, b = paired_scores(np.random.default_rng(7), 300, shift)
    ours = st.paired_permutation_test(a, b, resamples=RESAMPLES, seed=3)
    reference = scipy_stats.permutation_test((a, b), mean_difference, permutation_type="samples", n_resamples=RESAMPLES,
                                             vectorized=True, random_state=11).pvalue
    assert ours.difference == pytest.approx(a.mean() - b.mean(), abs=1e-12)
    assert abs(ours.p_value - reference) <= monte_carlo_tolerance(reference, RESAMPLES)


def test_bootstrap_intervals_match_scipy_bootstrap_percentile():
    rng = np.random.default_rng(5)
    for data in (rng.random(500), rng.beta(0.5, 3, 800), (rng.random(400) < 0.3).astype(float)):
        low, high = st.bootstrap_interval(data, resamples=RESAMPLES, seed=1)
        reference = scipy_stats.bootstrap((data,), np.mean, n_resamples=RESAMPLES, method="percentile",
                                          confidence_level=0.95, random_state=2)
        tolerance = interval_tolerance(reference.standard_error, RESAMPLES)
        assert abs(low - reference.confidence_interval.low) <= tolerance
        assert abs(high - reference.confidence_interval.high) <= tolerance


def test_paired_bootstrap_interval_of_the_difference_matches_scipy():
    a, b = paired_scores(np.random.default_rng(9), 400, 0.03)
    ours = st.paired_bootstrap_test(a, b, resamples=RESAMPLES, seed=4)
    reference = scipy_stats.bootstrap((a, b), mean_difference, paired=True, n_resamples=RESAMPLES, method="percentile",
                                      vectorized=True, random_state=8)
    tolerance = interval_tolerance(reference.standard_error, RESAMPLES)
    assert abs(ours.interval[0] - reference.confidence_interval.low) <= tolerance
    assert abs(ours.interval[1] - reference.confidence_interval.high) <= tolerance


def test_the_paired_t_test_is_scipys():
    a, b = paired_scores(np.random.default_rng(2), 50, 0.05)
    assert st.paired_t_test(a, b).p_value == pytest.approx(scipy_stats.ttest_rel(a, b).pvalue, abs=1e-12)


# --- ranx on generated IR runs ----------------------------------------------------------------------


def ir_runs(rng, queries: int, improvement: float):
    """qrels and two runs over the same queries; run B ranks relevant documents higher by ``improvement``."""
    from ranx import Qrels, Run

    qrels, run_a, run_b = {}, {}, {}
    for q in range(queries):
        query = f"q{q}"
        relevant = {f"d{d}": int(rng.integers(1, 3)) for d in rng.choice(50, size=5, replace=False)}
        qrels[query] = relevant
        base = {f"d{d}": float(rng.random()) for d in range(50)}
        run_a[query] = base
        run_b[query] = {doc: score + (improvement * rng.random() if doc in relevant else 0.0) for doc, score in base.items()}
    return Qrels(qrels), Run(run_a, name="a"), Run(run_b, name="b")


def per_query(qrels, run, metric="ndcg@5"):
    from ranx import evaluate

    scores = evaluate(qrels, run, metric, return_mean=False)
    return np.asarray(scores, dtype=float)


@pytest.mark.parametrize("improvement", [0.0, 0.3, 1.0])
def test_permutation_p_values_match_ranx_fisher_randomization(improvement):
    from ranx.statistical_tests import fisher_randomization_test

    qrels, run_a, run_b = ir_runs(np.random.default_rng(int(improvement * 10) + 1), 80, improvement)
    a, b = per_query(qrels, run_a), per_query(qrels, run_b)
    reference, _ = fisher_randomization_test(a, b, RESAMPLES, 0.05, 42)
    ours = st.paired_permutation_test(a, b, resamples=RESAMPLES, seed=42)
    # ranx counts p as the share of permutations at least as extreme (no +1): same tolerance.
    assert abs(ours.p_value - reference) <= monte_carlo_tolerance(reference, RESAMPLES)


def test_t_test_matches_ranx_paired_student_t_test():
    from ranx.statistical_tests import paired_student_t_test

    qrels, run_a, run_b = ir_runs(np.random.default_rng(3), 60, 0.5)
    a, b = per_query(qrels, run_a), per_query(qrels, run_b)
    reference, _ = paired_student_t_test(a, b, 0.05)
    assert st.paired_t_test(a, b).p_value == pytest.approx(reference, abs=1e-12)


def test_groups_agree_with_ranx_compare_on_a_large_and_a_null_difference():
    from ranx import compare

    rng = np.random.default_rng(12)
    qrels, run_a, run_b = ir_runs(rng, 120, 2.0)
    report = compare(qrels, [run_b, run_a], ["ndcg@5"], stat_test="fisher", n_permutations=RESAMPLES, max_p=0.05)
    ranx_p = report.comparisons[("b", "a")]["ndcg@5"]["p_value"]
    groups = st.significance_groups([per_query(qrels, run_b), per_query(qrels, run_a)], resamples=RESAMPLES, seed=1)
    assert ranx_p < 0.01 and [r.group for r in groups.runs] == ["a", "b"]
    assert abs(groups.runs[1].p_value - ranx_p) <= monte_carlo_tolerance(ranx_p, RESAMPLES)


# --- calibration: no difference gives uniform p-values, a large one is found ------------------------


def test_without_a_true_difference_p_values_are_uniform_over_many_seeds():
    p_values = []
    for seed in range(200):
        rng = np.random.default_rng(1000 + seed)
        base = rng.random(120)
        a = base + rng.normal(0, 0.1, 120)  # both runs: the same expected score on every item
        b = base + rng.normal(0, 0.1, 120)
        p_values.append(st.paired_permutation_test(a, b, resamples=999, seed=seed).p_value)
    assert scipy_stats.kstest(p_values, "uniform").pvalue > 0.01
    assert 0.02 <= np.mean(np.asarray(p_values) < 0.05) <= 0.10


def test_without_a_true_difference_bootstrap_p_values_are_close_to_uniform():
    p_values = []
    for seed in range(150):
        rng = np.random.default_rng(5000 + seed)
        base = rng.random(200)
        p_values.append(st.paired_bootstrap_test(base + rng.normal(0, 0.1, 200), base + rng.normal(0, 0.1, 200),
                                                 resamples=999, seed=seed).p_value)
    assert scipy_stats.kstest(p_values, "uniform").pvalue > 0.01


def test_a_large_true_difference_is_found_by_every_test():
    a, b = paired_scores(np.random.default_rng(1), 500, 0.1)
    for test in (st.paired_permutation_test(a, b, resamples=2000), st.paired_bootstrap_test(a, b, resamples=2000),
                 st.paired_t_test(a, b)):
        assert test.p_value < 0.001, test.method


def test_the_seed_makes_results_reproducible_and_is_recorded():
    a, b = paired_scores(np.random.default_rng(4), 200, 0.01)
    first, again = (st.paired_permutation_test(a, b, resamples=500, seed=77) for _ in range(2))
    assert first == again and first.seed == 77 and first.resamples == 500
    assert st.bootstrap_interval(a, resamples=500, seed=9) == st.bootstrap_interval(a, resamples=500, seed=9)


# --- corpus metrics: components resampled = the metric recomputed on resampled items -------------------


def cells(gold, predicted):
    return np.stack([(gold == g) & (predicted == p) for g in (0, 1) for p in (0, 1)], axis=1).astype(float)


def test_kappa_and_f1_from_components_equal_scikit_learn_on_resampled_items():
    rng = np.random.default_rng(21)
    gold = rng.integers(0, 2, 300)
    predicted = np.where(rng.random(300) < 0.8, gold, 1 - gold)
    data = cells(gold, predicted)
    assert st.value_of(data, "kappa") == pytest.approx(cohen_kappa_score(gold, predicted), abs=1e-12)
    assert st.value_of(data, "f1") == pytest.approx(f1_score(gold, predicted), abs=1e-12)
    for _ in range(20):  # what bootstrap_values does in one matrix product, item by item
        drawn = rng.integers(0, 300, 300)
        assert st.value_of(data[drawn], "kappa") == pytest.approx(cohen_kappa_score(gold[drawn], predicted[drawn]), abs=1e-12)


def test_corpus_bootstrap_replicates_are_the_metric_on_the_resampled_items():
    rng = np.random.default_rng(8)
    numerator, denominator = rng.integers(0, 10, 50).astype(float), rng.integers(1, 12, 50).astype(float)
    data = np.stack([numerator, denominator], axis=1)
    replicates = st.bootstrap_values([data], "ratio", resamples=5, seed=3)[:, 0]
    replay = np.random.default_rng(3)
    for replicate in replicates:
        drawn = replay.integers(0, 50, size=(1, 50))[0]
        assert replicate == pytest.approx(numerator[drawn].sum() / denominator[drawn].sum(), abs=1e-12)


def test_corpus_permutation_test_matches_scipy_on_kappa():
    rng = np.random.default_rng(31)
    gold = rng.integers(0, 2, 250)
    run_a = np.where(rng.random(250) < 0.85, gold, 1 - gold)
    run_b = np.where(rng.random(250) < 0.75, gold, 1 - gold)

    def kappa_difference(x, y, axis=-1):  # x, y: predicted labels, permuted within each item
        return np.apply_along_axis(lambda row: cohen_kappa_score(gold, row), -1, x) - \
            np.apply_along_axis(lambda row: cohen_kappa_score(gold, row), -1, y)

    reference = scipy_stats.permutation_test((run_a, run_b), kappa_difference, permutation_type="samples", vectorized=True,
                                             n_resamples=1000, random_state=5).pvalue
    ours = st.paired_permutation_test(cells(gold, run_a), cells(gold, run_b), "kappa", resamples=1000, seed=5)
    assert abs(ours.p_value - reference) <= monte_carlo_tolerance(reference, 1000)


# --- Holm and groups ---------------------------------------------------------------------------------


def test_holm_adjustment_by_hand():
    # Sorted p: 0.01, 0.02, 0.03, 0.04 -> 4*0.01, 3*0.02, max(0.06, 2*0.03), max(0.06, 0.04).
    assert st.holm([0.03, 0.01, 0.04, 0.02]).tolist() == pytest.approx([0.06, 0.04, 0.06, 0.06], abs=1e-12)
    assert st.holm([0.5, 0.9]).tolist() == pytest.approx([1.0, 1.0])


def test_groups_put_runs_indistinguishable_from_the_best_in_its_group():
    rng = np.random.default_rng(40)
    base = rng.random(2000)
    # Paired differences of 0.0002 with item noise 0.01 over 2000 items: under one standard error.
    runs = [base + 0.05, base + 0.0498 + rng.normal(0, 0.01, 2000), base, base - 0.0002 + rng.normal(0, 0.01, 2000)]
    result = st.significance_groups(runs, resamples=2000, seed=2)
    assert [r.group for r in result.runs] == ["a", "a", "b", "b"]
    assert [r.differs_from_best for r in result.runs] == [False, False, True, True]
    assert result.runs[1].p_vs_best >= 0.05 > result.runs[2].p_vs_best
    # Round 1 (best vs 3 runs) adjusts over 3 comparisons; round 2 (run 3 vs run 4) over 1.
    assert result.runs[1].p_adjusted == result.runs[1].p_vs_best and result.runs[2].p_adjusted == result.runs[2].p_vs_best
    assert result.runs[2].p_adjusted >= result.runs[2].p_value and result.runs[3].compared_with == 2
    assert result.runs[3].p_adjusted == result.runs[3].p_value
    for run, data in zip(result.runs, runs):
        assert run.interval[0] <= data.mean() <= run.interval[1]
    assert result.settings["seed"] == 2 and result.settings["correction"] == "holm"


def test_tied_runs_share_the_leaders_group_and_group_names_go_past_z():
    same = np.linspace(0, 1, 100)
    result = st.significance_groups([same, same.copy()], resamples=200)
    assert [r.group for r in result.runs] == ["a", "a"] and result.runs[1].p_value == 1.0
    assert [st.group_name(i) for i in (0, 25, 26, 27)] == ["a", "z", "aa", "ab"]


def test_bad_input_is_refused_with_the_reason():
    with pytest.raises(st.StatisticsError, match="missing or infinite"):
        st.bootstrap_interval(np.array([0.1, np.nan]))
    with pytest.raises(st.StatisticsError, match="same items"):
        st.paired_permutation_test(np.ones(3), np.ones(4))
    with pytest.raises(st.StatisticsError, match="no item components"):
        st.rule_for("bleu")


def test_a_pairs_p_value_in_the_groups_is_the_paired_test_on_that_pair_alone():
    rng = np.random.default_rng(50)
    base = rng.random(300)
    runs = [base + 0.02 + rng.normal(0, 0.05, 300), base + 0.01 + rng.normal(0, 0.05, 300), base + rng.normal(0, 0.05, 300)]
    for method, single in ((st.PERMUTATION, st.paired_permutation_test), (st.BOOTSTRAP, st.paired_bootstrap_test)):
        result = st.significance_groups(runs, resamples=800, seed=6, method=method)
        for index in (1, 2):
            if result.runs[index].compared_with == 0:
                assert result.runs[index].p_value == pytest.approx(single(runs[0], runs[index], resamples=800, seed=6).p_value, abs=1e-12)

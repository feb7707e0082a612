"""GANs kappa, accuracy, F1 and attribution accuracy agree with direct counts and scikit-learn."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import cohen_kappa_score, f1_score

from include.metrics import score_run


def kappa_by_hand(gold: np.ndarray, predicted: np.ndarray) -> float:
    observed = np.mean(gold == predicted)
    expected = sum(np.mean(gold == label) * np.mean(predicted == label) for label in (0, 1))
    return (observed - expected) / (1 - expected)


def detection_tables(gold: np.ndarray, predicted: np.ndarray):
    ids = [f"gen_{n:04d}.png" for n in range(len(gold))]
    return (pd.DataFrame({"id": ids, "label": predicted}),
            {"labels": pd.DataFrame({"id": ids, "label": gold})})


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_detection_metrics_match_hand_counts_and_sklearn(seed):
    rng = np.random.default_rng(seed)
    gold = rng.integers(0, 2, 500)
    predicted = np.where(rng.random(500) < 0.7, gold, 1 - gold)
    results = score_run("gans-detection-csv", ["gans_kappa", "gans_accuracy", "gans_f1"],
                        *detection_tables(gold, predicted))
    assert abs(results["gans_kappa"].value - kappa_by_hand(gold, predicted)) < 1e-9
    assert abs(results["gans_kappa"].value - cohen_kappa_score(gold, predicted)) < 1e-9
    assert abs(results["gans_accuracy"].value - np.mean(gold == predicted)) < 1e-9
    true_positive = np.sum((gold == 1) & (predicted == 1))
    expected_f1 = 2 * true_positive / (np.sum(gold == 1) + np.sum(predicted == 1))
    assert abs(results["gans_f1"].value - expected_f1) < 1e-9
    assert abs(results["gans_f1"].value - f1_score(gold, predicted)) < 1e-9
    assert results["gans_accuracy"].per_item.to_numpy().tolist() == (gold == predicted).astype(float).tolist()


def test_missing_labels_are_wrong_for_accuracy_and_block_kappa_and_f1():
    run, gold = detection_tables(np.array([1, 0, 1, 0]), np.array([1, 0, 1, 0]))
    run = run.iloc[:3]
    results = score_run("gans-detection-csv", ["gans_kappa", "gans_accuracy", "gans_f1"], run, gold)
    assert results["gans_accuracy"].value == 0.75
    for name in ("gans_kappa", "gans_f1"):
        assert results[name].value is None
        assert "no label for 1 gold image" in results[name].not_computed and "gen_0003.png" in results[name].not_computed


def test_undefined_kappa_is_reported_not_zero():
    results = score_run("gans-detection-csv", ["gans_kappa"], *detection_tables(np.ones(5, int), np.ones(5, int)))
    assert results["gans_kappa"].value is None and "undefined" in results["gans_kappa"].not_computed


def test_attribution_accuracy_counts_right_subsets():
    rng = np.random.default_rng(3)
    subsets = np.array([f"subset_{k}" for k in rng.integers(1, 6, 300)])
    guesses = np.where(rng.random(300) < 0.4, subsets, np.array([f"subset_{k}" for k in rng.integers(1, 6, 300)]))
    ids = [f"syn_{n}" for n in range(300)]
    run = pd.DataFrame({"id": ids[:-10], "subset": guesses[:-10]})  # the last ten are missing: wrong
    gold = {"subsets": pd.DataFrame({"id": ids, "subset": subsets})}
    result = score_run("gans-attribution-csv", ["attribution_accuracy"], run, gold)["attribution_accuracy"]
    assert abs(result.value - np.sum(subsets[:-10] == guesses[:-10]) / 300) < 1e-9
    assert result.per_item.index.tolist() == ids


@pytest.mark.parametrize(("run_format", "metrics", "table", "file", "column"), [
    ("gans-detection-csv", ["gans_kappa", "gans_accuracy", "gans_f1"], "labels", "labels.csv", "label"),
    ("gans-attribution-csv", ["attribution_accuracy"], "subsets", "subsets.csv", "subset"),
])
def test_every_gans_metric_names_a_missing_or_empty_gold_table(run_format, metrics, table, file, column):
    run = pd.DataFrame({"id": ["gen_0001.png"], column: ["1"]})
    for gold, reason in (({}, f"not computed: the gold folder has no {table} table ({file})"),
                         ({table: pd.DataFrame({"id": [], column: []})}, f"not computed: the gold {table} table is empty")):
        results = score_run(run_format, metrics, run, gold)
        assert {name: (result.value, result.not_computed) for name, result in results.items()} == {name: (None, reason) for name in metrics}

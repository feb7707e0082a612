"""Concept F1 agrees with the organizers' per-image scikit-learn loop on generated data."""
from __future__ import annotations

import random

import pandas as pd
import pytest
from sklearn.metrics import f1_score

from include.metrics import score_run
from include.metrics.registry import MANUAL_CONCEPT_CUIS


def organizers_mean_f1(run: dict[str, list[str]], gold: dict[str, list[str]], keep: set[str] | None = None) -> float:
    """The organizers' evaluator: upper-case, skip empty gold, binary f1_score per image."""
    total, counted = 0.0, len(gold)
    for image_id, gold_cuis in gold.items():
        gold_cuis = [c.upper() for c in gold_cuis]
        predicted = [c.upper() for c in run.get(image_id, [])]
        if keep is not None:
            gold_cuis = [c for c in gold_cuis if c in keep]
            predicted = [c for c in predicted if c in keep]
        if not gold_cuis:
            counted -= 1
            continue
        union = sorted(set(gold_cuis + predicted))
        y_true = [int(c in gold_cuis) for c in union]
        y_pred = [int(c in predicted) for c in union]
        total += f1_score(y_true, y_pred, average="binary", zero_division=0)
    return total / counted


def generated_concepts(seed: int, images: int = 150):
    rng = random.Random(seed)
    vocabulary = [f"C{n:07d}" for n in rng.sample(range(10_000_000), 60)] + list(MANUAL_CONCEPT_CUIS)
    gold, run = {}, {}
    for n in range(images):
        image_id = f"ImageCLEFmedical_2025_test_{n:05d}"
        gold[image_id] = rng.sample(vocabulary, rng.choice([0, 1, 2, 3, 5, 8]))  # 0: empty gold image
        kept = [c for c in gold[image_id] if rng.random() < 0.6]
        guessed = rng.sample(vocabulary, rng.choice([0, 0, 1, 2, 4]))
        predicted = list(dict.fromkeys(kept + guessed))
        if rng.random() < 0.2:
            predicted = [c.lower() for c in predicted]  # case must not matter
        if rng.random() < 0.1:
            predicted = []  # empty prediction scores 0
        run[image_id] = predicted
    return run, gold


def as_table(mapping: dict[str, list[str]]) -> pd.DataFrame:
    return pd.DataFrame({"ID": list(mapping), "CUIs": list(mapping.values())})


@pytest.mark.parametrize("seed", [1, 2])
def test_concept_f1_matches_per_image_sklearn_loop(seed):
    run, gold = generated_concepts(seed)
    manual_gold = {k: [c for c in v if c in MANUAL_CONCEPT_CUIS] for k, v in gold.items()}
    results = score_run("caption-concepts-csv", ["concept_f1", "concept_f1_manual"], as_table(run),
                        {"concepts": as_table(gold), "concepts_manual": as_table(manual_gold)})
    assert abs(results["concept_f1"].value - organizers_mean_f1(run, gold)) < 1e-9
    expected_manual = organizers_mean_f1(run, gold, keep=set(MANUAL_CONCEPT_CUIS))
    assert abs(results["concept_f1_manual"].value - expected_manual) < 1e-9


def test_edge_cases_per_image():
    gold = {"empty_gold": [], "perfect": ["C1", "C2"], "nothing_predicted": ["C1"], "half": ["C1", "C2"],
            "absent_from_run": ["C3"]}
    run = {"empty_gold": ["C9"], "perfect": ["c2", "c1"], "nothing_predicted": [], "half": ["C1", "C5"],
           "unknown": ["C1"]}
    result = score_run("caption-concepts-csv", ["concept_f1"], as_table(run), {"concepts": as_table(gold)})["concept_f1"]
    per_image = result.per_item.to_dict()
    assert per_image == {"perfect": 1.0, "nothing_predicted": 0.0, "half": 0.5, "absent_from_run": 0.0}
    assert result.value == pytest.approx(1.5 / 4, abs=1e-12)
    assert result.value == pytest.approx(organizers_mean_f1(run, gold), abs=1e-12)


def test_case_sensitive_option_changes_the_score():
    gold, run = {"a": ["C1"]}, {"a": ["c1"]}
    tables = as_table(run), {"concepts": as_table(gold)}
    assert score_run("caption-concepts-csv", ["concept_f1"], *tables)["concept_f1"].value == 1.0
    sensitive = score_run("caption-concepts-csv", ["concept_f1"], *tables, options={"concept_case_sensitive": True})
    assert sensitive["concept_f1"].value == 0.0


def test_missing_gold_table_or_empty_gold_is_reported_not_zero():
    run = as_table({"a": ["C1"]})
    manual = score_run("caption-concepts-csv", ["concept_f1_manual"], run, {"concepts": as_table({"a": ["C1"]})})
    assert manual["concept_f1_manual"].value is None
    assert "concepts_manual" in manual["concept_f1_manual"].not_computed
    empty = score_run("caption-concepts-csv", ["concept_f1"], run, {"concepts": as_table({"a": []})})
    assert empty["concept_f1"].value is None and "no gold image" in empty["concept_f1"].not_computed

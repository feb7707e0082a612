"""MAGIC segmentation agrees with direct numpy counts; closed VQA with a plain set loop."""
from __future__ import annotations

import math
import random

import numpy as np
import pandas as pd
import pytest

from include.metrics import score_run

MASK_METRICS = ["magic_jaccard", "magic_dice", "magic_dice_mean_of_max", "magic_dice_mean_of_mean"]


def generated_masks(seed: int, images: int = 12):
    rng = np.random.default_rng(seed)
    run_rows, gold_rows = [], []
    for n in range(images):
        item_id = f"IMG_ENC{n:05d}_{n:05d}"
        height, width = int(rng.integers(20, 60)), int(rng.integers(20, 60))
        wound = rng.random((height, width)) < 0.3
        for annotator in range(int(rng.integers(1, 5))):  # one to four annotators
            noisy = wound ^ (rng.random((height, width)) < 0.1)
            gold_rows.append({"item_id": item_id, "annotator": f"ann{annotator}", "mask": noisy})
        if n != 4:  # image 4 has no predicted mask
            run_rows.append({"item_id": item_id, "system": "sys1", "mask": wound ^ (rng.random((height, width)) < 0.2)})
    # An image where every annotator and the system mark nothing.
    gold_rows.append({"item_id": "IMG_ENC99999_00001", "annotator": "ann0", "mask": np.zeros((8, 8), bool)})
    run_rows.append({"item_id": "IMG_ENC99999_00001", "system": "sys1", "mask": np.zeros((8, 8), bool)})
    return pd.DataFrame(run_rows), {"masks": pd.DataFrame(gold_rows)}


def direct_counts(run: pd.DataFrame, gold: pd.DataFrame):
    """Pool all pixels by concatenating flattened masks, count with numpy, no helper shared."""
    predicted = dict(zip(run["item_id"], run["mask"]))
    pooled_prediction, pooled_gold, dice_max, dice_mean = [], [], [], []
    for item_id, rows in gold.groupby("item_id"):
        stack = np.stack(list(rows["mask"]))
        majority = stack.sum(axis=0) >= math.ceil(len(stack) / 2)
        mask = predicted.get(item_id, np.zeros_like(majority))
        pooled_prediction.append(mask.ravel())
        pooled_gold.append(majority.ravel())
        per_annotator = []
        for annotator_mask in stack:
            total = mask.sum() + annotator_mask.sum()
            per_annotator.append(1.0 if total == 0 else 2 * (mask & annotator_mask).sum() / total)
        dice_max.append(max(per_annotator))
        dice_mean.append(np.mean(per_annotator))
    p, g = np.concatenate(pooled_prediction), np.concatenate(pooled_gold)
    return {"magic_jaccard": (p & g).sum() / (p | g).sum(), "magic_dice": 2 * (p & g).sum() / (p.sum() + g.sum()),
            "magic_dice_mean_of_max": np.mean(dice_max), "magic_dice_mean_of_mean": np.mean(dice_mean)}


@pytest.mark.parametrize("seed", [31, 32])
def test_mask_metrics_match_direct_numpy_counts(seed):
    run, gold = generated_masks(seed)
    results = score_run("magic-masks-zip", MASK_METRICS, run, gold)
    expected = direct_counts(run, gold["masks"])
    for name in MASK_METRICS:
        assert abs(results[name].value - expected[name]) < 1e-9, name
    assert results["magic_dice"].per_item["IMG_ENC99999_00001"] == 1.0
    assert results["magic_dice"].per_item["IMG_ENC00004_00004"] == 0.0


def test_majority_vote_needs_half_the_annotators():
    votes = [np.array([[1, 1, 1, 0]], bool), np.array([[1, 1, 0, 0]], bool),
             np.array([[1, 0, 0, 0]], bool), np.array([[0, 0, 0, 1]], bool)]
    gold = {"masks": pd.DataFrame({"item_id": "IMG_A_1", "annotator": ["a", "b", "c", "d"], "mask": votes})}
    run = pd.DataFrame({"item_id": ["IMG_A_1"], "system": ["s"], "mask": [np.array([[1, 1, 0, 0]], bool)]})
    # Four annotators: a pixel is on from two votes, so the gold mask is [1, 1, 0, 0].
    assert score_run("magic-masks-zip", ["magic_jaccard"], run, gold)["magic_jaccard"].value == 1.0
    three = {"masks": gold["masks"].iloc[:3]}  # three annotators: two votes needed, gold [1, 1, 0, 0]
    assert score_run("magic-masks-zip", ["magic_dice"], run, three)["magic_dice"].value == 1.0


def test_size_mismatch_and_duplicate_masks_are_reported_not_zero():
    gold = {"masks": pd.DataFrame({"item_id": ["IMG_A_1"], "annotator": ["a"], "mask": [np.ones((4, 5), bool)]})}
    wrong_size = pd.DataFrame({"item_id": ["IMG_A_1"], "system": ["s"], "mask": [np.ones((5, 4), bool)]})
    result = score_run("magic-masks-zip", ["magic_dice"], wrong_size, gold)["magic_dice"]
    assert result.value is None and "IMG_A_1" in result.not_computed and "4x5" in result.not_computed
    twice = pd.concat([wrong_size, wrong_size])
    result = score_run("magic-masks-zip", ["magic_jaccard"], twice, gold)["magic_jaccard"]
    assert result.value is None and "2 masks" in result.not_computed


def long_form(answers: dict[str, dict[str, list[int]]]) -> pd.DataFrame:
    rows = [{"encounter_id": e, "qid": f"{family}-{k + 1:03d}", "family": family, "option": option}
            for e, families in answers.items() for family, options in families.items()
            for k, option in enumerate(options)]
    return pd.DataFrame(rows, columns=["encounter_id", "qid", "family", "option"])


def test_closed_vqa_set_overlap_matches_a_plain_loop():
    rng = random.Random(41)
    families = {"CQID010": 1, "CQID011": 6, "CQID012": 3, "CQID015": 1}
    gold, run = {}, {}
    for n in range(40):
        encounter = f"ENC{n:05d}"
        gold[encounter] = {f: sorted({rng.randint(0, 5) for _ in range(rng.randint(1, size))}) for f, size in families.items()}
        run[encounter] = {f: sorted({rng.randint(0, 5) for _ in range(rng.randint(1, size))}) for f, size in families.items()}
    del run["ENC00003"]["CQID011"]  # a family left unanswered
    del run["ENC00007"]  # an encounter left out
    result = score_run("magic-closed-vqa-json", ["magic_accuracy_all"], long_form(run),
                       {"closed_vqa": long_form(gold)})["magic_accuracy_all"]
    scores: dict[str, list[float]] = {f: [] for f in families}
    for encounter, answers in gold.items():
        for family, options in answers.items():
            predicted = set(run.get(encounter, {}).get(family, []))
            scores[family].append(len(set(options) & predicted) / max(len(options), len(predicted)))
    everything = [s for values in scores.values() for s in values]
    assert abs(result.value - sum(everything) / len(everything)) < 1e-9
    for family, values in scores.items():
        assert abs(result.breakdown[family] - sum(values) / len(values)) < 1e-9
    assert result.per_item["ENC00007/CQID010"] == 0.0


def test_closed_vqa_small_example():
    gold = long_form({"E1": {"CQID011": [1, 2, 3], "CQID010": [0]}})
    run = long_form({"E1": {"CQID011": [2, 3], "CQID010": [1]}})
    result = score_run("magic-closed-vqa-json", ["magic_accuracy_all"], run, {"closed_vqa": gold})["magic_accuracy_all"]
    assert result.breakdown == {"CQID010": 0.0, "CQID011": pytest.approx(2 / 3)}
    assert result.value == pytest.approx(1 / 3)

"""ImageCLEFmedical GANs: detecting training images (kappa, accuracy, F1) and attributing them.

Task 1 labels each generated image 1 when real images were used to train its generator, 0
otherwise; task 2 names the real training subset an image came from. Scores come from
scikit-learn over the gold images. Per-item values are 1 for a right answer, 0 for a wrong
one. A gold image the run leaves out counts as wrong for accuracy; kappa and F1 need a label
for every image and report why when one is missing.
"""
from __future__ import annotations

import warnings
from typing import Any, Mapping

import numpy as np
import pandas as pd

from include.metrics.result import MetricResult


def aligned_labels(run: pd.DataFrame, reference: pd.DataFrame, column: str) -> pd.DataFrame:
    """``gold`` and ``predicted`` per gold image id (``predicted`` is NaN when missing)."""
    gold = reference.assign(id=reference["id"].astype(str)).set_index("id")[column]
    predicted = run.assign(id=run["id"].astype(str)).drop_duplicates("id").set_index("id")[column]
    return pd.DataFrame({"gold": gold, "predicted": predicted.reindex(gold.index)})


def _label_pairs(run, gold, table: str, file: str, column: str) -> pd.DataFrame | MetricResult:
    """:func:`aligned_labels` of ``column`` in the run and the gold ``table``, or why there is nothing
    to score (the gold folder has no such table, or it is empty)."""
    if table not in gold:
        return MetricResult.missing(f"the gold folder has no {table} table ({file})")
    pairs = aligned_labels(run, gold[table], column)
    if pairs.empty:
        return MetricResult.missing(f"the gold {table} table is empty")
    return pairs


def _detection_pairs(run, gold) -> pd.DataFrame | MetricResult:
    return _label_pairs(run, gold, "labels", "labels.csv", "label")


def _complete_detection_pairs(run, gold) -> pd.DataFrame | MetricResult:
    """:func:`_detection_pairs`, refused unless the run labels every gold image (kappa and F1 need all)."""
    pairs = _detection_pairs(run, gold)
    if isinstance(pairs, MetricResult):
        return pairs
    missing = pairs.index[pairs["predicted"].isna()]
    if len(missing):
        return MetricResult.missing(f"the run has no label for {len(missing)} gold image(s), first {missing[0]!r}")
    return pairs


def _correctness(pairs: pd.DataFrame) -> pd.Series:
    right = pairs["predicted"].notna() & (pairs["predicted"] == pairs["gold"])
    return right.astype(float).rename("correct")


def confusion_cells(pairs: pd.DataFrame) -> pd.DataFrame:
    """Per image, one-hot confusion cell (gold 0/1 x predicted 0/1): the components of kappa and F1."""
    gold, predicted = pairs["gold"].astype(int), pairs["predicted"].astype(int)
    cells = {f"g{g}p{p}": ((gold == g) & (predicted == p)).astype(float) for g in (0, 1) for p in (0, 1)}
    return pd.DataFrame(cells, index=pairs.index)


def gans_kappa(run, gold, options: Mapping[str, Any]) -> MetricResult:
    """Cohen's kappa between predicted and gold labels."""
    pairs = _complete_detection_pairs(run, gold)
    if isinstance(pairs, MetricResult):
        return pairs
    from sklearn.metrics import cohen_kappa_score

    with warnings.catch_warnings():  # a one-label case is reported below, not as a warning
        warnings.simplefilter("ignore")
        kappa = float(cohen_kappa_score(pairs["gold"].astype(int), pairs["predicted"].astype(int)))
    if not np.isfinite(kappa):
        return MetricResult.missing("kappa is undefined when gold and run hold one and the same label")
    return MetricResult(value=kappa, per_item=_correctness(pairs), components=confusion_cells(pairs))


def gans_accuracy(run, gold, options: Mapping[str, Any]) -> MetricResult:
    """Share of gold images labelled right."""
    pairs = _detection_pairs(run, gold)
    if isinstance(pairs, MetricResult):
        return pairs
    correct = _correctness(pairs)
    return MetricResult(value=float(np.mean(correct.to_numpy())), per_item=correct)


def gans_f1(run, gold, options: Mapping[str, Any]) -> MetricResult:
    """Binary F1 of label 1."""
    pairs = _complete_detection_pairs(run, gold)
    if isinstance(pairs, MetricResult):
        return pairs
    gold_labels, predicted = pairs["gold"].astype(int), pairs["predicted"].astype(int)
    if not ((gold_labels == 1) | (predicted == 1)).any():
        return MetricResult.missing("F1 of label 1 is undefined: neither gold nor run has label 1")
    from sklearn.metrics import f1_score

    return MetricResult(value=float(f1_score(gold_labels, predicted, pos_label=1, average="binary")),
                        per_item=_correctness(pairs), components=confusion_cells(pairs))


def attribution_accuracy(run, gold, options: Mapping[str, Any]) -> MetricResult:
    """Share of synthetic images attributed to their real training subset."""
    pairs = _label_pairs(run, gold, "subsets", "subsets.csv", "subset")
    if isinstance(pairs, MetricResult):
        return pairs
    pairs["gold"] = pairs["gold"].astype(str).str.strip()
    pairs["predicted"] = pairs["predicted"].where(pairs["predicted"].isna(), pairs["predicted"].astype(str).str.strip())
    correct = _correctness(pairs)
    return MetricResult(value=float(np.mean(correct.to_numpy())), per_item=correct)

"""MEDIQA-MAGIC: wound segmentation (Jaccard, Dice) and closed visual question answering.

Segmentation: an image's gold mask is the pixel-wise majority vote of its annotators (a pixel
is on when at least ceil(n/2) of the n annotators marked it). Jaccard and Dice are pooled over
all pixels of all images; the per-image variants compare the prediction with each annotator
and keep the best (mean-of-max) or the average (mean-of-mean), then average over images. A
gold image without a predicted mask counts as an empty prediction. Where both masks are empty
(no pixel on either side) the score is ``magic_empty_mask_score`` (default 1).

Closed VQA: per encounter and question family (CQID011-001 ... -006 form family CQID011), the
score is |gold & predicted| / max(|gold|, |predicted|) over the sets of chosen options.
"""
from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np
import pandas as pd

from include.metrics.result import MetricResult


# --- segmentation ---------------------------------------------------------------------------

def majority_mask(annotator_masks: list[np.ndarray]) -> np.ndarray:
    """Pixels marked by at least ceil(n/2) of the n annotators."""
    votes = np.sum([np.asarray(m, dtype=bool) for m in annotator_masks], axis=0, dtype=np.int32)
    return votes >= math.ceil(len(annotator_masks) / 2)


def _overlap_ratio(numerator: int, denominator: int, empty_score: float) -> float:
    return empty_score if denominator == 0 else numerator / denominator


def dice(predicted: np.ndarray, gold: np.ndarray, empty_score: float = 1.0) -> float:
    return _overlap_ratio(2 * int(np.count_nonzero(predicted & gold)),
                          int(np.count_nonzero(predicted)) + int(np.count_nonzero(gold)), empty_score)


def jaccard(predicted: np.ndarray, gold: np.ndarray, empty_score: float = 1.0) -> float:
    return _overlap_ratio(int(np.count_nonzero(predicted & gold)), int(np.count_nonzero(predicted | gold)), empty_score)


def mask_pairs(run: pd.DataFrame, gold: Mapping[str, pd.DataFrame]) -> list[tuple[str, np.ndarray, list[np.ndarray]]] | MetricResult:
    """(item id, predicted mask, annotator masks) per gold image, or why they cannot be paired."""
    if "masks" not in gold:
        return MetricResult.missing("the gold folder has no annotator masks (masks/)")
    counts = run["item_id"].astype(str).value_counts()
    if (counts > 1).any():
        item = counts.index[counts > 1][0]
        return MetricResult.missing(f"the run has {counts[item]} masks for {item!r}; the metric needs one per image")
    predicted = dict(zip(run["item_id"].astype(str), run["mask"]))
    pairs = []
    for item_id, rows in gold["masks"].assign(item_id=gold["masks"]["item_id"].astype(str)).groupby("item_id", sort=True):
        annotator_masks = [np.asarray(m, dtype=bool) for m in rows.sort_values("annotator")["mask"]]
        shape = annotator_masks[0].shape
        if any(m.shape != shape for m in annotator_masks):
            return MetricResult.missing(f"the gold masks of {item_id!r} differ in size")
        mask = np.asarray(predicted.get(item_id, np.zeros(shape, dtype=bool)), dtype=bool)
        if mask.shape != shape:
            return MetricResult.missing(f"the predicted mask of {item_id!r} is {mask.shape[1]}x{mask.shape[0]} "
                                        f"pixels, the gold mask {shape[1]}x{shape[0]}")
        pairs.append((item_id, mask, annotator_masks))
    if not pairs:
        return MetricResult.missing("the gold folder has no annotator masks")
    return pairs


def _pooled(run, gold, options, kind: str) -> MetricResult:
    pairs = mask_pairs(run, gold)
    if isinstance(pairs, MetricResult):
        return pairs
    empty_score = float(options["magic_empty_mask_score"])
    overlap = np.zeros(len(pairs), dtype=np.int64)
    predicted_on = np.zeros(len(pairs), dtype=np.int64)
    gold_on = np.zeros(len(pairs), dtype=np.int64)
    for i, (_, mask, annotator_masks) in enumerate(pairs):
        reference = majority_mask(annotator_masks)
        overlap[i] = np.count_nonzero(mask & reference)
        predicted_on[i], gold_on[i] = np.count_nonzero(mask), np.count_nonzero(reference)
    union = predicted_on + gold_on - overlap
    if kind == "jaccard":
        numerators, denominators = overlap, union
    else:
        numerators, denominators = 2 * overlap, predicted_on + gold_on
    per_image = [_overlap_ratio(int(n), int(d), empty_score) for n, d in zip(numerators, denominators)]
    value = _overlap_ratio(int(numerators.sum()), int(denominators.sum()), empty_score)
    index = [p[0] for p in pairs]
    components = pd.DataFrame({"numerator": numerators, "denominator": denominators}, index=index, dtype=float)
    return MetricResult(value=value, per_item=pd.Series(per_image, index=index, name=kind, dtype=float), components=components)


def magic_jaccard(run, gold, options: Mapping[str, Any]) -> MetricResult:
    """Jaccard over all pixels of all images, against the majority-vote masks."""
    return _pooled(run, gold, options, "jaccard")


def magic_dice(run, gold, options: Mapping[str, Any]) -> MetricResult:
    """Dice over all pixels of all images, against the majority-vote masks."""
    return _pooled(run, gold, options, "dice")


def _per_annotator_dice(run, gold, options, combine) -> MetricResult:
    pairs = mask_pairs(run, gold)
    if isinstance(pairs, MetricResult):
        return pairs
    empty_score = float(options["magic_empty_mask_score"])
    per_image = pd.Series([combine([dice(mask, a, empty_score) for a in annotator_masks])
                           for _, mask, annotator_masks in pairs],
                          index=[p[0] for p in pairs], name="dice", dtype=float)
    return MetricResult(value=float(np.mean(per_image.to_numpy())), per_item=per_image)


def magic_dice_mean_of_max(run, gold, options: Mapping[str, Any]) -> MetricResult:
    """Per image the best Dice against any one annotator, averaged over images."""
    return _per_annotator_dice(run, gold, options, max)


def magic_dice_mean_of_mean(run, gold, options: Mapping[str, Any]) -> MetricResult:
    """Per image the mean Dice over its annotators, averaged over images."""
    return _per_annotator_dice(run, gold, options, lambda values: float(np.mean(values)))


# --- closed VQA -----------------------------------------------------------------------------

def option_sets(table: pd.DataFrame) -> pd.Series:
    """The set of chosen options per (encounter, family)."""
    keys = table.assign(encounter_id=table["encounter_id"].astype(str), family=table["family"].astype(str))
    return keys.groupby(["encounter_id", "family"], sort=True)["option"].agg(lambda o: frozenset(int(x) for x in o))


def set_overlap(gold_options: frozenset, predicted_options: frozenset) -> float:
    """|gold & predicted| / max(|gold|, |predicted|); two empty sets agree fully."""
    largest = max(len(gold_options), len(predicted_options))
    return 1.0 if largest == 0 else len(gold_options & predicted_options) / largest


def magic_accuracy_all(run, gold, options: Mapping[str, Any]) -> MetricResult:
    """Mean set overlap over every (encounter, family) of the gold; breakdown per family."""
    if "closed_vqa" not in gold:
        return MetricResult.missing("the gold folder has no closed_vqa table (closed_vqa.json)")
    gold_sets = option_sets(gold["closed_vqa"])
    if gold_sets.empty:
        return MetricResult.missing("the gold closed_vqa table is empty")
    predicted_sets = option_sets(run) if len(run) else pd.Series(dtype=object)
    scores = pd.Series([set_overlap(g, predicted_sets.get(key, frozenset())) for key, g in gold_sets.items()],
                       index=gold_sets.index, dtype=float)
    per_family = scores.groupby(level="family").mean()
    average = options["closed_vqa_average"]
    if average not in ("items", "families"):
        raise ValueError(f"closed_vqa_average must be 'items' or 'families', not {average!r}")
    value = scores.mean() if average == "items" else per_family.mean()
    per_item = pd.Series(scores.to_numpy(), index=[f"{e}/{f}" for e, f in scores.index], name="overlap")
    return MetricResult(value=float(value), per_item=per_item,
                        breakdown={str(f): float(v) for f, v in per_family.items()})

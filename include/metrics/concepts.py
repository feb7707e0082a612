"""Concept detection (ImageCLEFmedical Caption): mean per-image F1 over predicted UMLS CUIs.

The organizers' rules: CUIs are compared upper-cased; per image, binary F1 over the union of
gold and predicted CUIs, so an empty prediction scores 0; images whose gold list is empty are
left out of the mean. The secondary score repeats this after keeping only the 15 manually
validated CUIs on both sides.

Their evaluator calls scikit-learn's ``f1_score`` once per image; here the same F1 is
2|G & P| / (|G| + |P|), counted for all images at once from (image, CUI) pairs, which is
over 100x faster on a 17,000-image run (benchmarks/metrics.py) and equal to 1e-12.
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping

import numpy as np
import pandas as pd

from include.metrics.result import MetricResult


def concept_f1(run: pd.DataFrame, gold: Mapping[str, pd.DataFrame], options: Mapping[str, Any]) -> MetricResult:
    """Mean per-image F1 against ``gold["concepts"]``."""
    if "concepts" not in gold:
        return MetricResult.missing("the gold folder has no concepts table (concepts.csv)")
    return mean_image_f1(run, gold["concepts"], case_sensitive=options.get("concept_case_sensitive", False))


def concept_f1_manual(run: pd.DataFrame, gold: Mapping[str, pd.DataFrame],
                      options: Mapping[str, Any]) -> MetricResult:
    """Mean per-image F1 against ``gold["concepts_manual"]``, both sides kept to the manual CUIs."""
    if "concepts_manual" not in gold:
        return MetricResult.missing("the gold folder has no concepts_manual table (concepts_manual.csv)")
    from include.metrics.registry import MANUAL_CONCEPT_CUIS

    return mean_image_f1(run, gold["concepts_manual"],
                         case_sensitive=options.get("concept_case_sensitive", False),
                         keep_cuis=options.get("manual_concept_cuis", MANUAL_CONCEPT_CUIS))


def mean_image_f1(run: pd.DataFrame, gold: pd.DataFrame, *, case_sensitive: bool = False,
                  keep_cuis: Iterable[str] | None = None) -> MetricResult:
    """Per-image binary F1 of ``run`` against ``gold`` (both ``ID``, ``CUIs`` list) and its mean."""
    gold_pairs = concept_pairs(gold, case_sensitive, keep_cuis)
    predicted_pairs = concept_pairs(run, case_sensitive, keep_cuis)
    gold_counts = gold_pairs.groupby("ID", sort=False).size()
    if gold_counts.empty:
        return MetricResult.missing("no gold image has a concept to detect")
    predicted_counts = predicted_pairs.groupby("ID", sort=False).size().reindex(gold_counts.index, fill_value=0)
    hits = (gold_pairs.merge(predicted_pairs, on=["ID", "CUI"], how="inner")
            .groupby("ID", sort=False).size().reindex(gold_counts.index, fill_value=0))
    per_image = pd.Series(2.0 * hits.to_numpy() / (gold_counts.to_numpy() + predicted_counts.to_numpy()),
                          index=gold_counts.index.astype(str), name="f1")
    per_image.index.name = "ID"
    return MetricResult(value=float(np.mean(per_image.to_numpy())), per_item=per_image)


def concept_pairs(table: pd.DataFrame, case_sensitive: bool,
                  keep_cuis: Iterable[str] | None = None) -> pd.DataFrame:
    """Distinct (ID, CUI) pairs of a concepts table, with empty CUIs dropped."""
    exploded = table[["ID", "CUIs"]].explode("CUIs")
    present = exploded["CUIs"].notna().to_numpy()
    # Normalise each distinct CUI once (a test set repeats a few thousand CUIs 85,000 times).
    codes, distinct = pd.factorize(exploded["CUIs"][present].astype(str))
    normalised = pd.Index(distinct, dtype=object).str.strip()
    if not case_sensitive:
        normalised = normalised.str.upper()
    keep_distinct = normalised != ""
    if keep_cuis is not None:
        keep_distinct &= normalised.isin({c if case_sensitive else c.upper() for c in keep_cuis})
    keep = keep_distinct[codes]
    return pd.DataFrame({"ID": exploded["ID"].to_numpy()[present][keep].astype(str),
                         "CUI": normalised.to_numpy()[codes][keep]}).drop_duplicates()

"""Multimodal reasoning (MCQ in 13 languages): accuracy overall and per language.

A run covers the whole test set or exactly one language's part of it, so the questions scored
are the gold questions of the languages the run answers (taken from the gold, not from the
run). Within those, a question the run leaves out counts as wrong. Answer keys are compared
upper-cased without surrounding spaces.
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import pandas as pd

from include.metrics.result import MetricResult


def mmr_accuracy(run: pd.DataFrame, gold: Mapping[str, pd.DataFrame], options: Mapping[str, Any]) -> MetricResult:
    """Share of questions answered right; ``breakdown`` holds the accuracy of each language."""
    if "answers" not in gold:
        return MetricResult.missing("the gold folder has no answers table (answers.json)")
    answers = gold["answers"].assign(id=gold["answers"]["id"].astype(str)).set_index("id")
    predicted = run.assign(id=run["id"].astype(str)).drop_duplicates("id").set_index("id")["answer_key"]
    languages = set(answers["language"].reindex(predicted.index).dropna())
    if not languages:
        return MetricResult.missing("the run answers no question of the gold answers table")
    scored = answers[answers["language"].isin(languages)]
    predicted = predicted.reindex(scored.index)
    right = predicted.notna() & (_normalise(predicted) == _normalise(scored["answer_key"]))
    per_question = right.astype(float).rename("correct")
    per_language = per_question.groupby(scored["language"]).mean()
    return MetricResult(value=float(np.mean(per_question.to_numpy())), per_item=per_question,
                        breakdown={str(lang): float(v) for lang, v in per_language.items()})


def _normalise(keys: pd.Series) -> pd.Series:
    return keys.astype(str).str.strip().str.upper()

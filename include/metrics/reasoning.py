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
    """Share of all test questions answered right (a question the run does not answer is wrong, so a
    run of one language cannot tie with a run of all of them); ``breakdown`` holds the accuracy of
    each language the run answers, as the 2025 task ranked per language (docs/metrics.md)."""
    if "answers" not in gold:
        return MetricResult.missing("the gold folder has no answers table (answers.json)")
    answers = gold["answers"].assign(id=gold["answers"]["id"].astype(str)).set_index("id")
    predicted = run.assign(id=run["id"].astype(str)).drop_duplicates("id").set_index("id")["answer_key"]
    languages = set(answers["language"].reindex(predicted.index).dropna())
    if not languages:
        return MetricResult.missing("the run answers no question of the gold answers table")
    predicted = predicted.reindex(answers.index)
    right = predicted.notna() & (_normalise(predicted) == _normalise(answers["answer_key"]))
    per_question = right.astype(float).rename("correct")
    answered = answers["language"].isin(languages)
    per_language = per_question[answered].groupby(answers["language"][answered]).mean()
    return MetricResult(value=float(np.mean(per_question.to_numpy())), per_item=per_question,
                        breakdown={str(lang): float(v) for lang, v in per_language.items()})


def _normalise(keys: pd.Series) -> pd.Series:
    return keys.astype(str).str.strip().str.upper()

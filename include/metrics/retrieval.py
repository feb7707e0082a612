"""Argument image retrieval (Touché with ImageCLEF): nDCG@1, @3, @5 with graded relevance.

An image's relevance to an argument is graded 0/1/2 from two aspects judged by two annotators,
combined with the organizers' table (2,2)->2 (1,2)->2 (0,2)->1 (0,1)->1 (1,1)->1 (0,0)->0:
aspects first (per annotator), then annotators. The table is symmetric and amounts to "2 when
every value is at least 1 and one is 2, else 1 when any is positive, else 0", which is how it
is applied to groups of any size (a single judgement keeps its value).

nDCG@k follows trec_eval (linear gain, discount log2(rank + 1)); the ideal ranking is the best
k judged images of the argument. Unjudged images gain 0. The mean runs over every argument of
the gold ``arguments`` table, so a missing argument scores 0; option ``ndcg_average_over:
judged_arguments`` averages over the arguments with at least one judgement instead, as
ir-measures and ``trec_eval -c`` do.
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import pandas as pd

from include.metrics.result import MetricResult


def combine_grades(values: pd.Series, keys: list[str]) -> pd.Series:
    """Apply the combination table to each group of ``values`` (grades 0/1/2) under ``keys``."""
    grouped = values.groupby([values.index.get_level_values(k) for k in keys], sort=False)
    lowest, highest = grouped.min(), grouped.max()
    combined = np.where((highest >= 2) & (lowest >= 1), 2, np.where(highest >= 1, 1, 0))
    result = pd.Series(combined, index=lowest.index, name="relevance")
    result.index.names = keys
    return result


def graded_relevance(judgments: pd.DataFrame) -> pd.Series:
    """Relevance 0/1/2 per (argument_id, image_id) from the raw aspect judgements."""
    table = judgments.assign(argument_id=judgments["argument_id"].astype(str),
                             image_id=judgments["image_id"].astype(str),
                             annotator=judgments["annotator"].astype(str))
    values = table.set_index(["argument_id", "image_id", "annotator", "aspect"])["value"].astype(int)
    per_annotator = combine_grades(values, ["argument_id", "image_id", "annotator"])
    return combine_grades(per_annotator, ["argument_id", "image_id"])


def gains(relevance: np.ndarray, gain: str) -> np.ndarray:
    if gain == "linear":
        return relevance.astype(float)
    if gain == "exponential":
        return np.power(2.0, relevance) - 1.0
    raise ValueError(f"ndcg_gain must be 'linear' or 'exponential', not {gain!r}")


def ideal_dcg(relevance: pd.Series, depth: int, gain: str) -> pd.Series:
    """Per argument, the DCG of its best ``depth`` judged images."""
    frame = relevance.reset_index()
    frame["gain"] = gains(frame["relevance"].to_numpy(), gain)
    frame = frame.sort_values(["argument_id", "gain"], ascending=[True, False], kind="stable")
    frame["position"] = frame.groupby("argument_id", sort=False).cumcount() + 1
    top = frame[frame["position"] <= depth]
    discounted = top["gain"] / np.log2(top["position"] + 1.0)
    return discounted.groupby(top["argument_id"]).sum()


def ranked_dcg(run: pd.DataFrame, relevance: pd.Series, depth: int, gain: str) -> pd.Series:
    """Per argument of the run, the DCG of its first ``depth`` images in rank order."""
    ranked = run.assign(argument_id=run["argument_id"].astype(str), image_id=run["image_id"].astype(str))
    ranked = ranked.drop_duplicates(["argument_id", "image_id"]).sort_values(["argument_id", "rank"], kind="stable")
    ranked["position"] = ranked.groupby("argument_id", sort=False).cumcount() + 1
    top = ranked[ranked["position"] <= depth]
    keys = pd.MultiIndex.from_arrays([top["argument_id"], top["image_id"]])
    grades = relevance.reindex(keys).fillna(0).to_numpy()
    discounted = pd.Series(gains(grades, gain) / np.log2(top["position"].to_numpy() + 1.0), index=top.index)
    return discounted.groupby(top["argument_id"]).sum()


def ndcg_at(run: pd.DataFrame, gold: Mapping[str, pd.DataFrame], options: Mapping[str, Any], depth: int) -> MetricResult:
    """Mean nDCG@depth; per argument, its own nDCG@depth."""
    if "judgments" not in gold:
        return MetricResult.missing("the gold folder has no judgments table (judgments.csv)")
    gain = options.get("ndcg_gain", "linear")
    relevance = graded_relevance(gold["judgments"])
    ideal = ideal_dcg(relevance, depth, gain)
    achieved = ranked_dcg(run, relevance, depth, gain)
    arguments = _arguments_to_average(gold, relevance, options.get("ndcg_average_over", "all_arguments"))
    if isinstance(arguments, str):
        return MetricResult.missing(arguments)
    ideal, achieved = ideal.reindex(arguments).fillna(0.0), achieved.reindex(arguments).fillna(0.0)
    # An argument without any relevant image has no ideal gain: it scores 0, as in trec_eval.
    per_argument = pd.Series(np.divide(achieved.to_numpy(), ideal.to_numpy(),
                                       out=np.zeros(len(arguments)), where=ideal.to_numpy() > 0),
                             index=arguments, name=f"ndcg@{depth}")
    return MetricResult(value=float(np.mean(per_argument.to_numpy())), per_item=per_argument)


def _arguments_to_average(gold, relevance: pd.Series, average_over: str) -> pd.Index | str:
    """The arguments the mean runs over, or why there are none."""
    if average_over == "all_arguments":
        if "arguments" not in gold:
            return "the gold folder has no arguments table (arguments.csv)"
        arguments = pd.unique(gold["arguments"]["argument_id"].astype(str))
    elif average_over == "judged_arguments":
        arguments = pd.unique(relevance.index.get_level_values("argument_id"))
    else:
        raise ValueError(f"ndcg_average_over must be 'all_arguments' or 'judged_arguments', not {average_over!r}")
    if len(arguments) == 0:
        return "there is no argument to average over"
    return pd.Index(arguments, name="argument_id")


def ndcg_at_1(run, gold, options: Mapping[str, Any]) -> MetricResult:
    return ndcg_at(run, gold, options, 1)


def ndcg_at_3(run, gold, options: Mapping[str, Any]) -> MetricResult:
    return ndcg_at(run, gold, options, 3)


def ndcg_at_5(run, gold, options: Mapping[str, Any]) -> MetricResult:
    return ndcg_at(run, gold, options, 5)

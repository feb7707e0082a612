"""Argument image retrieval (Touché with ImageCLEF): nDCG@1, @3, @5 with graded relevance.

An image's relevance to an argument is graded 0/1/2 from two aspects judged by two annotators,
combined with the organizers' table (2,2)->2 (1,2)->2 (0,2)->1 (0,1)->1 (1,1)->1 (0,0)->0:
aspects first (per annotator), then annotators. The table is symmetric and amounts to "2 when
every value is at least 1 and one is 2, else 1 when any is positive, else 0", which is how it
is applied to groups of any size (a single judgement keeps its value).

As in the organizers' 2025 evaluation (touche-code, clef25/.../evaluation/eval_file.py), by default:
- when the judgments hold two or more annotators, a pair (argument, image) not judged by all of
  them is left out (option ``ndcg_annotators: all_pairs`` combines whatever judgements a pair has);
- the mean runs over the test arguments minus the gold's exclusion list
  (``excluded_arguments.txt``, optional) and skips the arguments nobody judged (option
  ``ndcg_average_over: all_arguments`` keeps them, scoring 0). A test argument the run leaves
  out scores 0 (validation refuses such runs anyway).

nDCG@k follows trec_eval (linear gain, discount log2(rank + 1)); the ideal ranking is the best
k judged images of the argument; an argument whose judged images are all irrelevant scores 0.
Unjudged images gain 0 (the organizers' script stops with "Missing relevance" there). A run that
repeats an image for one argument (validation refuses it) is scored with the image at its best rank.

Hand-written with numpy on integer codes rather than calling ir-measures: the grades need the
combination table first, the mean needs the arguments nobody ranked, and scoring runs against
one gold is faster this way (benchmarks/metrics.py); the tests check it against ir-measures.
"""
from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np
import pandas as pd

from include.metrics.result import MetricResult


@dataclass(frozen=True)
class GradedQrels:
    """Combined relevance per judged (argument, image), keyed by integer codes for numpy.

    ``pair_keys`` is sorted and holds ``argument code * len(images) + image code``, where a code
    is the position of the id in ``arguments`` or ``images``; ``grades`` are 0/1/2.
    """

    arguments: pd.Index
    images: pd.Index
    pair_keys: np.ndarray
    grades: np.ndarray
    argument_code: dict[str, int] = field(init=False, repr=False)
    image_code: dict[str, int] = field(init=False, repr=False)
    ideal_dcgs: dict[tuple[int, str], np.ndarray] = field(init=False, repr=False, default_factory=dict)

    def __post_init__(self):
        # Plain dicts: a run holds a few hundred ids, where a dict lookup beats pandas' indexers.
        object.__setattr__(self, "argument_code", {a: i for i, a in enumerate(self.arguments)})
        object.__setattr__(self, "image_code", {a: i for i, a in enumerate(self.images)})

    def codes_of_arguments(self, argument_ids) -> np.ndarray:
        return np.fromiter((self.argument_code.get(a, -1) for a in argument_ids), dtype=np.int64, count=len(argument_ids))

    def codes_of_images(self, image_ids) -> np.ndarray:
        return np.fromiter((self.image_code.get(i, -1) for i in image_ids), dtype=np.int64, count=len(image_ids))

    def argument_codes(self) -> np.ndarray:
        return self.pair_keys // len(self.images)

    def judged_arguments(self) -> pd.Index:
        """The arguments with at least one judged image left after combining."""
        return self.arguments[np.unique(self.argument_codes())]

    def lookup(self, argument_codes: np.ndarray, image_codes: np.ndarray) -> np.ndarray:
        """Grades of (argument, image) code pairs; unjudged pairs (or unknown ids, code -1) get 0."""
        grades = np.zeros(len(argument_codes), dtype=np.int64)
        if not len(self.pair_keys):
            return grades
        known = (argument_codes >= 0) & (image_codes >= 0)
        keys = argument_codes[known] * len(self.images) + image_codes[known]
        slots = np.minimum(np.searchsorted(self.pair_keys, keys), len(self.pair_keys) - 1)
        found = self.pair_keys[slots] == keys
        grades[np.flatnonzero(known)[found]] = self.grades[slots[found]]
        return grades


def combine_grades(group_keys: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Apply the combination table within each group: (sorted distinct keys, combined grade)."""
    keys, inverse = np.unique(group_keys, return_inverse=True)
    lowest = np.full(len(keys), np.iinfo(np.int64).max, dtype=np.int64)
    highest = np.full(len(keys), -1, dtype=np.int64)
    np.minimum.at(lowest, inverse, values)
    np.maximum.at(highest, inverse, values)
    return keys, np.where((highest >= 2) & (lowest >= 1), 2, np.where(highest >= 1, 1, 0))


ANNOTATOR_RULES = ("complete_pairs", "all_pairs")

# Gold tables are read-only once loaded (docs/format-contract.md), so the combined grades of a
# judgments table are kept while that very table is alive: scoring many runs against one gold
# (re-scoring, the benchmark) then combines once instead of once per run and metric.
_QRELS_CACHE: dict[tuple[int, str], tuple[weakref.ref, GradedQrels]] = {}
_QRELS_CACHE_SIZE = 8


def graded_qrels(judgments: pd.DataFrame, annotators: str = "complete_pairs") -> GradedQrels:
    """The combined grades of a judgments table (computed once per live table and rule)."""
    cached = _QRELS_CACHE.get((id(judgments), annotators))
    if cached is not None and cached[0]() is judgments:
        return cached[1]
    qrels = combine_judgments(judgments, annotators)
    if len(_QRELS_CACHE) >= _QRELS_CACHE_SIZE:
        _QRELS_CACHE.pop(next(iter(_QRELS_CACHE)))
    _QRELS_CACHE[(id(judgments), annotators)] = (weakref.ref(judgments), qrels)
    return qrels


def combine_judgments(judgments: pd.DataFrame, annotators: str = "complete_pairs") -> GradedQrels:
    """Combine the raw aspect judgements: aspects per annotator first, then annotators.

    ``complete_pairs``: with two or more annotators in the table, a pair some annotator did not
    judge is left out, as the organizers' script does ("Missing scores for pair"); ``all_pairs``
    combines the judgements a pair has.
    """
    if annotators not in ANNOTATOR_RULES:
        raise ValueError(f"ndcg_annotators must be one of {', '.join(ANNOTATOR_RULES)}, not {annotators!r}")
    argument_codes, arguments = pd.factorize(judgments["argument_id"].astype(str))
    image_codes, images = pd.factorize(judgments["image_id"].astype(str))
    annotator_codes, annotator_names = pd.factorize(judgments["annotator"].astype(str))
    pair_keys = argument_codes.astype(np.int64) * len(images) + image_codes
    per_annotator, annotator_grades = combine_grades(pair_keys * len(annotator_names) + annotator_codes,
                                                     judgments["value"].to_numpy(dtype=np.int64))
    pair_of = per_annotator // max(len(annotator_names), 1)
    if annotators == "complete_pairs" and len(annotator_names) > 1:
        judged_by = np.bincount(pair_of)  # per_annotator keys are distinct: one count per annotator
        complete = judged_by[pair_of] == len(annotator_names)
        pair_of, annotator_grades = pair_of[complete], annotator_grades[complete]
    pairs, grades = combine_grades(pair_of, annotator_grades)
    return GradedQrels(pd.Index(arguments), pd.Index(images), pairs, grades)


def graded_relevance(judgments: pd.DataFrame, annotators: str = "complete_pairs") -> pd.Series:
    """Relevance 0/1/2 per (argument_id, image_id), as a Series (for reports and tests)."""
    qrels = graded_qrels(judgments, annotators)
    index = pd.MultiIndex.from_arrays([qrels.arguments[qrels.argument_codes()],
                                       qrels.images[qrels.pair_keys % len(qrels.images)]],
                                      names=["argument_id", "image_id"])
    return pd.Series(qrels.grades, index=index, name="relevance")


def gains(relevance: np.ndarray, gain: str) -> np.ndarray:
    if gain == "linear":
        return relevance.astype(float)
    if gain == "exponential":
        return np.power(2.0, relevance) - 1.0
    raise ValueError(f"ndcg_gain must be 'linear' or 'exponential', not {gain!r}")


def positions_within_groups(sorted_groups: np.ndarray) -> np.ndarray:
    """1, 2, 3 ... restarting wherever the (sorted) group code changes."""
    if len(sorted_groups) == 0:
        return np.zeros(0, dtype=np.int64)
    starts = np.flatnonzero(np.r_[True, sorted_groups[1:] != sorted_groups[:-1]])
    lengths = np.diff(np.r_[starts, len(sorted_groups)])
    return np.arange(len(sorted_groups)) - np.repeat(starts, lengths) + 1


def discounted_sums(groups: np.ndarray, gain_values: np.ndarray, positions: np.ndarray, depth: int,
                    group_count: int) -> np.ndarray:
    """Per group, the sum of gain / log2(position + 1) over positions up to ``depth``."""
    top = positions <= depth
    return np.bincount(groups[top], weights=gain_values[top] / np.log2(positions[top] + 1.0), minlength=group_count)


def ideal_dcg(qrels: GradedQrels, depth: int, gain: str) -> np.ndarray:
    """Per argument code, the DCG of its best ``depth`` judged images (kept with the qrels)."""
    if (depth, gain) not in qrels.ideal_dcgs:
        arguments, gain_values = qrels.argument_codes(), gains(qrels.grades, gain)
        order = np.lexsort((-gain_values, arguments))
        qrels.ideal_dcgs[(depth, gain)] = discounted_sums(
            arguments[order], gain_values[order], positions_within_groups(arguments[order]), depth, len(qrels.arguments))
    return qrels.ideal_dcgs[(depth, gain)]


def ranked_dcg(run: pd.DataFrame, qrels: GradedQrels, depth: int, gain: str) -> np.ndarray:
    """Per argument code, the DCG of the run's first ``depth`` images in rank order."""
    by_rank = np.argsort(run["rank"].to_numpy(), kind="stable")
    ranks = run["rank"].to_numpy()[by_rank]
    argument_ids = run["argument_id"].astype(str).to_numpy()[by_rank]
    image_ids = run["image_id"].astype(str).to_numpy()[by_rank]
    first = first_occurrences(list(zip(argument_ids, image_ids)))
    argument_codes = qrels.codes_of_arguments(argument_ids[first])
    image_codes = qrels.codes_of_images(image_ids[first])
    judged = argument_codes >= 0  # an argument nobody judged has no ideal gain: it scores 0 anyway
    argument_codes, image_codes = argument_codes[judged], image_codes[judged]
    order = np.lexsort((ranks[first][judged], argument_codes))
    argument_codes, image_codes = argument_codes[order], image_codes[order]
    gain_values = gains(qrels.lookup(argument_codes, image_codes), gain)
    return discounted_sums(argument_codes, gain_values, positions_within_groups(argument_codes),
                           depth, len(qrels.arguments))


def first_occurrences(keys: list) -> np.ndarray:
    """True where a key appears for the first time (a repeated image keeps its best rank)."""
    seen: set = set()
    flags = np.zeros(len(keys), dtype=bool)
    for position, key in enumerate(keys):
        if key not in seen:
            seen.add(key)
            flags[position] = True
    return flags


def ndcg_at(run: pd.DataFrame, gold: Mapping[str, pd.DataFrame], options: Mapping[str, Any], depth: int) -> MetricResult:
    """Mean nDCG@depth; per argument, its own nDCG@depth."""
    if "judgments" not in gold:
        return MetricResult.missing("the gold folder has no judgments table (judgments.csv)")
    gain = options["ndcg_gain"]
    qrels = graded_qrels(gold["judgments"], options["ndcg_annotators"])
    arguments = _arguments_to_average(run, gold, qrels, options["ndcg_average_over"])
    if isinstance(arguments, str):
        return MetricResult.missing(arguments)
    ideal, achieved = ideal_dcg(qrels, depth, gain), ranked_dcg(run, qrels, depth, gain)
    codes = qrels.codes_of_arguments(arguments)
    ideal_of, achieved_of = np.where(codes >= 0, ideal[codes], 0.0), np.where(codes >= 0, achieved[codes], 0.0)
    # An argument without any relevant image has no ideal gain: it scores 0, as in trec_eval.
    per_argument = pd.Series(np.divide(achieved_of, ideal_of, out=np.zeros(len(arguments)), where=ideal_of > 0),
                             index=arguments, name=f"ndcg@{depth}")
    return MetricResult(value=float(np.mean(per_argument.to_numpy())), per_item=per_argument)


def _arguments_to_average(run: pd.DataFrame, gold, qrels: GradedQrels, average_over: str) -> pd.Index | str:
    """The arguments the mean runs over, or why there are none: the test arguments (those of the
    run when the gold has no arguments table) minus the exclusion list; ``judged_arguments`` also
    leaves out those nobody judged."""
    if average_over not in ("judged_arguments", "all_arguments"):
        raise ValueError(f"ndcg_average_over must be 'judged_arguments' or 'all_arguments', not {average_over!r}")
    source = gold["arguments"] if "arguments" in gold else run
    arguments = pd.Index(pd.unique(source["argument_id"].astype(str)), name="argument_id")
    excluded = gold.get("excluded_arguments")
    if excluded is not None and len(excluded):
        arguments = arguments[~arguments.isin(excluded["argument_id"].astype(str))]
    if average_over == "judged_arguments":
        arguments = arguments[arguments.isin(qrels.judged_arguments())]
    if len(arguments) == 0:
        return "there is no argument to average over (every test argument is excluded or unjudged)"
    return arguments


def ndcg_at_1(run, gold, options: Mapping[str, Any]) -> MetricResult:
    return ndcg_at(run, gold, options, 1)


def ndcg_at_3(run, gold, options: Mapping[str, Any]) -> MetricResult:
    return ndcg_at(run, gold, options, 3)


def ndcg_at_5(run, gold, options: Mapping[str, Any]) -> MetricResult:
    return ndcg_at(run, gold, options, 5)

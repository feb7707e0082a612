"""Caption prediction, lexical part: ROUGE-1 F (rouge-score) and BLEU (sacrebleu).

Both follow the organizers' preprocessing before scoring: lower-case, every run of digits
replaced by the word ``number``, ASCII punctuation stripped. Per image, a prediction and a
gold caption that are both empty as written (before preprocessing, as the organizers test it)
score 1; a prediction of "..." against an empty gold caption is not empty and scores 0. A gold
image the run does not caption counts as an empty prediction.
"""
from __future__ import annotations

import re
import string
from typing import Any, Mapping

import numpy as np
import pandas as pd

from include.metrics.result import MetricResult

_DIGIT_RUNS = re.compile(r"\d+")
_STRIP_PUNCTUATION = str.maketrans("", "", string.punctuation)


def preprocess_caption(caption: str) -> str:
    """The organizers' caption normalisation: lower-case, digits to ``number``, no punctuation."""
    return _DIGIT_RUNS.sub("number", caption.lower()).translate(_STRIP_PUNCTUATION)


def caption_pairs(run: pd.DataFrame, gold: Mapping[str, pd.DataFrame]) -> pd.DataFrame | None:
    """Preprocessed ``gold`` and ``predicted`` captions indexed by gold ID, and ``both_empty``
    (both captions empty as written, before preprocessing); None without gold."""
    if "captions" not in gold:
        return None
    gold_captions = gold["captions"].assign(ID=lambda t: t["ID"].astype(str)).set_index("ID")["Caption"]
    predicted = run.assign(ID=lambda t: t["ID"].astype(str)).drop_duplicates("ID").set_index("ID")["Caption"]
    predicted = predicted.reindex(gold_captions.index).fillna("")
    gold_texts, predicted_texts = [str(c) for c in gold_captions.fillna("")], [str(c) for c in predicted]
    return pd.DataFrame({
        "gold": [preprocess_caption(c) for c in gold_texts],
        "predicted": [preprocess_caption(c) for c in predicted_texts],
        "both_empty": [not g.strip() and not p.strip() for g, p in zip(gold_texts, predicted_texts)],
    }, index=gold_captions.index)


def caption_rouge1(run: pd.DataFrame, gold: Mapping[str, pd.DataFrame], options: Mapping[str, Any]) -> MetricResult:
    """Mean per-image ROUGE-1 F-measure without stemming."""
    pairs = caption_pairs(run, gold)
    if pairs is None:
        return MetricResult.missing("the gold folder has no captions table (captions.csv)")
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rouge1"], use_stemmer=False)
    values = [
        1.0 if both_empty else scorer.score(g, p)["rouge1"].fmeasure
        for g, p, both_empty in zip(pairs["gold"], pairs["predicted"], pairs["both_empty"])
    ]
    return _mean_result(values, pairs.index, "rouge1")


def caption_bleu(run: pd.DataFrame, gold: Mapping[str, pd.DataFrame], options: Mapping[str, Any]) -> MetricResult:
    """BLEU on a 0-1 scale: the mean of per-image BLEU (organizers' rule) or one corpus BLEU."""
    pairs = caption_pairs(run, gold)
    if pairs is None:
        return MetricResult.missing("the gold folder has no captions table (captions.csv)")
    aggregation = options["caption_bleu_aggregation"]
    if aggregation not in ("mean_of_images", "corpus"):
        raise ValueError(f"caption_bleu_aggregation must be 'mean_of_images' or 'corpus', not {aggregation!r}")
    from include.metrics.bleu import bleu_statistics, corpus_bleu, sentence_bleus

    from include.metrics.text import word_tokenize

    # The organizers split captions with NLTK's word_tokenize and score without smoothing
    # (NLTK's method0); tokens joined by spaces go through sacrebleu unchanged.
    predicted = [" ".join(word_tokenize(c)) for c in pairs["predicted"]]
    references = [" ".join(word_tokenize(c)) for c in pairs["gold"]]
    stats = bleu_statistics(predicted, references, tokenize="none",
                            max_order=int(options["caption_bleu_max_order"]))
    per_image = sentence_bleus(stats, smooth_method="none", effective_order=False) / 100.0
    per_image[pairs["both_empty"].to_numpy(dtype=bool)] = 1.0
    result = _mean_result(per_image.tolist(), pairs.index, "bleu")
    if aggregation == "corpus" and result.computed:
        result.value = corpus_bleu(stats, smooth_method="none") / 100.0
    return result


def _mean_result(values: list[float], index: pd.Index, name: str) -> MetricResult:
    if not values:
        return MetricResult.missing("the gold captions table is empty")
    per_image = pd.Series(values, index=index, name=name, dtype=float)
    return MetricResult(value=float(np.mean(per_image.to_numpy())), per_item=per_image)

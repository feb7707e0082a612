"""BLEU from per-item sufficient statistics (sacrebleu), shared by captions, VQA and ToPicto.

sacrebleu counts each item's n-gram matches once; the corpus BLEU is the BLEU of their sums
(exactly what ``BLEU.corpus_score`` does) and each item's own BLEU comes from the same counts,
so one pass gives both the overall value and the per-item values.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class BleuStatistics:
    """Per-item n-gram statistics: ``matches`` and ``totals`` are (items x max order) arrays."""

    matches: np.ndarray
    totals: np.ndarray
    hypothesis_lengths: np.ndarray
    reference_lengths: np.ndarray
    max_order: int


def bleu_statistics(hypotheses: list[str], references: list[str], *, tokenize: str = "13a",
                    lowercase: bool = False, max_order: int = 4) -> BleuStatistics:
    """Count each (hypothesis, single reference) pair's n-gram matches with sacrebleu."""
    from sacrebleu.metrics import BLEU

    # effective_order only changes how a score is formed, never the counts; enabling it
    # keeps sacrebleu from warning once per sentence.
    counter = BLEU(tokenize=tokenize, lowercase=lowercase, effective_order=True, max_ngram_order=max_order)
    scores = [counter.sentence_score(h, [r]) for h, r in zip(hypotheses, references)]
    return BleuStatistics(
        matches=np.array([s.counts for s in scores], dtype=np.int64).reshape(len(scores), max_order),
        totals=np.array([s.totals for s in scores], dtype=np.int64).reshape(len(scores), max_order),
        hypothesis_lengths=np.array([s.sys_len for s in scores], dtype=np.int64),
        reference_lengths=np.array([s.ref_len for s in scores], dtype=np.int64),
        max_order=max_order,
    )


def corpus_bleu(stats: BleuStatistics, *, smooth_method: str = "exp") -> float:
    """Corpus BLEU (0-100) of the summed statistics."""
    from sacrebleu.metrics import BLEU

    return BLEU.compute_bleu(
        stats.matches.sum(axis=0).tolist(), stats.totals.sum(axis=0).tolist(),
        int(stats.hypothesis_lengths.sum()), int(stats.reference_lengths.sum()),
        smooth_method=smooth_method, max_ngram_order=stats.max_order,
    ).score


def sentence_bleus(stats: BleuStatistics, *, smooth_method: str = "exp", effective_order: bool = True) -> np.ndarray:
    """Each item's own BLEU (0-100) from its statistics."""
    from sacrebleu.metrics import BLEU

    return np.array([
        BLEU.compute_bleu(m.tolist(), t.tolist(), int(h), int(r), smooth_method=smooth_method,
                          effective_order=effective_order, max_ngram_order=stats.max_order).score
        for m, t, h, r in zip(stats.matches, stats.totals, stats.hypothesis_lengths, stats.reference_lengths)
    ], dtype=float)

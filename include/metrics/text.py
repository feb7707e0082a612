"""Free-text answers: MEDVQA-GI answering (BLEU, ROUGE, METEOR) and ToPicto (PictoER, BLEU, METEOR).

MEDVQA-GI follows the organizers' Hugging Face ``evaluate`` metrics with one reference per
question and no normalisation: BLEU is the corpus BLEU of the 13a-tokenized answers without
smoothing; ROUGE-1/2/L are F-measures of rouge-score without stemming, averaged exactly
(``evaluate`` reports a bootstrap median whose seed comes from numpy's unseeded state, so
its figure changes from one run of the organizers' script to the next, by up to 0.01 on the
2025 runs); METEOR is NLTK's
(alpha 0.9, beta 3, gamma 0.5) on word-tokenized text, averaged over questions.

ToPicto: PictoER is the corpus word error rate over pictogram terms x 100 (jiwer); a sentence
the run leaves out counts as an empty hypothesis. SacreBLEU is corpus BLEU with sacrebleu's
defaults; METEOR is NLTK's x 100 on NLTK ``word_tokenize`` tokens, as the organizers' ``evaluate``
"meteor" does (option ``picto_meteor_tokenize: whitespace`` splits on spaces only).
"""
from __future__ import annotations

import re
import warnings
from functools import lru_cache
from typing import Any, Callable, Mapping

import numpy as np
import pandas as pd

from include.metrics.result import MetricResult

WORDNET_MISSING = ("not computed: WordNet 3.0 is not installed for NLTK "
                   "(run scripts/install_wordnet.sh DEST and set NLTK_DATA=DEST)")


# --- aligning answers with references -------------------------------------------------------

def aligned_texts(run: pd.DataFrame, reference: pd.DataFrame, *, key: str, run_text: str,
                  reference_text: str) -> pd.DataFrame:
    """``reference`` and ``hypothesis`` per reference item (missing hypotheses are empty)."""
    references = reference.assign(**{key: reference[key].astype(str)}).set_index(key)[reference_text]
    hypotheses = run.assign(**{key: run[key].astype(str)}).drop_duplicates(key).set_index(key)[run_text]
    hypotheses = hypotheses.reindex(references.index)
    return pd.DataFrame({"reference": references.fillna("").astype(str),
                         "hypothesis": hypotheses.fillna("").astype(str)}, index=references.index)


def _text_pairs(run: pd.DataFrame, gold: Mapping[str, pd.DataFrame], table: str, file: str, **columns: str) -> pd.DataFrame | MetricResult:
    """:func:`aligned_texts` of the run and the gold ``table``, or why there is nothing to score (the
    gold folder has no such table, or it is empty)."""
    if table not in gold:
        return MetricResult.missing(f"the gold folder has no {table} table ({file})")
    pairs = aligned_texts(run, gold[table], **columns)
    if pairs.empty:
        return MetricResult.missing(f"the gold {table} table is empty")
    return pairs


def _vqa_pairs(run: pd.DataFrame, gold: Mapping[str, pd.DataFrame]) -> pd.DataFrame | MetricResult:
    return _text_pairs(run, gold, "answers", "answers.json", key="index", run_text="answer", reference_text="answer")


def _picto_pairs(run: pd.DataFrame, gold: Mapping[str, pd.DataFrame]) -> pd.DataFrame | MetricResult:
    return _text_pairs(run, gold, "references", "references.json", key="id", run_text="hyp", reference_text="ref")


def _result(per_item: np.ndarray | list[float], index: pd.Index, name: str, value: float | None = None) -> MetricResult:
    series = pd.Series(per_item, index=index, name=name, dtype=float)
    return MetricResult(value=float(np.mean(series.to_numpy())) if value is None else float(value), per_item=series)


# --- MEDVQA-GI answering ----------------------------------------------------------------------

def vqa_bleu(run, gold, options: Mapping[str, Any]) -> MetricResult:
    """Corpus BLEU (0-1) of all answers; per question, sentence BLEU with sacrebleu's smoothing."""
    pairs = _vqa_pairs(run, gold)
    if isinstance(pairs, MetricResult):
        return pairs
    from include.metrics.bleu import bleu_statistics, corpus_bleu, sentence_bleus

    stats = bleu_statistics(list(pairs["hypothesis"]), list(pairs["reference"]), tokenize="13a")
    return _result(sentence_bleus(stats) / 100.0, pairs.index, "bleu",
                   value=corpus_bleu(stats, smooth_method="none") / 100.0)


def _vqa_rouge(run, gold, rouge_type: str) -> MetricResult:
    pairs = _vqa_pairs(run, gold)
    if isinstance(pairs, MetricResult):
        return pairs
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer([rouge_type], use_stemmer=False)
    values = [scorer.score(r, h)[rouge_type].fmeasure for r, h in zip(pairs["reference"], pairs["hypothesis"])]
    return _result(values, pairs.index, rouge_type)


def vqa_rouge1(run, gold, options: Mapping[str, Any]) -> MetricResult:
    return _vqa_rouge(run, gold, "rouge1")


def vqa_rouge2(run, gold, options: Mapping[str, Any]) -> MetricResult:
    return _vqa_rouge(run, gold, "rouge2")


def vqa_rougeL(run, gold, options: Mapping[str, Any]) -> MetricResult:
    return _vqa_rouge(run, gold, "rougeL")


def vqa_meteor(run, gold, options: Mapping[str, Any]) -> MetricResult:
    """Mean per-question METEOR on word-tokenized answers."""
    pairs = _vqa_pairs(run, gold)
    if isinstance(pairs, MetricResult):
        return pairs
    return _meteor(pairs, word_tokenize, options, scale=1.0)


# --- ToPicto ----------------------------------------------------------------------------------

def picto_er(run, gold, options: Mapping[str, Any]) -> MetricResult:
    """Corpus WER over pictogram terms x 100; per sentence, its own WER x 100."""
    pairs = _picto_pairs(run, gold)
    if isinstance(pairs, MetricResult):
        return pairs
    errors, reference_lengths = word_errors(list(pairs["reference"]), list(pairs["hypothesis"]))
    if reference_lengths.sum() == 0:
        return MetricResult.missing("every gold reference is empty: the error rate has no denominator")
    # An empty reference divides by 1, as jiwer does for a single sentence.
    per_sentence = 100.0 * errors / np.maximum(reference_lengths, 1)
    result = _result(per_sentence, pairs.index, "picto_er", value=100.0 * errors.sum() / reference_lengths.sum())
    result.components = pd.DataFrame({"numerator": 100.0 * errors, "denominator": reference_lengths}, index=pairs.index, dtype=float)
    return result


def word_errors(references: list[str], hypotheses: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Per sentence, substitutions + deletions + insertions and the reference length (jiwer)."""
    import jiwer

    output = jiwer.process_words(references, hypotheses)
    errors = np.zeros(len(references), dtype=np.int64)
    for sentence, chunks in enumerate(output.alignments):
        for chunk in chunks:
            if chunk.type in ("substitute", "delete"):
                errors[sentence] += chunk.ref_end_idx - chunk.ref_start_idx
            elif chunk.type == "insert":
                errors[sentence] += chunk.hyp_end_idx - chunk.hyp_start_idx
    reference_lengths = np.array([len(r.split()) for r in references], dtype=np.int64)
    return errors, reference_lengths


def picto_sacrebleu(run, gold, options: Mapping[str, Any]) -> MetricResult:
    """Corpus SacreBLEU (0-100) with sacrebleu's defaults; per sentence, sentence BLEU."""
    pairs = _picto_pairs(run, gold)
    if isinstance(pairs, MetricResult):
        return pairs
    from include.metrics.bleu import bleu_statistics, corpus_bleu, sentence_bleus

    stats = bleu_statistics(list(pairs["hypothesis"]), list(pairs["reference"]),
                            tokenize=options["picto_bleu_tokenize"])
    return _result(sentence_bleus(stats), pairs.index, "sacrebleu", value=corpus_bleu(stats, smooth_method="exp"))


def picto_meteor(run, gold, options: Mapping[str, Any]) -> MetricResult:
    """Mean per-sentence METEOR x 100 on pictogram terms (NLTK word_tokenize tokens by default)."""
    pairs = _picto_pairs(run, gold)
    if isinstance(pairs, MetricResult):
        return pairs
    tokenizers = {"whitespace": str.split, "treebank": word_tokenize}
    choice = options["picto_meteor_tokenize"]
    if choice not in tokenizers:
        raise ValueError(f"picto_meteor_tokenize must be one of {', '.join(tokenizers)}, not {choice!r}")
    return _meteor(pairs, tokenizers[choice], options, scale=100.0)


# --- METEOR -----------------------------------------------------------------------------------

def wordnet_available() -> bool:
    """True when NLTK can open the WordNet 3.0 database."""
    import nltk

    try:
        nltk.data.find("corpora/wordnet")
    except LookupError:
        return False
    return True


@lru_cache(maxsize=1)
def english_wordnet():
    """WordNet 3.0 for English lookups, loaded about twice as fast as ``nltk.corpus.wordnet``.

    NLTK's reader also maps every synset to other WordNet versions for multilingual data (two
    passes over the 590,000-line index.sense: 4 of its 8 s load here); METEOR only looks up
    English synonyms, so this reader skips the mapping, as NLTK itself does when the versions
    match. Synonym sets are the same; the tests check METEOR against NLTK's default reader.
    """
    import nltk
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    class EnglishWordNetReader(WordNetCorpusReader):
        def map_wn(self, version="wordnet"):
            return None

    with warnings.catch_warnings():  # "multilingual functions are not available": not needed
        warnings.simplefilter("ignore")
        return EnglishWordNetReader(nltk.data.find("corpora/wordnet"), None)


# NLTK's Treebank rules only change text that holds ASCII punctuation, typographic quotes,
# dashes U+2012-U+2015 or one of its contractions; other text it splits on whitespace. Checking
# for them first skips NLTK's regexes (about 1 ms a caption) for the preprocessed captions,
# which have no ASCII punctuation left. The tests compare both paths on random text.
_TREEBANK_WOULD_CHANGE = re.compile(
    r"[!-/:-@\[-`{-~«“‘„»”’\u2012-\u2015]|\b(?:cannot|gimme|gonna|gotta|lemme|wanna)\b", re.IGNORECASE)


def word_tokenize(text: str) -> list[str]:
    """NLTK's ``word_tokenize``; without the Punkt model, an untrained Punkt sentence splitter.

    The Punkt model cannot be downloaded on our machines. Untrained Punkt splits sentences at
    the same places except after abbreviations it would have learned ("Dr."), which short
    answers rarely contain; the Treebank word tokenizer inside is the same either way.
    """
    import nltk

    if not _TREEBANK_WOULD_CHANGE.search(text):
        return text.split()
    splitter = _sentence_splitter()
    if splitter is None:
        return nltk.tokenize.word_tokenize(text)
    return [token for sentence in splitter.tokenize(text)
            for token in nltk.tokenize.word_tokenize(sentence, preserve_line=True)]


@lru_cache(maxsize=1)
def _sentence_splitter():
    """None when NLTK's trained Punkt model is installed, else an untrained Punkt splitter."""
    import nltk
    from nltk.tokenize import PunktSentenceTokenizer

    try:
        nltk.data.find("tokenizers/punkt_tab/english/")
    except LookupError:
        return PunktSentenceTokenizer()
    return None


def _meteor(pairs: pd.DataFrame, tokenize: Callable[[str], list[str]], options: Mapping[str, Any],
            *, scale: float) -> MetricResult:
    if not wordnet_available():
        return MetricResult.missing(WORDNET_MISSING)
    from nltk.translate.meteor_score import single_meteor_score

    alpha, beta, gamma = (float(options[k]) for k in ("meteor_alpha", "meteor_beta", "meteor_gamma"))
    wordnet = english_wordnet()
    values = [scale * single_meteor_score(tokenize(r), tokenize(h), wordnet=wordnet, alpha=alpha, beta=beta, gamma=gamma)
              for r, h in zip(pairs["reference"], pairs["hypothesis"])]
    return _result(values, pairs.index, "meteor")

"""Caption ROUGE-1 and BLEU agree with independent computations after the official preprocessing."""
from __future__ import annotations

import random
import re
import string
import warnings
from collections import Counter

import pandas as pd
import pytest
import sacrebleu
from nltk.tokenize import word_tokenize
from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu

from include.metrics import score_run
from include.metrics.captions import preprocess_caption

WORDS = ("ct scan of the chest shows a mass in right upper lobe arrow mri axial t2 weighted image "
         "lesion cannot be excluded contrast enhanced ultrasound").split()


def organizers_preprocess(caption: str) -> str:
    caption = re.sub(r"\d+", "number", caption.lower())
    return "".join(ch for ch in caption if ch not in string.punctuation)


def unigram_f(reference: str, hypothesis: str) -> float:
    """ROUGE-1 F by counting: rouge-score keeps lower-case alphanumeric runs as tokens."""
    tokens = lambda text: re.sub(r"[^a-z0-9]+", " ", text.lower()).split()
    ref, hyp = Counter(tokens(reference)), Counter(tokens(hypothesis))
    overlap = sum((ref & hyp).values())
    if not overlap:
        return 0.0
    precision, recall = overlap / sum(hyp.values()), overlap / sum(ref.values())
    return 2 * precision * recall / (precision + recall)


def nltk_bleu(reference: str, hypothesis: str, both_empty: bool) -> float:
    """The organizers' per-image BLEU: NLTK sentence_bleu, method0, on word_tokenize tokens;
    1 when both captions are empty as written."""
    ref = word_tokenize(reference, preserve_line=True)
    hyp = word_tokenize(hypothesis, preserve_line=True)
    if both_empty:
        return 1.0
    if not ref or not hyp:
        return 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return sentence_bleu([ref], hyp, smoothing_function=SmoothingFunction().method0)


def generated_captions(seed: int, images: int = 120):
    rng = random.Random(seed)
    gold, run = {}, {}
    for n in range(images):
        words = rng.choices(WORDS, k=rng.randint(3, 14))
        caption = " ".join(words) + rng.choice(["", ".", f" ({rng.randint(1, 300)} mm).", " , 2025!"])
        gold[f"img{n}"] = caption
        kept = [w for w in words if rng.random() < 0.7]
        if rng.random() < 0.5:
            kept += rng.choices(WORDS, k=2)
        run[f"img{n}"] = " ".join(kept).upper() if rng.random() < 0.3 else " ".join(kept)
    gold["both_empty"], run["both_empty"] = "", ""
    gold["dots_vs_empty"], run["dots_vs_empty"] = "", "!!"  # not empty as written: scores 0
    gold["hyp_empty"], run["hyp_empty"] = "A 12 mm nodule.", ""
    gold["not_in_run"] = "a caption the run skips"
    return run, gold


def tables(run, gold):
    return (pd.DataFrame({"ID": list(run), "Caption": list(run.values())}),
            {"captions": pd.DataFrame({"ID": list(gold), "Caption": list(gold.values())})})


def test_preprocessing_follows_the_organizers():
    assert preprocess_caption("CT, 2 views: 12mm mass (L1-L2).") == "ct number views numbermm mass lnumberlnumber"
    assert preprocess_caption("A 3.5 cm") == organizers_preprocess("A 3.5 cm")


@pytest.mark.parametrize("seed", [4, 5])
def test_rouge1_and_bleu_match_independent_computations(seed):
    run, gold = generated_captions(seed)
    results = score_run("caption-text-csv", ["caption_rouge1", "caption_bleu"], *tables(run, gold))
    expected_rouge, expected_bleu = [], []
    for image_id, gold_caption in gold.items():
        reference, hypothesis = organizers_preprocess(gold_caption), organizers_preprocess(run.get(image_id, ""))
        both_empty = not gold_caption and not run.get(image_id, "")  # tested on the captions as written
        expected_rouge.append(1.0 if both_empty else unigram_f(reference, hypothesis))
        expected_bleu.append(nltk_bleu(reference, hypothesis, both_empty))
    rouge, bleu = results["caption_rouge1"], results["caption_bleu"]
    assert rouge.per_item.to_list() == pytest.approx(expected_rouge, abs=1e-9)
    assert abs(rouge.value - sum(expected_rouge) / len(expected_rouge)) < 1e-9
    assert bleu.per_item.to_list() == pytest.approx(expected_bleu, abs=1e-9)
    assert abs(bleu.value - sum(expected_bleu) / len(expected_bleu)) < 1e-9
    assert rouge.per_item["both_empty"] == 1.0 and bleu.per_item["both_empty"] == 1.0
    assert rouge.per_item["hyp_empty"] == 0.0 and bleu.per_item["not_in_run"] == 0.0
    assert rouge.per_item["dots_vs_empty"] == 0.0 and bleu.per_item["dots_vs_empty"] == 0.0


def test_corpus_bleu_option_matches_sacrebleu_corpus_score():
    run, gold = generated_captions(6)
    result = score_run("caption-text-csv", ["caption_bleu"], *tables(run, gold),
                       options={"caption_bleu_aggregation": "corpus"})["caption_bleu"]
    hypotheses = [" ".join(word_tokenize(organizers_preprocess(run.get(i, "")), preserve_line=True)) for i in gold]
    references = [" ".join(word_tokenize(organizers_preprocess(c), preserve_line=True)) for c in gold.values()]
    expected = sacrebleu.corpus_bleu(hypotheses, [references], tokenize="none", smooth_method="none").score / 100
    assert abs(result.value - expected) < 1e-9
    assert 0.0 < result.value < 1.0


def test_model_metrics_report_missing_weights_instead_of_a_number(monkeypatch):
    monkeypatch.delenv("CLEF_MODEL_DIR", raising=False)
    run, gold = generated_captions(7, images=3)
    results = score_run("caption-text-csv", ["caption_relevance", "caption_bertscore"], *tables(run, gold))
    assert results["caption_bertscore"].value is None
    assert results["caption_bertscore"].not_computed == \
        "not computed: model microsoft/deberta-xlarge-mnli not available: no model directory is set (CLEF_MODEL_DIR)"
    assert "microsoft/deberta-xlarge-mnli" in results["caption_relevance"].not_computed

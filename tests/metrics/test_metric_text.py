"""VQA-GI and ToPicto text metrics agree with sacrebleu, jiwer, NLTK and hand-written ROUGE."""
from __future__ import annotations

import random
import re
from collections import Counter

import jiwer
import nltk
import pandas as pd
import pytest
import sacrebleu
from nltk.translate.meteor_score import meteor_score

from include.metrics import score_run
from include.metrics.text import word_tokenize

ANSWER_WORDS = ("there is one polyp in the image it is located in the center no instruments are "
                "visible the colour is pink and red yes two 5mm 10-20mm Upper-left").split()
PICTO_TERMS = ("je manger pomme vouloir aller maison demain ne_pas avoir faim école ami jouer "
               "voir chat chien beaucoup content").split()


def ngram_f(reference: str, hypothesis: str, n: int) -> float:
    tokens = lambda text: re.sub(r"[^a-z0-9]+", " ", text.lower()).split()
    grams = lambda t: Counter(tuple(t[i:i + n]) for i in range(len(t) - n + 1))
    ref, hyp = grams(tokens(reference)), grams(tokens(hypothesis))
    overlap = sum((ref & hyp).values())
    return 0.0 if not overlap else 2 * overlap / (sum(ref.values()) + sum(hyp.values()))


def lcs_f(reference: str, hypothesis: str) -> float:
    ref = re.sub(r"[^a-z0-9]+", " ", reference.lower()).split()
    hyp = re.sub(r"[^a-z0-9]+", " ", hypothesis.lower()).split()
    table = [[0] * (len(hyp) + 1) for _ in range(len(ref) + 1)]
    for i, r in enumerate(ref):
        for j, h in enumerate(hyp):
            table[i + 1][j + 1] = table[i][j] + 1 if r == h else max(table[i][j + 1], table[i + 1][j])
    lcs = table[-1][-1]
    return 0.0 if not lcs else 2 * lcs / (len(ref) + len(hyp))


def generated_answers(seed: int, questions: int = 80):
    rng = random.Random(seed)
    gold, run = [], []
    for n in range(questions):
        answer = " ".join(rng.choices(ANSWER_WORDS, k=rng.randint(1, 12))) + rng.choice(["", ".", ". Yes."])
        gold.append({"index": str(n), "img_id": f"img{n % 7}", "question": "How many polyps?", "answer": answer})
        words = [w for w in answer.split() if rng.random() < 0.75] + rng.choices(ANSWER_WORDS, k=rng.randint(0, 2))
        if n != 3:  # question 3 is left unanswered
            run.append({**gold[-1], "answer": " ".join(words) if n != 5 else ""})
    return pd.DataFrame(run), {"answers": pd.DataFrame(gold)}


@pytest.mark.parametrize("seed", [11, 12])
def test_vqa_metrics_match_references(seed):
    run, gold = generated_answers(seed)
    results = score_run("vqa-gi-answers-json", ["vqa_meteor", "vqa_bleu", "vqa_rouge1", "vqa_rouge2", "vqa_rougeL"],
                        run, gold)
    answered = dict(zip(run["index"], run["answer"]))
    references = list(gold["answers"]["answer"])
    hypotheses = [answered.get(i, "") for i in gold["answers"]["index"]]
    expected_bleu = sacrebleu.corpus_bleu(hypotheses, [references], tokenize="13a", smooth_method="none").score / 100
    assert abs(results["vqa_bleu"].value - expected_bleu) < 1e-9
    for name, reference_f in (("vqa_rouge1", lambda r, h: ngram_f(r, h, 1)), ("vqa_rouge2", lambda r, h: ngram_f(r, h, 2)),
                              ("vqa_rougeL", lcs_f)):
        expected = [reference_f(r, h) for r, h in zip(references, hypotheses)]
        assert results[name].per_item.to_list() == pytest.approx(expected, abs=1e-9), name
        assert abs(results[name].value - sum(expected) / len(expected)) < 1e-9
    expected_meteor = [meteor_score([word_tokenize(r)], word_tokenize(h)) for r, h in zip(references, hypotheses)]
    assert abs(results["vqa_meteor"].value - sum(expected_meteor) / len(expected_meteor)) < 1e-9
    assert results["vqa_meteor"].per_item["3"] == 0.0


def test_meteor_reproduces_the_checked_wordnet_value():
    run = pd.DataFrame({"id": ["s1"], "hyp": ["the cat is on the mat"]})
    gold = {"references": pd.DataFrame({"id": ["s1"], "ref": ["the cat sat on the mat"]})}
    result = score_run("topicto-json", ["picto_meteor"], run, gold)["picto_meteor"]
    assert abs(result.value - 80.66666666666668) < 1e-9


def test_meteor_without_wordnet_says_not_computed(monkeypatch, tmp_path):
    monkeypatch.setattr(nltk.data, "path", [str(tmp_path)])
    run, gold = generated_answers(13, questions=3)
    result = score_run("vqa-gi-answers-json", ["vqa_meteor"], run, gold)["vqa_meteor"]
    assert result.value is None and "WordNet" in result.not_computed and "install_wordnet.sh" in result.not_computed


def generated_pictos(seed: int, sentences: int = 100):
    rng = random.Random(seed)
    gold, run = [], []
    for n in range(sentences):
        ref = rng.choices(PICTO_TERMS, k=rng.randint(2, 10))
        gold.append({"id": f"s{n}", "ref": " ".join(ref)})
        hyp = [t if rng.random() < 0.8 else rng.choice(PICTO_TERMS) for t in ref if rng.random() < 0.9]
        hyp += rng.choices(PICTO_TERMS, k=rng.choice([0, 0, 1]))
        if n % 17 != 0:  # every 17th sentence is missing: an empty hypothesis
            run.append({"id": f"s{n}", "hyp": " ".join(hyp)})
    return pd.DataFrame(run), {"references": pd.DataFrame(gold)}


@pytest.mark.parametrize("seed", [21, 22])
def test_topicto_metrics_match_jiwer_sacrebleu_and_nltk(seed):
    run, gold = generated_pictos(seed)
    results = score_run("topicto-json", ["picto_er", "picto_sacrebleu", "picto_meteor"], run, gold)
    hyps = dict(zip(run["id"], run["hyp"]))
    references = list(gold["references"]["ref"])
    hypotheses = [hyps.get(i, "") for i in gold["references"]["id"]]
    assert abs(results["picto_er"].value - 100 * jiwer.wer(references, hypotheses)) < 1e-9
    per_sentence = [100 * jiwer.wer(r, h) for r, h in zip(references, hypotheses)]
    assert results["picto_er"].per_item.to_list() == pytest.approx(per_sentence, abs=1e-9)
    assert abs(results["picto_sacrebleu"].value - sacrebleu.corpus_bleu(hypotheses, [references]).score) < 1e-9
    expected_meteor = [100 * meteor_score([r.split()], h.split()) for r, h in zip(references, hypotheses)]
    assert abs(results["picto_meteor"].value - sum(expected_meteor) / len(expected_meteor)) < 1e-9


def test_picto_er_lower_is_better_and_perfect_run_scores_zero():
    _, gold = generated_pictos(23, sentences=10)
    perfect = gold["references"].rename(columns={"ref": "hyp"})
    results = score_run("topicto-json", ["picto_er", "picto_sacrebleu"], perfect, gold)
    assert results["picto_er"].value == 0.0
    assert abs(results["picto_sacrebleu"].value - 100.0) < 1e-9


def test_fast_tokenizer_path_agrees_with_nltk_on_random_text():
    from nltk.tokenize import PunktSentenceTokenizer

    splitter = PunktSentenceTokenizer()
    rng = random.Random(71)
    pieces = ["ct", "scan", "Number", "numbermm", "café", "µm", "…", "°", "cannot", "Gonna", "wanna", "lemme",
              "gimme", "gotta", "can", "not", "“quoted”", "‘a’", "«b»", "„c", "x\u2013y", "a\u2014", "don't", "it's",
              "a.", "b,", "(c)", "d;", "e?", "f!", "1:2", "--", "...", "'tis", "\xa0", "\t", "  ", "X-ray", "e.g."]
    plain_split_cases = 0
    for _ in range(800):
        text = " ".join(rng.choices(pieces, k=rng.randint(0, 9)))
        expected = [t for s in splitter.tokenize(text) for t in nltk.tokenize.word_tokenize(s, preserve_line=True)]
        assert word_tokenize(text) == expected, text
        plain_split_cases += text.split() == expected
    assert plain_split_cases > 80  # both paths are exercised


@pytest.mark.parametrize(("run_format", "metrics", "table", "file", "run", "empty"), [
    ("vqa-gi-answers-json", ["vqa_bleu", "vqa_rouge1", "vqa_rouge2", "vqa_rougeL", "vqa_meteor"], "answers", "answers.json",
     pd.DataFrame({"index": ["q1"], "answer": ["one polyp"]}), pd.DataFrame({"index": [], "answer": []})),
    ("topicto-json", ["picto_er", "picto_sacrebleu", "picto_meteor"], "references", "references.json",
     pd.DataFrame({"id": ["s1"], "hyp": ["je manger"]}), pd.DataFrame({"id": [], "ref": []})),
])
def test_every_text_metric_names_a_missing_or_empty_gold_table(run_format, metrics, table, file, run, empty):
    for gold, reason in (({}, f"not computed: the gold folder has no {table} table ({file})"),
                         ({table: empty}, f"not computed: the gold {table} table is empty")):
        results = score_run(run_format, metrics, run, gold)
        assert {name: (result.value, result.not_computed) for name, result in results.items()} == {name: (None, reason) for name in metrics}

"""Multimodal-reasoning accuracy, overall and per language, agrees with a plain loop."""
from __future__ import annotations

import random

import pandas as pd

from include.metrics import score_run

LANGUAGES = ["en", "bg", "hr", "hu", "it", "mk", "pl", "ro", "sr", "ur", "ar", "zh", "es"]


def generated_exam(seed: int, questions: int = 400):
    rng = random.Random(seed)
    gold = pd.DataFrame({"id": [f"q{n}" for n in range(questions)],
                         "answer_key": [rng.choice("ABCDE") for _ in range(questions)],
                         "language": [rng.choice(LANGUAGES) for _ in range(questions)]})
    answers = [key if rng.random() < 0.6 else rng.choice("ABCDE") for key in gold["answer_key"]]
    run = gold.assign(answer_key=answers)
    run.loc[::9, "answer_key"] = run.loc[::9, "answer_key"].str.lower()  # case does not matter
    return run.drop(index=[5, 6], errors="ignore"), {"answers": gold}  # two questions unanswered: wrong


def test_accuracy_overall_and_per_language_match_a_plain_loop():
    run, gold = generated_exam(61)
    result = score_run("multimodal-reasoning-json", ["mmr_accuracy"], run, gold)["mmr_accuracy"]
    answered = {i: k.upper() for i, k in zip(run["id"], run["answer_key"])}
    right = {lang: [] for lang in LANGUAGES}
    for question, key, language in gold["answers"].itertuples(index=False):
        right[language].append(answered.get(question) == key)
    everything = [r for values in right.values() for r in values]
    assert abs(result.value - sum(everything) / len(everything)) < 1e-9
    assert set(result.breakdown) == set(LANGUAGES)
    for language, values in right.items():
        assert abs(result.breakdown[language] - sum(values) / len(values)) < 1e-9
    assert result.per_item["q5"] == 0.0


def test_a_one_language_run_is_scored_on_its_language_in_the_breakdown_and_missing_answers_are_wrong_overall():
    run, gold = generated_exam(62)
    croatian = run[run["language"] == "hr"]
    result = score_run("multimodal-reasoning-json", ["mmr_accuracy"], croatian, gold)["mmr_accuracy"]
    gold_hr = gold["answers"][gold["answers"]["language"] == "hr"]
    right = (croatian.set_index("id")["answer_key"].str.upper().reindex(gold_hr["id"]).to_numpy()
             == gold_hr["answer_key"].to_numpy())
    assert list(result.breakdown) == ["hr"] and abs(result.breakdown["hr"] - right.mean()) < 1e-9
    assert abs(result.value - right.sum() / len(gold["answers"])) < 1e-9  # docs/metrics.md, partial runs
    assert len(result.per_item) == len(gold["answers"])


def test_a_run_answering_nothing_known_is_reported():
    _, gold = generated_exam(63, questions=5)
    run = pd.DataFrame({"id": ["unknown"], "answer_key": ["A"], "language": ["en"]})
    result = score_run("multimodal-reasoning-json", ["mmr_accuracy"], run, gold)["mmr_accuracy"]
    assert result.value is None and "answers no question" in result.not_computed

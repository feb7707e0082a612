"""The registry holds every contract metric with coherent metadata, and score_run enforces it."""
from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest

from include.metrics import METRICS, MetricResult, get_metric, metric_names, metrics_for_format, score_run

CONTRACT = {
    "caption-concepts-csv": ["concept_f1", "concept_f1_manual"],
    "caption-text-csv": ["caption_relevance", "caption_bertscore", "caption_rouge1", "caption_image_similarity",
                         "caption_factuality", "caption_umls_f1", "caption_alignscore", "caption_bleurt",
                         "caption_bleu"],
    "gans-detection-csv": ["gans_kappa", "gans_accuracy", "gans_f1"],
    "gans-attribution-csv": ["attribution_accuracy"],
    "vqa-gi-answers-json": ["vqa_meteor", "vqa_bleu", "vqa_rouge1", "vqa_rouge2", "vqa_rougeL"],
    "vqa-gi-images-zip": ["synthesis_fidelity", "synthesis_agreement", "synthesis_diversity", "synthesis_fbd"],
    "magic-masks-zip": ["magic_jaccard", "magic_dice", "magic_dice_mean_of_max", "magic_dice_mean_of_mean"],
    "magic-closed-vqa-json": ["magic_accuracy_all"],
    "touche-results-jsonl": ["ndcg_at_5", "ndcg_at_1", "ndcg_at_3"],
    "topicto-json": ["picto_er", "picto_sacrebleu", "picto_meteor"],
    "multimodal-reasoning-json": ["mmr_accuracy"],
}
MODEL_METRICS = {"caption_relevance", "caption_bertscore", "caption_image_similarity", "caption_factuality",
                 "caption_umls_f1", "caption_alignscore", "caption_bleurt", "synthesis_fidelity",
                 "synthesis_agreement", "synthesis_diversity", "synthesis_fbd"}
LOWER_IS_BETTER = {"picto_er", "synthesis_fbd"}


@pytest.mark.parametrize("format_name", sorted(CONTRACT))
def test_every_contract_metric_is_registered_for_its_format_primary_first(format_name):
    assert metrics_for_format(format_name) == CONTRACT[format_name]


def test_registry_holds_exactly_the_contract_names():
    assert sorted(metric_names()) == sorted(n for names in CONTRACT.values() for n in names)


@pytest.mark.parametrize("name", sorted(METRICS))
def test_metadata_is_coherent(name):
    spec = get_metric(name)
    assert spec.name == name
    assert spec.higher_is_better is (name not in LOWER_IS_BETTER)
    assert (spec.needs_model is not None) is (name in MODEL_METRICS)
    assert spec.queue == ("models" if name in MODEL_METRICS else "default")
    assert spec.needs_gpu is (name in MODEL_METRICS)
    low, high = spec.value_range
    assert low < high
    assert spec.per_item_unit and spec.description
    assert callable(spec.compute.resolve())


def test_unknown_metric_names_every_known_metric():
    with pytest.raises(KeyError) as error:
        get_metric("concept_f2")
    message = str(error.value)
    assert "concept_f2" in message and all(name in message for name in METRICS)


def test_package_import_stays_light():
    code = ("import sys, include.metrics; heavy = [m for m in ('sklearn', 'nltk', 'sacrebleu', 'jiwer', "
            "'rouge_score', 'ir_measures', 'pandas') if m in sys.modules]; print(heavy)")
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert output.strip() == "[]"


def _gans_tables():
    run = pd.DataFrame({"id": ["a", "b"], "label": [1, 0]})
    return run, {"labels": pd.DataFrame({"id": ["a", "b"], "label": [1, 1]})}


def test_score_run_refuses_a_metric_of_another_format():
    run, gold = _gans_tables()
    with pytest.raises(ValueError, match="ndcg_at_5.*gans-detection-csv"):
        score_run("gans-detection-csv", ["gans_accuracy", "ndcg_at_5"], run, gold)


def test_score_run_refuses_unknown_options_and_names_the_known_ones():
    run, gold = _gans_tables()
    with pytest.raises(ValueError, match="ndcg_gain"):
        score_run("gans-detection-csv", ["gans_accuracy"], run, gold, options={"ndcg_gain": "linear"})
    with pytest.raises(ValueError, match="known options: ndcg_annotators, ndcg_average_over, ndcg_gain"):
        score_run("touche-results-jsonl", ["ndcg_at_5"], run, gold, options={"gain": "linear"})


def test_score_run_keeps_the_requested_order_and_returns_results():
    run, gold = _gans_tables()
    results = score_run("gans-detection-csv", ["gans_accuracy", "gans_kappa"], run, gold)
    assert list(results) == ["gans_accuracy", "gans_kappa"]
    assert all(isinstance(r, MetricResult) for r in results.values())
    assert results["gans_accuracy"].value == 0.5
    assert list(results["gans_accuracy"].per_item) == [1.0, 0.0]


def test_missing_result_is_never_zero():
    result = MetricResult.missing("model X not available")
    assert result.value is None and result.not_computed == "not computed: model X not available"
    assert not result.computed

"""Results are not published for a task whose primary metric is not computed; the reason names the model."""
from __future__ import annotations

from pathlib import Path

from include.campaign.config import load_campaign
from include.campaign.results import primary_not_computed

CAMPAIGN = load_campaign(Path(__file__).resolve().parents[2] / "include" / "campaigns" / "imageclef2025.yaml")
REASON = "not computed: caption_bertscore: model microsoft/deberta-xlarge-mnli not available: no model directory is set (CLEF_MODEL_DIR)"


def run(team, verdict="valid", relevance=None, reason=REASON):
    return {"team": team, "run": "run-01", "verdict": verdict, "metrics": {"caption_relevance": relevance, "caption_rouge1": 0.4},
            "not_computed": {} if relevance is not None else {"caption_relevance": reason}}


def test_withheld_when_no_valid_run_has_the_primary_and_the_reason_names_the_model():
    task = CAMPAIGN.task("caption-prediction")
    text = primary_not_computed(task, {"runs": [run("a"), run("b"), run("c", verdict="invalid", relevance=None)]})
    assert text.startswith("the primary metric caption_relevance is not computed for any of the 2 valid run(s)")
    assert "model microsoft/deberta-xlarge-mnli not available" in text


def test_published_when_one_valid_run_has_it_or_nothing_is_valid():
    task = CAMPAIGN.task("caption-prediction")
    assert primary_not_computed(task, {"runs": [run("a"), run("b", relevance=0.5)]}) is None
    assert primary_not_computed(task, {"runs": [run("a", verdict="invalid")]}) is None
    assert primary_not_computed(task, {"runs": []}) is None

"""Model-based metrics say why they are not computed and never return a number."""
from __future__ import annotations

import pandas as pd

from include.metrics import METRICS, score_run


def test_absent_weights_name_the_model(monkeypatch, tmp_path):
    monkeypatch.delenv("CLEF_MODEL_DIR", raising=False)
    run = pd.DataFrame({"member": [], "prompt_id": [], "image_index": [], "width": [], "height": []})
    names = ["synthesis_fidelity", "synthesis_agreement", "synthesis_diversity", "synthesis_fbd"]
    results = score_run("vqa-gi-images-zip", names, run, {"prompts": pd.DataFrame()})
    for name in names:
        assert results[name].value is None and results[name].per_item is None
        assert results[name].not_computed == f"not computed: model {METRICS[name].needs_model} not available"


def test_present_weights_still_report_rather_than_invent(monkeypatch, tmp_path):
    model = tmp_path / "microsoft" / "deberta-xlarge-mnli"
    model.mkdir(parents=True)
    (model / "pytorch_model.bin").write_bytes(b"weights")
    run = pd.DataFrame({"ID": ["a"], "Caption": ["x"]})
    gold = {"captions": pd.DataFrame({"ID": ["a"], "Caption": ["x"]})}
    # The directory comes as the model_dir option (scoring passes the context's CLEF_MODEL_DIR).
    results = score_run("caption-text-csv", ["caption_bertscore", "caption_relevance"], run, gold, {"model_dir": str(tmp_path)})
    assert results["caption_bertscore"].value is None
    assert "not implemented yet" in results["caption_bertscore"].not_computed
    # Relevance also needs the image-caption model, which is still absent.
    assert "MedImageInsights not available" in results["caption_relevance"].not_computed
    assert "deberta" not in results["caption_relevance"].not_computed

"""Caption model metrics equal the libraries they wrap, with real (shipped or tiny random) models."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from include.metrics import score_run
from include.metrics.captions import preprocess_caption
from include.metrics.model_inputs import attach_sources
from include.models import catalog

GOLD = ["Chest X-ray showing 2 nodules in the right lung.", "CT of the abdomen, no contrast.",
        "MRI T2: lesion of 14 mm.", "", "Ultrasound of the liver"]
PREDICTED = ["Chest x-ray with two nodules, right lung", "abdominal CT scan without contrast", "",
             "", "liver ultrasound image; normal"]


def caption_inputs(tmp_path, gold=GOLD, predicted=PREDICTED, images=True):
    ids = [f"img-{i}" for i in range(len(gold))]
    gold_dir = tmp_path / "gold"
    (gold_dir / "images").mkdir(parents=True)
    rng = np.random.default_rng(7)
    if images:
        for image_id in ids:
            Image.fromarray(rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)).save(gold_dir / "images" / f"{image_id}.png")
    run = pd.DataFrame({"ID": ids, "Caption": predicted})
    attach_sources(run, tmp_path / "run.zip", gold_dir)
    return run, {"captions": pd.DataFrame({"ID": ids, "Caption": gold})}


def test_bertscore_equals_bert_score_with_idf(tmp_path, model_dir):
    import bert_score

    run, gold = caption_inputs(tmp_path)
    result = score_run("caption-text-csv", ["caption_bertscore"], run, gold, {"model_dir": str(model_dir)})["caption_bertscore"]
    candidates = [preprocess_caption(c) for c in PREDICTED]
    references = [preprocess_caption(c) for c in GOLD]
    # nthreads=0: bert-score counts idf in this process. Its default forks a multiprocessing Pool from
    # the pytest process, which by now runs many threads (servers on loopback, the tokenizers' pool):
    # a forked child can inherit a held lock and wait forever (the whole suite once hung here in CI).
    _, _, expected = bert_score.score(candidates, references, model_type=str(model_dir / catalog.BERTSCORE.name),
                                      num_layers=6, idf=True, use_fast_tokenizer=True, nthreads=0)
    expected = expected.double().numpy()
    expected[3] = 1.0  # both empty
    assert np.allclose(result.per_item.to_numpy(), expected, atol=1e-6, rtol=0)
    assert result.value == pytest.approx(expected.mean(), abs=1e-6)
    assert result.per_item.iloc[2] == 0.0  # empty prediction, non-empty gold


def test_a_caption_against_itself_scores_one(tmp_path, model_dir):
    run, gold = caption_inputs(tmp_path, GOLD, GOLD)
    result = score_run("caption-text-csv", ["caption_bertscore"], run, gold, {"model_dir": str(model_dir)})["caption_bertscore"]
    assert np.allclose(result.per_item.to_numpy(), 1.0, atol=1e-6)


def test_image_similarity_equals_clip_cosine(tmp_path, model_dir):
    import torch
    from transformers import AutoImageProcessor, AutoTokenizer, CLIPModel

    run, gold = caption_inputs(tmp_path)
    result = score_run("caption-text-csv", ["caption_image_similarity"], run, gold,
                       {"model_dir": str(model_dir)})["caption_image_similarity"]
    folder = model_dir / catalog.MEDIMAGEINSIGHT.name
    model = CLIPModel.from_pretrained(folder).eval()
    processor, tokenizer = AutoImageProcessor.from_pretrained(folder), AutoTokenizer.from_pretrained(folder)
    expected = []
    for i, caption in enumerate(PREDICTED):  # one pair at a time, the model's own forward
        image = Image.open(tmp_path / "gold" / "images" / f"img-{i}.png").convert("RGB")
        with torch.no_grad():
            tokens = tokenizer([caption], return_tensors="pt")
            out = model(input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"], pixel_values=processor(images=[image], return_tensors="pt")["pixel_values"])
        cosine = (out.logits_per_image / model.logit_scale.exp()).item()
        expected.append(2.5 * max(cosine, 0.0))
    expected[3] = 1.0
    assert np.allclose(result.per_item.to_numpy(), expected, atol=1e-6, rtol=0)


def published_alignscore(folder, context: str, claim: str) -> float:
    """AlignScore's inference_per_example in nli_sp mode, one example, padded to max_length as published."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from include.metrics.caption_models import sentences

    model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    premise_sents = sentences(context) or [""]
    n_chunk = len(context.strip().split()) // 350 + 1
    n_chunk = max(len(premise_sents) // n_chunk, 1)
    chunks = [" ".join(premise_sents[i:i + n_chunk]) for i in range(0, len(premise_sents), n_chunk)]
    hypo = sentences(claim)
    if not hypo:
        return 0.0
    premises = [c for c in chunks for _ in hypo]
    hypos = [h for _ in chunks for h in hypo]
    with torch.no_grad():
        tokens = tokenizer(premises, hypos, padding="max_length", max_length=512, truncation="only_first", return_tensors="pt")
        probabilities = torch.softmax(model(**tokens).logits.double(), dim=-1)[:, 0]
    return probabilities.view(len(chunks), len(hypo)).max(dim=0).values.mean().item()


def test_alignscore_equals_published_nli_sp(tmp_path, model_dir):
    long_gold = " ".join(["The lesion is in the left lobe."] * 120)  # > 350 words: several chunks
    gold_texts, predictions = GOLD + [long_gold], PREDICTED + ["The lesion is left. It is large."]
    run, gold = caption_inputs(tmp_path, gold_texts, predictions)
    result = score_run("caption-text-csv", ["caption_alignscore"], run, gold, {"model_dir": str(model_dir)})["caption_alignscore"]
    folder = model_dir / catalog.ALIGNSCORE.name
    expected = [published_alignscore(folder, g, p) for g, p in zip(gold_texts, predictions)]
    expected[3] = 1.0
    assert np.allclose(result.per_item.to_numpy(), expected, atol=1e-6, rtol=0)


def test_relevance_is_the_mean_of_its_three_parts_and_both_empty_scores_one(tmp_path, model_dir):
    run, gold = caption_inputs(tmp_path)
    names = ["caption_relevance", "caption_bertscore", "caption_rouge1", "caption_image_similarity"]
    results = score_run("caption-text-csv", names, run, gold, {"model_dir": str(model_dir)})
    parts = pd.concat([results[n].per_item for n in names[1:]], axis=1).mean(axis=1)
    assert np.allclose(results["caption_relevance"].per_item.to_numpy(), parts.to_numpy(), atol=1e-12)
    for name in names:
        assert results[name].per_item.iloc[3] == 1.0


def test_missing_models_and_libraries_are_named(tmp_path, model_dir):
    run, gold = caption_inputs(tmp_path)
    names = ["caption_relevance", "caption_factuality", "caption_umls_f1", "caption_bleurt", "caption_rouge1"]
    results = score_run("caption-text-csv", names, run, gold, {"model_dir": str(tmp_path / "empty")})
    assert results["caption_rouge1"].computed
    assert "model microsoft/deberta-xlarge-mnli not available" in results["caption_relevance"].not_computed
    assert "huggingface-cli download microsoft/deberta-xlarge-mnli" in results["caption_relevance"].not_computed
    assert "model medcat/umls-model-pack not available" in results["caption_umls_f1"].not_computed
    # With the models present, MedCAT (not installed here) and BLEURT (absent) still say why.
    results = score_run("caption-text-csv", names, run, gold, {"model_dir": str(model_dir)})
    assert results["caption_relevance"].computed
    assert results["caption_factuality"].not_computed.startswith("not computed: caption_umls_f1: model medcat/umls-model-pack not available")
    assert "lucadiliello/BLEURT-20-D12 not available" in results["caption_bleurt"].not_computed


def test_images_of_the_staged_test_split_serve_when_the_gold_has_none(tmp_path, model_dir):
    run, gold = caption_inputs(tmp_path)
    expected = score_run("caption-text-csv", ["caption_image_similarity"], run, gold, {"model_dir": str(model_dir)})
    (tmp_path / "gold").rename(tmp_path / "inputs")
    (tmp_path / "gold").mkdir()
    attach_sources(run, tmp_path / "run.zip", tmp_path / "gold", tmp_path / "inputs")
    result = score_run("caption-text-csv", ["caption_image_similarity"], run, gold, {"model_dir": str(model_dir)})
    assert result["caption_image_similarity"].per_item.tolist() == expected["caption_image_similarity"].per_item.tolist()


def test_missing_gold_image_is_named(tmp_path, model_dir):
    run, gold = caption_inputs(tmp_path, images=False)
    result = score_run("caption-text-csv", ["caption_image_similarity"], run, gold, {"model_dir": str(model_dir)})["caption_image_similarity"]
    assert "no test image for 5 caption(s) (e.g. images/img-0.png)" in result.not_computed

"""UMLS-concept F1 (and factuality) with a real MedCAT v2 model pack built by the test's model directory.

The expected values come from MedCAT itself, called as its documentation says (``CAT.load_model_pack``
then ``get_entities``), counted the way the organizers' 2025 ``MedCatScorer`` counts: the distinct
CUIs of each caption, precision = shared / predicted, recall = shared / gold, F1 = 2PR/(P+R), 0 when
either is 0; an image whose two captions are both empty scores 1 without asking MedCAT.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from include.metrics import score_run
from include.models import catalog

GOLD = ["Axial CT of the chest showing a 3 cm mass in the right upper lobe.",
        "Plain radiograph of the left knee showing a fracture of the distal end.",
        "Coronal MRI of the lumbar spine showing multiple small nodules.",
        "",
        "Ultrasound of the abdomen showing no acute abnormality.",
        "No acute abnormality.",
        "Angiography of the brain showing a 12 mm calcified lesion.",
        "Pneumonia of the left lung; asthma."]
PREDICTED = ["CT of the chest showing a mass and a pleural effusion.",
             "Radiograph of the knee, no fracture seen, heart normal.",
             "",
             "",
             "Ultrasound of the pelvis.",
             "Normal study.",
             "Angiography of the brain showing a 12 mm calcified lesion.",
             "The heart."]


def distinct_cuis(cat, text: str) -> list[str]:
    found = []
    for entity in cat.get_entities(text).get("entities", {}).values():  # medcat 2: {} for an empty text
        if entity["cui"] not in found:
            found.append(entity["cui"])
    return found


def organizers_f1(cat, reference: str, prediction: str) -> float:
    if not reference and not prediction:
        return 1.0
    gold, predicted = distinct_cuis(cat, reference), distinct_cuis(cat, prediction)
    shared = sum(1 for cui in gold if cui in predicted)
    precision = shared / len(predicted) if predicted else 0
    recall = shared / len(gold) if gold else 0
    return 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0


def caption_inputs(gold, predicted):
    ids = [f"img-{i}" for i in range(len(gold))]
    return (pd.DataFrame({"ID": ids, "Caption": predicted}), {"captions": pd.DataFrame({"ID": ids, "Caption": gold})})


@pytest.fixture(scope="module")
def medcat(model_dir):
    from medcat.cat import CAT

    return CAT.load_model_pack(str(model_dir / catalog.UMLS.name))


def test_umls_f1_equals_medcat_entities_counted_the_organizers_way(model_dir, medcat):
    run, gold = caption_inputs(GOLD, PREDICTED)
    result = score_run("caption-text-csv", ["caption_umls_f1"], run, gold, {"model_dir": str(model_dir)})["caption_umls_f1"]
    expected = [organizers_f1(medcat, g, p) for g, p in zip(GOLD, PREDICTED)]
    assert np.allclose(result.per_item.to_numpy(), expected, atol=1e-6, rtol=0)
    assert result.value == pytest.approx(np.mean(expected), abs=1e-6)
    # the pack finds concepts and the captions exercise every case: partial overlap, an empty prediction,
    # both empty, captions without any concept (0, as the organizers count), a perfect match
    assert 0 < expected[0] < 1 and expected[2] == 0 and expected[3] == 1 and expected[5] == 0 and expected[6] == 1
    assert len(distinct_cuis(medcat, GOLD[0])) >= 3


def test_a_caption_against_itself_scores_one_and_both_empty_scores_one(model_dir):
    captions = [c for c in GOLD if c and c != "No acute abnormality."] + [""]
    run, gold = caption_inputs(captions, captions)
    result = score_run("caption-text-csv", ["caption_umls_f1"], run, gold, {"model_dir": str(model_dir)})["caption_umls_f1"]
    assert result.per_item.tolist() == [1.0] * len(captions)


def test_factuality_is_the_mean_of_umls_f1_and_alignscore(model_dir):
    run, gold = caption_inputs(GOLD, PREDICTED)
    names = ["caption_factuality", "caption_umls_f1", "caption_alignscore"]
    results = score_run("caption-text-csv", names, run, gold, {"model_dir": str(model_dir)})
    parts = (results["caption_umls_f1"].per_item + results["caption_alignscore"].per_item) / 2
    assert np.allclose(results["caption_factuality"].per_item.to_numpy(), parts.to_numpy(), atol=1e-12)
    assert results["caption_factuality"].breakdown["caption_umls_f1"] == pytest.approx(results["caption_umls_f1"].value)

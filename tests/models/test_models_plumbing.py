"""The models command, the no-torch rule for the default worker, BLEURT, and one model load per process."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from include.models import catalog

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CAMPAIGN = PROJECT_ROOT / "include" / "campaigns" / "imageclef2025.yaml"


def cli(*args, env=None):
    environ = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), **(env or {})}
    return subprocess.run([sys.executable, "-m", "include.cli", *args], capture_output=True, text=True, env=environ,
                          cwd=PROJECT_ROOT, timeout=120)


def test_models_command_lists_every_model_with_presence_size_and_fetch_command(model_dir):
    answer = cli("models", str(CAMPAIGN), "--json", env={"CLEF_MODEL_DIR": str(model_dir)})
    assert answer.returncode == 1, answer.stderr  # BLEURT is not in the test model directory
    document = json.loads(answer.stdout)
    entries = {entry["model"]: entry for entry in document["models"]}
    assert set(entries) == set(catalog.MODELS)
    bert = entries[catalog.BERTSCORE.name]
    assert bert["present"] and bert["size_bytes"] > 80_000_000
    assert bert["tasks"] == ["caption-prediction"] and "caption_relevance" in bert["metrics"]
    assert bert["fetch"] == f'huggingface-cli download microsoft/deberta-xlarge-mnli --local-dir "{model_dir}/microsoft/deberta-xlarge-mnli"'
    assert entries[catalog.UMLS.name]["present"] and entries[catalog.UMLS.name]["size_bytes"] > 0
    assert not entries[catalog.BLEURT.name]["present"] and entries[catalog.BLEURT.name]["size_bytes"] == 0
    assert entries[catalog.UMLS.name]["fetch"].startswith(f'unzip UMLS_PACK.zip -d "{model_dir}/medcat/umls-model-pack"')
    assert entries[catalog.BIOMEDCLIP.name]["tasks"] == ["vqa-gi-synthesis"]
    table = cli("models", str(CAMPAIGN), env={"CLEF_MODEL_DIR": ""})
    assert table.returncode == 1 and "model directory: not set" in table.stdout and "0 present" in table.stdout
    assert "MISSING" in table.stdout and "huggingface-cli download ikim-uk-essen/BiomedCLIP_ViT_patch16_224" in table.stdout


NO_TORCH = r"""
import sys, pandas as pd
from airflow.models.dagbag import DagBag
bag = DagBag(dag_folder="dags")
assert not bag.import_errors, bag.import_errors
from include.campaign import evaluation, results
from include.campaign.config import load_campaign
from include.metrics import score_run
from include.models import parts
task = load_campaign("include/campaigns/imageclef2025.yaml").task("caption-prediction")
assert parts.part_metrics(task, parts.CPU_PART) == ["caption_rouge1", "caption_bleu"]
run = pd.DataFrame({"ID": ["a", "b"], "Caption": ["a chest x-ray", ""]})
gold = {"captions": pd.DataFrame({"ID": ["a", "b"], "Caption": ["chest x-ray", ""]})}
cpu = ["caption_rouge1", "caption_bleu"]
print(score_run("caption-text-csv", cpu, run, gold)["caption_rouge1"].value)
heavy = sorted(m for m in ("torch", "transformers", "bert_score", "open_clip", "bleurt_pytorch", "medcat") if m in sys.modules)
print("HEAVY", heavy)
"""


def test_dag_files_and_the_cpu_scoring_path_never_import_torch(tmp_path):
    environ = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    answer = subprocess.run([sys.executable, "-c", NO_TORCH], capture_output=True, text=True, env=environ, cwd=PROJECT_ROOT, timeout=300)
    assert answer.returncode == 0, answer.stderr[-3000:]
    assert "HEAVY []" in answer.stdout, answer.stdout


def test_metric_parts_split_by_queue():
    from include.campaign.config import load_campaign
    from include.models.parts import metric_parts

    campaign = load_campaign(CAMPAIGN)
    parts = metric_parts(campaign.task("caption-prediction"))
    assert parts["default"] == ["caption_rouge1", "caption_bleu"]
    assert parts["models"][:2] == ["caption_relevance", "caption_factuality"]
    assert metric_parts(campaign.task("vqa-gi-synthesis"))["default"] == []
    assert metric_parts(campaign.task("gans-detection"))["models"] == []


def test_bleurt_equals_bleurt_pytorch_called_as_documented(tmp_path, model_dir, minilm):
    import torch
    from bleurt_pytorch import BleurtForSequenceClassification, BleurtTokenizer

    from include.metrics import score_run
    from include.metrics.captions import preprocess_caption
    from devtools.tiny_models import save_tiny_bleurt

    root = tmp_path / "models"
    save_tiny_bleurt(root / catalog.BLEURT.name, minilm)
    gold = ["Chest X-ray, 2 nodules.", "", "CT of the head"]
    predicted = ["chest x-ray with nodules", "", "head CT scan, normal"]
    run = pd.DataFrame({"ID": ["a", "b", "c"], "Caption": predicted})
    result = score_run("caption-text-csv", ["caption_bleurt"], run, {"captions": pd.DataFrame({"ID": ["a", "b", "c"], "Caption": gold})},
                       {"model_dir": str(root)})["caption_bleurt"]
    folder = root / catalog.BLEURT.name
    model, tokenizer = BleurtForSequenceClassification.from_pretrained(folder).eval(), BleurtTokenizer.from_pretrained(folder)
    references, candidates = [preprocess_caption(c) for c in gold], [preprocess_caption(c) for c in predicted]
    with torch.no_grad():  # the README's way
        inputs = tokenizer(references, candidates, padding="longest", return_tensors="pt")
        expected = model(**inputs).logits.flatten().double().numpy()
    expected[1] = 1.0  # both empty
    assert np.allclose(result.per_item.to_numpy(), expected, atol=1e-6, rtol=0)


def test_each_model_is_loaded_once_per_process(tmp_path, model_dir):
    from include.metrics import score_run
    from include.models import store

    runs = [pd.DataFrame({"ID": ["a", "b"], "Caption": [f"caption {i}", "x"]}) for i in range(3)]
    gold = {"captions": pd.DataFrame({"ID": ["a", "b"], "Caption": ["a caption", "y"]})}
    for run in runs:
        assert score_run("caption-text-csv", ["caption_bertscore"], run, gold, {"model_dir": str(model_dir)})["caption_bertscore"].computed
    key = ("bertscore", str((model_dir / catalog.BERTSCORE.name).resolve()))
    assert store.LOADS[key] == 1

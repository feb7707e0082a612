"""Image synthesis metrics: the organizers' rule (their numbers on fixed features), the objectives, a tiny
ViT's CLS features end to end, the invariants, and what each metric says when an input is missing.

The organizers' rule is the scoring part of ``medvqa/submission_samples/gi-2025/submission_task2.py``
(github.com/SushantGautam/MedVQA, commit 64d7cd0, 2025-05-09).
"""
from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from scipy import linalg
from scipy.spatial.distance import pdist

from include.campaign.validation.gold import GoldError, load_gold
from include.metrics import score_run
from include.metrics.model_inputs import attach_sources
from include.metrics.synthesis import Objective, agreement, diversity, fid, frechet_distance, objective_pairs, objective_table
from include.models import catalog

NAMES = ["synthesis_fidelity", "synthesis_agreement", "synthesis_diversity", "synthesis_fbd"]
FORMAT = "vqa-gi-images-zip"


def direct_fid(x, y) -> float:
    """FID written out with numpy and scipy.linalg.sqrtm, independently of our module."""
    mu1, mu2 = x.mean(0), y.mean(0)
    s1, s2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * linalg.sqrtm(s1 @ s2).real))


def unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


# --- the organizers' numbers ------------------------------------------------------------------------------


def reference_inputs():
    """Six prompts of 10 five-dimensional features, nine real images and a mapping whose references overlap."""
    rng = np.random.default_rng(2025)
    features = {p: rng.normal(loc=0.1 * p, scale=1.0 + 0.1 * p, size=(10, 5)) for p in range(1, 7)}
    real_ids = [f"r{i}" for i in range(9)]
    real = dict(zip(real_ids, rng.normal(0.3, 1.2, size=(9, 5))))
    mapping = {1: real_ids[:6], 2: real_ids[:6], 3: real_ids[3:], 4: real_ids[3:], 5: real_ids[::2], 6: real_ids[::2]}
    return features, real, mapping


# Computed by running the organizers' scoring code (the functions and the loop of submission_task2.py at
# 64d7cd0, unchanged, outside this project) on reference_inputs(): objectives (1, 2) and (3, 4) only.
ORGANIZERS = {"fidelity": 152.59842580965497, "agreement": 0.04615781392787811,
              "diversity": 1.33317422113885, "fbd": 3.4543168304200456}
ORGANIZERS_PER_OBJECTIVE = {  # FID A vs real, FID B vs real, agreement, diversity A, diversity B
    "prompt0001+prompt0002": (5.533253670674872, 5.489252625407503, -0.004332687754091017, 1.4051177142092286, 1.3981890330833056),
    "prompt0003+prompt0004": (4.18444448804751, 7.006724612209184, 0.09664831560984723, 1.3175503439760103, 1.2118397932868552),
}


def test_our_scores_are_the_organizers_numbers():
    features, real, mapping = reference_inputs()
    objectives = [Objective(f"prompt{a:04d}+prompt{b:04d}", features[a], features[b], np.stack([real[i] for i in mapping[a]]))
                  for a, b in objective_pairs(features)]
    table, fbd = objective_table(objectives)
    assert list(table.index) == list(ORGANIZERS_PER_OBJECTIVE)
    for label, (fid_a, fid_b, agree, div_a, div_b) in ORGANIZERS_PER_OBJECTIVE.items():
        row = table.loc[label]
        assert (row["fid_a"], row["fid_b"], row["agreement"]) == pytest.approx((fid_a, fid_b, agree), rel=1e-9)
        assert row["diversity"] == pytest.approx((div_a + div_b) / 2, rel=1e-9)
    assert table["fidelity"].mean() == pytest.approx(ORGANIZERS["fidelity"], rel=1e-9)
    assert table["agreement"].mean() == pytest.approx(ORGANIZERS["agreement"], rel=1e-9)
    assert table["diversity"].mean() == pytest.approx(ORGANIZERS["diversity"], rel=1e-9)
    assert fbd == pytest.approx(ORGANIZERS["fbd"], rel=1e-9)


def test_objectives_pair_consecutive_prompts_and_published_keeps_the_first_half():
    assert objective_pairs(range(1, 7)) == [(1, 2), (3, 4)]  # range(0, 6 // 2, 2): i = 0, 2
    assert objective_pairs(range(1, 5)) == [(1, 2)]
    assert objective_pairs(range(1, 11)) == [(1, 2), (3, 4), (5, 6)]
    assert objective_pairs([11, 5, 2, 9]) == [(2, 5)]  # by number, whatever the numbers
    assert objective_pairs(range(1, 7), "all") == [(1, 2), (3, 4), (5, 6)]
    assert objective_pairs(range(1, 8), "all") == [(1, 2), (3, 4), (5, 6)]  # an odd last prompt has no partner
    assert objective_pairs([1]) == [] and objective_pairs([1, 2]) == [(1, 2)]
    with pytest.raises(ValueError, match="objective_pairs"):
        objective_pairs(range(1, 5), "every")


def test_fid_equals_scipy_a_set_against_itself_is_zero_and_the_set_scores_are_bounded():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(40, 6)), rng.normal(1.0, 2.0, size=(30, 6))
    assert fid(x, y) == pytest.approx(direct_fid(x, y), abs=1e-6)
    assert abs(fid(x, x)) < 1e-6
    assert frechet_distance(np.zeros(2), np.eye(2), np.ones(2), np.eye(2)) == pytest.approx(2.0)
    assert agreement(x, x * 3.0) == pytest.approx((unit(x) @ unit(x).T).mean())  # scale-free: features are normalised
    assert diversity(x * 5.0) == pytest.approx(pdist(unit(x)).mean()) and 0.0 < diversity(x) <= 2.0
    assert diversity(np.repeat(x[:1], 4, axis=0)) == pytest.approx(0.0, abs=1e-12)


# --- end to end on a tiny ViT -----------------------------------------------------------------------------


def save_tiny_vit(folder, seed=4):
    """A randomly initialised transformers ViT (the real model's type) with a 32-pixel image processor."""
    import torch
    from transformers import ViTConfig, ViTImageProcessor, ViTModel

    torch.manual_seed(seed)
    config = ViTConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
                       image_size=32, patch_size=8)
    ViTModel(config).eval().save_pretrained(folder)
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def vit_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("vit-models")
    save_tiny_vit(root / catalog.BIOMEDCLIP.name)
    return root


def png(rng, size=36) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def synthesis_inputs(tmp_path, prompts=4, real=8, mapping=True):
    """A run of 10 images per prompt (written out of order), real images real00..., and real_mapping.json
    giving prompts 1-2 the first six real images and 3-4 the last six."""
    rng = np.random.default_rng(11)
    gold_dir = tmp_path / "gold"
    (gold_dir / "real").mkdir(parents=True)
    for i in range(real):
        (gold_dir / "real" / f"real{i:02d}.png").write_bytes(png(rng))
    ids = [f"real{i:02d}" for i in range(real)]
    if mapping:
        (gold_dir / "real_mapping.json").write_text(json.dumps({str(p): ids[:6] if p <= 2 else ids[-6:] for p in range(1, prompts + 1)}))
    pd.DataFrame({"prompt_id": [f"prompt{p:04d}" for p in range(1, prompts + 1)], "prompt": "a polyp"}).to_csv(gold_dir / "prompts.csv", index=False)
    rows = []
    with zipfile.ZipFile(tmp_path / "run.zip", "w") as archive:
        for p in range(prompts, 0, -1):
            for i in range(10, 0, -1):
                member = f"prompt{p:04d}_img{i:04d}.png"
                archive.writestr(member, png(rng))
                rows.append({"member": member, "prompt_id": f"prompt{p:04d}", "image_index": i, "width": 36, "height": 36})
    run = pd.DataFrame(rows)
    attach_sources(run, tmp_path / "run.zip", gold_dir)
    return run, load_gold(FORMAT, gold_dir)


def vit_cls_features(folder, images) -> np.ndarray:
    """The organizers' features, written out: the model's last_hidden_state[:, 0, :] on RGB images, one batch."""
    import torch
    from transformers import AutoImageProcessor, ViTModel

    model, processor = ViTModel.from_pretrained(folder).eval(), AutoImageProcessor.from_pretrained(folder)
    with torch.no_grad():
        pixels = processor(images=[im.convert("RGB") for im in images], return_tensors="pt")["pixel_values"]
        return model(pixel_values=pixels).last_hidden_state[:, 0, :].double().numpy()


def expected_scores(tmp_path, run, folder, pairs):
    """The organizers' formulas on independently computed features."""
    from sklearn.metrics.pairwise import cosine_similarity
    from sklearn.preprocessing import normalize

    with zipfile.ZipFile(tmp_path / "run.zip") as archive:
        generated = dict(zip(run["member"], vit_cls_features(folder, [Image.open(io.BytesIO(archive.read(m))) for m in run["member"]])))
    real_paths = sorted((tmp_path / "gold" / "real").iterdir())
    real = dict(zip([p.stem for p in real_paths], vit_cls_features(folder, [Image.open(p) for p in real_paths])))
    mapping = json.loads((tmp_path / "gold" / "real_mapping.json").read_text())
    by_prompt = {p: np.stack([generated[f"prompt{p:04d}_img{i:04d}.png"] for i in range(1, 11)]) for p in range(1, 5)}
    fids, agreements, diversities, every_generated, every_real = [], [], [], [], []
    for a, b in pairs:
        A, B, ref = by_prompt[a], by_prompt[b], np.stack([real[i] for i in mapping[str(a)]])
        fids.append((direct_fid(A, ref) + direct_fid(B, ref)) / 2)
        agreements.append(cosine_similarity(normalize(A), normalize(B)).mean())
        diversities += [pdist(normalize(A)).mean(), pdist(normalize(B)).mean()]
        every_generated += [A, B]
        every_real.append(ref)
    return {"synthesis_fidelity": np.mean(1000 / (1 + np.array(fids))), "synthesis_agreement": np.mean(agreements),
            "synthesis_diversity": np.mean(diversities),
            "synthesis_fbd": direct_fid(np.concatenate(every_generated), np.concatenate(every_real))}


@pytest.mark.parametrize("pairs, objectives", [("published", [(1, 2)]), ("all", [(1, 2), (3, 4)])])
def test_synthesis_metrics_follow_the_organizers_rule_on_vit_cls_features(tmp_path, vit_dir, pairs, objectives):
    run, gold = synthesis_inputs(tmp_path)
    results = score_run(FORMAT, NAMES, run, gold, {"model_dir": str(vit_dir), "objective_pairs": pairs})
    expected = expected_scores(tmp_path, run, vit_dir / catalog.BIOMEDCLIP.name, objectives)
    for name in NAMES:
        assert results[name].not_computed is None, results[name].not_computed
        assert results[name].value == pytest.approx(expected[name], rel=1e-5, abs=1e-6), name
    labels = [f"prompt{a:04d}+prompt{b:04d}" for a, b in objectives]
    assert list(results["synthesis_fidelity"].per_item.index) == labels


def test_a_two_tower_clip_folder_gives_its_vision_towers_cls_token(tmp_path, model_dir):
    """The session's tiny CLIPModel under the BiomedCLIP name: features are CLIPVisionModel's last_hidden_state[:, 0]."""
    import torch
    from transformers import AutoImageProcessor, CLIPVisionModel

    from include.models.loaders import vision_token_model

    folder = model_dir / catalog.BIOMEDCLIP.name
    images = [Image.open(io.BytesIO(png(np.random.default_rng(i)))) for i in range(3)]
    with torch.no_grad():
        pixels = AutoImageProcessor.from_pretrained(folder)(images=[im.convert("RGB") for im in images], return_tensors="pt")["pixel_values"]
        expected = CLIPVisionModel.from_pretrained(folder)(pixel_values=pixels).last_hidden_state[:, 0, :].double().numpy()
    assert vision_token_model(catalog.BIOMEDCLIP.name, folder).cls_features(images) == pytest.approx(expected, abs=1e-6)


def test_without_weights_mapping_or_real_images_each_metric_says_why(tmp_path, vit_dir):
    run, gold = synthesis_inputs(tmp_path / "no-mapping", mapping=False)
    results = score_run(FORMAT, NAMES, run, gold, {"model_dir": str(tmp_path / "none")})
    for name in NAMES:
        assert f"model {catalog.BIOMEDCLIP.name} not available" in results[name].not_computed
    results = score_run(FORMAT, NAMES, run, gold, {"model_dir": str(vit_dir)})
    for name in ("synthesis_fidelity", "synthesis_fbd"):
        assert "needs real_mapping.json" in results[name].not_computed
    for name in ("synthesis_agreement", "synthesis_diversity"):  # they need no real image
        assert results[name].not_computed is None and np.isfinite(results[name].value)
    run, gold = synthesis_inputs(tmp_path / "few-real", real=6)
    (tmp_path / "few-real" / "gold" / "real" / "real05.png").unlink()
    results = score_run(FORMAT, NAMES, run, gold, {"model_dir": str(vit_dir)})
    assert "names real images not under real/: real05" in results["synthesis_fbd"].not_computed


def test_the_gold_mapping_reads_as_prompt_and_image_rows_and_refuses_other_shapes(tmp_path):
    _, gold = synthesis_inputs(tmp_path)
    mapping = gold["real_mapping"]
    assert list(mapping.columns) == ["prompt", "image"] and len(mapping) == 24
    assert mapping["prompt"].tolist()[:7] == [1] * 6 + [2] and mapping["image"].iloc[0] == "real00"
    for text, message in (('["real00"]', "JSON object whose values are lists"), ('{"one": ["real00"]}', "whole number")):
        (tmp_path / "gold" / "real_mapping.json").write_text(text)
        with pytest.raises(GoldError, match=message):
            load_gold(FORMAT, tmp_path / "gold")

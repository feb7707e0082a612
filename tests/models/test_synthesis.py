"""Image synthesis metrics: FID as scipy computes it, the per-prompt rules, and the invariants."""
from __future__ import annotations

import io
import zipfile

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from scipy import linalg

from include.metrics import score_run
from include.metrics.model_inputs import attach_sources
from include.metrics.synthesis import fid, frechet_distance
from include.models import catalog

NAMES = ["synthesis_fidelity", "synthesis_agreement", "synthesis_diversity", "synthesis_fbd"]


def direct_fid(x, y) -> float:
    """FID written out with numpy and scipy.linalg.sqrtm, independently of our module."""
    mu1, mu2 = x.mean(0), y.mean(0)
    s1, s2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    covmean = linalg.sqrtm(s1.dot(s2))
    if np.iscomplexobj(covmean):
        covmean = covmean.real
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2 - 2 * covmean))


def test_fid_equals_scipy_and_a_set_against_itself_is_zero():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(40, 6)), rng.normal(1.0, 2.0, size=(30, 6))
    assert fid(x, y) == pytest.approx(direct_fid(x, y), abs=1e-6)
    assert abs(fid(x, x)) < 1e-6
    assert frechet_distance(np.zeros(2), np.eye(2), np.ones(2), np.eye(2)) == pytest.approx(2.0)


def png(rng) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (36, 36, 3), dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def synthesis_inputs(tmp_path, prompts=3, per_prompt=10, real=24):
    rng = np.random.default_rng(11)
    gold_dir = tmp_path / "gold"
    (gold_dir / "real").mkdir(parents=True)
    for i in range(real):
        (gold_dir / "real" / f"real{i:03d}.png").write_bytes(png(rng))
    rows = []
    with zipfile.ZipFile(tmp_path / "run.zip", "w") as archive:
        for p in range(1, prompts + 1):
            for i in range(per_prompt, 0, -1):  # written out of order: sets follow the image number
                member = f"prompt{p:04d}_img{i:04d}.png"
                archive.writestr(member, png(rng))
                rows.append({"member": member, "prompt_id": f"prompt{p:04d}", "image_index": i, "width": 36, "height": 36})
    run = pd.DataFrame(rows)
    attach_sources(run, tmp_path / "run.zip", gold_dir)
    return run, {"prompts": pd.DataFrame({"prompt_id": [f"prompt{p:04d}" for p in range(1, prompts + 1)]})}


def clip_features(folder, images) -> np.ndarray:
    import torch
    from transformers import AutoImageProcessor, CLIPModel

    model, processor = CLIPModel.from_pretrained(folder).eval(), AutoImageProcessor.from_pretrained(folder)
    with torch.no_grad():  # one batch, as the metric's (float32 batches of different sizes differ by ~1e-7)
        pixels = processor(images=[im.convert("RGB") for im in images], return_tensors="pt")["pixel_values"]
        return model.get_image_features(pixel_values=pixels).double().numpy()


def test_synthesis_metrics_follow_the_rules(tmp_path, model_dir):
    from scipy.spatial.distance import pdist

    run, gold = synthesis_inputs(tmp_path)
    results = score_run("vqa-gi-images-zip", NAMES, run, gold, {"model_dir": str(model_dir)})
    folder = model_dir / catalog.BIOMEDCLIP.name
    with zipfile.ZipFile(tmp_path / "run.zip") as archive:
        images = [Image.open(io.BytesIO(archive.read(m))) for m in run["member"]]
    features = dict(zip(run["member"], clip_features(folder, images)))
    real = clip_features(folder, [Image.open(p) for p in sorted((tmp_path / "gold" / "real").iterdir())])
    fidelity, agreement, diversity, everything = [], [], [], []
    for prompt in sorted(run["prompt_id"].unique()):
        mine = run[run["prompt_id"] == prompt].sort_values("image_index")
        a = np.stack([features[m] for m in mine["member"][:5]])
        b = np.stack([features[m] for m in mine["member"][5:]])
        everything += [a, b]
        fidelity.append(1000 / (1 + (direct_fid(a, real) + direct_fid(b, real)) / 2))
        na, nb = a / np.linalg.norm(a, axis=1, keepdims=True), b / np.linalg.norm(b, axis=1, keepdims=True)
        agreement.append((na @ nb.T).mean())
        diversity.append((pdist(a).mean() + pdist(b).mean()) / 2)
    assert results["synthesis_fidelity"].value == pytest.approx(np.mean(fidelity), abs=1e-6)
    assert results["synthesis_agreement"].value == pytest.approx(np.mean(agreement), abs=1e-6)
    assert results["synthesis_diversity"].value == pytest.approx(np.mean(diversity), abs=1e-6)
    assert results["synthesis_fbd"].value == pytest.approx(direct_fid(np.concatenate(everything), real), abs=1e-6)
    assert list(results["synthesis_fidelity"].per_item.index) == ["prompt0001", "prompt0002", "prompt0003"]


def test_without_weights_or_real_images_each_metric_says_why(tmp_path, model_dir):
    run, gold = synthesis_inputs(tmp_path, prompts=1, real=0)
    results = score_run("vqa-gi-images-zip", NAMES, run, gold, {"model_dir": str(tmp_path / "none")})
    for name in NAMES:
        assert f"model {catalog.BIOMEDCLIP.name} not available" in results[name].not_computed
    results = score_run("vqa-gi-images-zip", NAMES, run, gold, {"model_dir": str(model_dir)})
    assert "real images under real/" in results["synthesis_fbd"].not_computed

"""MEDVQA-GI image synthesis (task 2): fidelity, agreement, diversity and FBD on BiomedCLIP features.

Features are the BiomedCLIP image embeddings (open_clip) of every generated image of the run and of
every real image of the gold folder (``<gold>/real/*.png|jpg``). A run gives 10 images per prompt;
set A is the first half of a prompt's images by image number and set B the second half.

- FID(X, Y) = |mu_X - mu_Y|^2 + tr(S_X) + tr(S_Y) - 2 tr(sqrtm(S_X S_Y)) with ``scipy.linalg.sqrtm``,
  real part; means and covariances (``numpy.cov``, unbiased) of float64 features.
- per prompt: fidelity = 1000 / (1 + mean(FID(A, real), FID(B, real))); agreement = mean cosine
  similarity over the pairs (a in A, b in B); diversity = the mean of the two sets' mean pairwise
  Euclidean distance between features. Each metric's value is the mean over prompts.
- FBD = FID of all generated images against all real images (lower is better; corpus-level).
"""
from __future__ import annotations

import io
import zipfile
from functools import lru_cache
from typing import Any, Mapping

import numpy as np
import pandas as pd

from include.metrics.model_inputs import GOLD_DIR, RUN_PATH, InputMissing, model_directory, reports_missing, source
from include.metrics.result import MetricResult
from include.models import catalog

FIDELITY_SCALE = 1000.0
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def frechet_distance(mean_a, cov_a, mean_b, cov_b) -> float:
    """The Fréchet distance between two Gaussians (the FID formula), sqrtm's real part."""
    from scipy import linalg

    root = linalg.sqrtm(np.asarray(cov_a) @ np.asarray(cov_b))
    root = np.real(root)
    difference = np.asarray(mean_a) - np.asarray(mean_b)
    return float(difference @ difference + np.trace(cov_a) + np.trace(cov_b) - 2.0 * np.trace(root))


def statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    features = np.asarray(features, dtype=np.float64)
    return features.mean(axis=0), np.atleast_2d(np.cov(features, rowvar=False))


def fid(features_a: np.ndarray, features_b: np.ndarray) -> float:
    return frechet_distance(*statistics(features_a), *statistics(features_b))


def mean_pairwise_distance(features: np.ndarray) -> float:
    from scipy.spatial.distance import pdist

    return float(pdist(np.asarray(features, dtype=np.float64)).mean()) if len(features) > 1 else 0.0


def mean_cross_cosine(features_a: np.ndarray, features_b: np.ndarray) -> float:
    a = features_a / np.linalg.norm(features_a, axis=1, keepdims=True)
    b = features_b / np.linalg.norm(features_b, axis=1, keepdims=True)
    return float((a @ b.T).mean())


def split_sets(images: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Set A (first half by image number) and set B (the rest) of one prompt's images."""
    ordered = images.sort_values("image_index")
    half = (len(ordered) + 1) // 2
    return ordered.iloc[:half], ordered.iloc[half:]


# --- features --------------------------------------------------------------------------------------------


def _model(options):
    from include.models.loaders import image_text_model

    folder = model_directory(options).require(catalog.BIOMEDCLIP.name)
    return image_text_model(catalog.BIOMEDCLIP.name, folder)


def run_features(run: pd.DataFrame, options) -> np.ndarray:
    """Features of every image of the run, row for row."""
    from PIL import Image

    path = source(run, RUN_PATH)
    if path is None or not path.is_file():
        raise InputMissing("the run file is not known to the metric (score through include.campaign.evaluation)")
    model = _model(options)
    with zipfile.ZipFile(path) as archive:
        images = [Image.open(io.BytesIO(archive.read(member))) for member in run["member"]]
    return model.image_features(images)


def real_features(run: pd.DataFrame, options) -> np.ndarray:
    folder = source(run, GOLD_DIR)
    real = folder / "real" if folder else None
    paths = sorted(p for p in real.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES) if real and real.is_dir() else []
    if len(paths) < 2:
        raise InputMissing("the gold folder needs the real images under real/ (at least 2 PNG or JPEG files) to compute FID")
    return _real_features_cached(str(folder), tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in paths),
                                 model_directory(options).root)


@lru_cache(maxsize=4)
def _real_features_cached(folder: str, files: tuple, model_root) -> np.ndarray:
    """The real images' features, computed once per gold content and model in this process."""
    from PIL import Image

    from include.models.store import ModelDirectory

    model = _model({"model_dir": ModelDirectory.of(model_root).root})
    return model.image_features([Image.open(path) for path, _, _ in files])


# --- the metrics ------------------------------------------------------------------------------------------


def prompt_scores(run: pd.DataFrame, gold, options) -> tuple[pd.DataFrame, float]:
    """Per prompt: fid_a, fid_b, fidelity, agreement, diversity; and the FBD of the whole run."""
    if run.empty:
        raise InputMissing("the run holds no image")
    features = run_features(run.reset_index(drop=True), options)
    real = real_features(run, options)
    rows = {}
    table = run.reset_index(drop=True)
    for prompt, images in table.groupby("prompt_id", sort=True):
        set_a, set_b = split_sets(images)
        a, b = features[set_a.index.to_numpy()], features[set_b.index.to_numpy()]
        fid_a, fid_b = fid(a, real), fid(b, real)
        rows[prompt] = {"fid_a": fid_a, "fid_b": fid_b,
                        "fidelity": FIDELITY_SCALE / (1.0 + (fid_a + fid_b) / 2.0),
                        "agreement": mean_cross_cosine(a, b),
                        "diversity": (mean_pairwise_distance(a) + mean_pairwise_distance(b)) / 2.0}
    return pd.DataFrame.from_dict(rows, orient="index"), fid(features, real)


_LAST: dict[str, Any] = {}


def _scores(run, gold, options):
    """One feature pass per run even when all four metrics are asked for (kept for the last run only)."""
    key = (id(run), source(run, RUN_PATH), source(run, GOLD_DIR), str(options.get("model_dir")), len(run))
    if _LAST.get("key") != key:
        _LAST.clear()
        _LAST.update(key=key, value=prompt_scores(run, gold, options))
    return _LAST["value"]


def _per_prompt(run, gold, options, column: str) -> MetricResult:
    table, _ = _scores(run, gold, options)
    per_prompt = table[column].astype(float).rename(column)
    return MetricResult(value=float(per_prompt.mean()), per_item=per_prompt)


@reports_missing
def synthesis_fidelity(run, gold, options: Mapping[str, Any]) -> MetricResult:
    return _per_prompt(run, gold, options, "fidelity")


@reports_missing
def synthesis_agreement(run, gold, options: Mapping[str, Any]) -> MetricResult:
    return _per_prompt(run, gold, options, "agreement")


@reports_missing
def synthesis_diversity(run, gold, options: Mapping[str, Any]) -> MetricResult:
    return _per_prompt(run, gold, options, "diversity")


@reports_missing
def synthesis_fbd(run, gold, options: Mapping[str, Any]) -> MetricResult:
    _, fbd = _scores(run, gold, options)
    return MetricResult(value=float(fbd))

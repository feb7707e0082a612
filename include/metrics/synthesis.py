"""MEDVQA-GI image synthesis (task 2): fidelity, agreement, diversity and FBD, as the organizers score them.

The rule is the scoring part of the organizers' participant script (``medvqa`` package,
github.com/SushantGautam/MedVQA, ``medvqa/submission_samples/gi-2025/submission_task2.py`` at commit
64d7cd0, 2025-05-09), re-implemented here:

- features: the CLS token (``last_hidden_state[:, 0, :]``) of BiomedCLIP's ViT image tower
  (``ikim-uk-essen/BiomedCLIP_ViT_patch16_224``, transformers) for every generated and real image;
  FID uses them as they are, agreement and diversity after L2-normalising each row.
- objectives: the prompts sorted by number are paired (p1, p2), (p3, p4), ... (two phrasings of one
  objective); set A = the 10 images of the first prompt, set B = the 10 of the second. The published
  loop pairs only the prompts of the first half of that list (``objective_pairs: published``, the
  default, so that our numbers are the leaderboard's); ``objective_pairs: all`` pairs every prompt.
- the real reference of an objective: the real images the gold ``real_mapping.json`` lists for its
  first prompt's number (image id = file name without extension under ``real/``).
- per objective: fid = mean(FID(A, ref), FID(B, ref)); fidelity = 1000 / (1 + fid); agreement = mean
  cosine over every pair (a in A, b in B); diversity = mean of the mean pairwise Euclidean distance
  within A and within B. Each metric's value is the mean over objectives.
- FBD = FID(every image of the scored objectives, the references of the objectives concatenated
  with their repeats).
- FID(X, Y) = |mu_X - mu_Y|^2 + tr(S_X + S_Y - 2 sqrtm(S_X S_Y)) with ``scipy.linalg.sqrtm``'s real
  part and ``numpy.cov`` (unbiased) of float64 features.

The organizers' output rounds each score to 2 decimals; we keep full precision.
"""
from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd

from include.metrics.model_inputs import GOLD_DIR, RUN_PATH, InputMissing, model_directory, reports_missing, source
from include.metrics.result import MetricResult
from include.models import catalog

FIDELITY_SCALE = 1000.0
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
OBJECTIVE_PAIRS = ("published", "all")
REAL_MAPPING = "real_mapping"  # the gold key of real_mapping.json (prompt number -> real image ids)


# --- the formulas -----------------------------------------------------------------------------------------


def frechet_distance(mean_a, cov_a, mean_b, cov_b) -> float:
    """The Fréchet distance between two Gaussians (the FID formula), sqrtm's real part."""
    from scipy import linalg

    root = np.real(linalg.sqrtm(np.asarray(cov_a) @ np.asarray(cov_b)))
    difference = np.asarray(mean_a) - np.asarray(mean_b)
    return float(difference @ difference + np.trace(np.asarray(cov_a) + np.asarray(cov_b) - 2.0 * root))


def statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    features = np.asarray(features, dtype=np.float64)
    return features.mean(axis=0), np.atleast_2d(np.cov(features, rowvar=False))


def fid(features_a: np.ndarray, features_b: np.ndarray) -> float:
    return frechet_distance(*statistics(features_a), *statistics(features_b))


def unit_rows(features: np.ndarray) -> np.ndarray:
    from sklearn.preprocessing import normalize

    return normalize(np.asarray(features, dtype=np.float64), axis=1)


def diversity(features: np.ndarray) -> float:
    """Mean pairwise Euclidean distance between the L2-normalised features of one set."""
    from scipy.spatial.distance import pdist

    return float(pdist(unit_rows(features)).mean())


def agreement(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """Mean cosine similarity over every pair (a in A, b in B)."""
    return float((unit_rows(features_a) @ unit_rows(features_b).T).mean())


def objective_pairs(prompt_numbers, pairs: str = "published") -> list[tuple[int, int]]:
    """(A, B) prompt numbers of each objective: consecutive prompts by number; ``published`` keeps the
    pairs that start in the first half of the sorted list, as the organizers' loop does."""
    if pairs not in OBJECTIVE_PAIRS:
        raise ValueError(f"objective_pairs must be one of {', '.join(OBJECTIVE_PAIRS)}, not {pairs!r}")
    ordered = sorted(prompt_numbers)
    stop = len(ordered) // 2 if pairs == "published" else len(ordered) - 1
    return [(ordered[i], ordered[i + 1]) for i in range(0, stop, 2)]


@dataclass
class Objective:
    """One objective's feature sets A and B, and its real reference (None when the gold has none)."""

    label: str
    a: np.ndarray
    b: np.ndarray
    real: np.ndarray | None = None

    def scores(self) -> dict[str, float]:
        scores = {"agreement": agreement(self.a, self.b), "diversity": (diversity(self.a) + diversity(self.b)) / 2.0}
        if self.real is not None:
            fid_a, fid_b = fid(self.a, self.real), fid(self.b, self.real)
            scores.update(fid_a=fid_a, fid_b=fid_b, fidelity=FIDELITY_SCALE / (1.0 + (fid_a + fid_b) / 2.0))
        return scores


def objective_table(objectives: list[Objective]) -> tuple[pd.DataFrame, float | None]:
    """Per objective: agreement, diversity and (with real references) fid_a, fid_b, fidelity; and the
    FBD over all of them (None without real references)."""
    if not objectives:
        raise InputMissing("no objective to score: the run needs at least two prompts (an objective pairs two)")
    table = pd.DataFrame.from_dict({o.label: o.scores() for o in objectives}, orient="index")
    if any(o.real is None for o in objectives):
        return table, None
    generated = np.concatenate([np.concatenate([o.a, o.b]) for o in objectives])
    return table, fid(generated, np.concatenate([o.real for o in objectives]))


# --- inputs -----------------------------------------------------------------------------------------------


def prompt_number(prompt_id: str) -> int:
    match = re.fullmatch(r"prompt0*([0-9]+)", str(prompt_id))
    if not match:
        raise InputMissing(f"prompt id {prompt_id!r} is not prompt{{NNNN}}")
    return int(match.group(1))


def real_mapping(gold) -> dict[int, list[str]]:
    """Prompt number -> the ids of its real reference images, from the gold ``real_mapping.json``."""
    table = (gold or {}).get(REAL_MAPPING)
    if table is None or table.empty:
        raise InputMissing("the gold folder needs real_mapping.json (prompt number -> ids of the real images "
                           "under real/) to compute fidelity and FBD")
    mapping: dict[int, list[str]] = {}
    for prompt, image in zip(table["prompt"], table["image"]):
        mapping.setdefault(int(prompt), []).append(str(image))
    return mapping


def _vision_model(options):
    from include.models.loaders import vision_token_model

    folder = model_directory(options).require(catalog.BIOMEDCLIP.name)
    return vision_token_model(catalog.BIOMEDCLIP.name, folder)


def run_features(run: pd.DataFrame, options) -> np.ndarray:
    """Features of every image of the run, row for row."""
    from PIL import Image

    path = source(run, RUN_PATH)
    if path is None or not path.is_file():
        raise InputMissing("the run file is not known to the metric (score through include.campaign.evaluation)")
    model = _vision_model(options)
    with zipfile.ZipFile(path) as archive:
        images = [Image.open(io.BytesIO(archive.read(member))) for member in run["member"]]
    return model.cls_features(images)


def real_features(run: pd.DataFrame, image_ids, options) -> dict[str, np.ndarray]:
    """Image id -> features of the real images ``image_ids`` (files ``<gold>/real/<id>.png|jpg``)."""
    folder = source(run, GOLD_DIR)
    real = folder / "real" if folder else None
    files = {p.stem: p for p in sorted(real.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES} if real and real.is_dir() else {}
    wanted = sorted(set(image_ids))
    missing = [image_id for image_id in wanted if image_id not in files]
    if missing:
        raise InputMissing(f"real_mapping.json names real images not under real/: {', '.join(missing[:5])}"
                           + (f" and {len(missing) - 5} more" if len(missing) > 5 else ""))
    paths = [files[image_id] for image_id in wanted]
    marks = tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in paths)
    return dict(zip(wanted, _real_features_cached(marks, model_directory(options).root)))


@lru_cache(maxsize=4)
def _real_features_cached(files: tuple, model_root) -> np.ndarray:
    """The real images' features, computed once per file set and model in this process."""
    from PIL import Image

    return _vision_model({"model_dir": model_root}).cls_features([Image.open(path) for path, _, _ in files])


def objectives(run: pd.DataFrame, gold, options) -> tuple[list[Objective], str | None]:
    """The scored objectives of a run (sets A and B, each one's real reference) and, when the real
    references cannot be had, why (agreement and diversity do not need them)."""
    if run.empty:
        raise InputMissing("the run holds no image")
    table = run.reset_index(drop=True)
    numbers = table["prompt_id"].map(prompt_number).to_numpy()
    pairs = objective_pairs(set(numbers), options.get("objective_pairs", "published"))
    features = run_features(table, options)
    result = [Objective(f"prompt{a:04d}+prompt{b:04d}", features[numbers == a], features[numbers == b]) for a, b in pairs]
    try:
        references = real_references(run, gold, [a for a, _ in pairs], options)
    except InputMissing as reason:
        return result, str(reason)
    for objective, reference in zip(result, references):
        objective.real = reference
    return result, None


def real_references(run, gold, prompts: list[int], options) -> list[np.ndarray]:
    """The real reference features of each prompt number of ``prompts`` (the A prompt of an objective)."""
    mapping = real_mapping(gold)
    absent = [number for number in prompts if number not in mapping]
    if absent:
        raise InputMissing(f"real_mapping.json has no real images for prompt {', '.join(map(str, absent[:5]))}")
    real = real_features(run, [image for number in prompts for image in mapping[number]], options)
    references = [np.stack([real[image] for image in mapping[number]]) for number in prompts]
    for number, reference in zip(prompts, references):
        if len(reference) < 2:
            raise InputMissing(f"real_mapping.json lists {len(reference)} real image for prompt {number}: FID needs at least 2")
    return references


# --- the metrics ------------------------------------------------------------------------------------------


_LAST: dict[str, Any] = {}


def _scores(run, gold, options):
    """One feature pass per run even when all four metrics are asked for (kept for the last run only)."""
    key = (id(run), id(gold), source(run, RUN_PATH), source(run, GOLD_DIR), str(options.get("model_dir")),
           options.get("objective_pairs"), len(run))
    if _LAST.get("key") != key:
        _LAST.clear()
        found, no_reference = objectives(run, gold, options)
        _LAST.update(key=key, value=(*objective_table(found), no_reference))
    return _LAST["value"]


def _per_objective(run, gold, options, column: str) -> MetricResult:
    table, _, no_reference = _scores(run, gold, options)
    if column not in table:
        raise InputMissing(no_reference)
    per_objective = table[column].astype(float).rename(column)
    return MetricResult(value=float(per_objective.mean()), per_item=per_objective)


@reports_missing
def synthesis_fidelity(run, gold, options: Mapping[str, Any]) -> MetricResult:
    return _per_objective(run, gold, options, "fidelity")


@reports_missing
def synthesis_agreement(run, gold, options: Mapping[str, Any]) -> MetricResult:
    return _per_objective(run, gold, options, "agreement")


@reports_missing
def synthesis_diversity(run, gold, options: Mapping[str, Any]) -> MetricResult:
    return _per_objective(run, gold, options, "diversity")


@reports_missing
def synthesis_fbd(run, gold, options: Mapping[str, Any]) -> MetricResult:
    _, fbd, no_reference = _scores(run, gold, options)
    if fbd is None:
        raise InputMissing(no_reference)
    return MetricResult(value=float(fbd))

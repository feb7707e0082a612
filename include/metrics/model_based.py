"""Metrics that need a model (BERTScore, BLEURT, AlignScore, image-caption similarity, FID ...).

They run on the ``models`` worker queue. Their weights cannot be downloaded on our machines, so
a metric looks for each model it needs under a model directory (option ``model_dir``, else the
environment variable ``CLEF_MODEL_DIR``), at ``<model_dir>/<model name>``. Without the weights
it reports "not computed: model X not available"; computing with the weights is a later issue,
and until then a metric whose weights are present says so rather than inventing a number.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

from include.metrics.result import MetricResult

MODEL_DIR_VARIABLE = "CLEF_MODEL_DIR"


def model_directory(options: Mapping[str, Any]) -> Path | None:
    """Where model weights live, from the options or the environment; None when unset."""
    configured = options.get("model_dir") or os.environ.get(MODEL_DIR_VARIABLE)
    return Path(configured) if configured else None


def missing_models(model_names: list[str], options: Mapping[str, Any]) -> list[str]:
    """The models among ``model_names`` whose weights are not in the model directory."""
    root = model_directory(options)
    if root is None:
        return list(model_names)
    return [name for name in model_names if not _has_files(root / name)]


def _has_files(path: Path) -> bool:
    return path.is_dir() and any(p.is_file() for p in path.rglob("*"))


def model_metric(metric_name: str, options: Mapping[str, Any]) -> MetricResult:
    """The outcome of a model-based metric on this machine: always a reason, never a number."""
    from include.metrics.registry import get_metric

    needed = [name.strip() for name in (get_metric(metric_name).needs_model or "").split("+")]
    absent = missing_models(needed, options)
    if absent:
        return MetricResult.missing(f"model {' and '.join(absent)} not available")
    return MetricResult.missing(f"{metric_name} is not implemented yet (model weights found in "
                                f"{model_directory(options)}); it is computed in a later release")


def caption_relevance(run, gold, options: Mapping[str, Any]) -> MetricResult:
    return model_metric("caption_relevance", options)


def caption_bertscore(run, gold, options: Mapping[str, Any]) -> MetricResult:
    return model_metric("caption_bertscore", options)


def caption_image_similarity(run, gold, options: Mapping[str, Any]) -> MetricResult:
    return model_metric("caption_image_similarity", options)


def caption_factuality(run, gold, options: Mapping[str, Any]) -> MetricResult:
    return model_metric("caption_factuality", options)


def caption_umls_f1(run, gold, options: Mapping[str, Any]) -> MetricResult:
    return model_metric("caption_umls_f1", options)


def caption_alignscore(run, gold, options: Mapping[str, Any]) -> MetricResult:
    return model_metric("caption_alignscore", options)


def caption_bleurt(run, gold, options: Mapping[str, Any]) -> MetricResult:
    return model_metric("caption_bleurt", options)


def synthesis_fidelity(run, gold, options: Mapping[str, Any]) -> MetricResult:
    return model_metric("synthesis_fidelity", options)


def synthesis_agreement(run, gold, options: Mapping[str, Any]) -> MetricResult:
    return model_metric("synthesis_agreement", options)


def synthesis_diversity(run, gold, options: Mapping[str, Any]) -> MetricResult:
    return model_metric("synthesis_diversity", options)


def synthesis_fbd(run, gold, options: Mapping[str, Any]) -> MetricResult:
    return model_metric("synthesis_fbd", options)

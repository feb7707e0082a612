"""Metrics that need a model (BERTScore, BLEURT, AlignScore, image-caption similarity, FID ...).

They run on the ``models`` worker queue. Their weights cannot be downloaded on our machines, so
a metric looks for each model it needs under a model directory (option ``model_dir``: the campaign
file's, else the deployment's ``CLEF_MODEL_DIR`` that scoring passes in), at ``<model_dir>/<model name>``. Without the weights
it reports "not computed: model X not available"; computing with the weights is a later issue,
and until then a metric whose weights are present says so rather than inventing a number.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from include.metrics.result import MetricResult

def model_directory(options: Mapping[str, Any]) -> Path | None:
    """Where model weights live (the ``model_dir`` option); None when unset."""
    configured = options["model_dir"]
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


def model_metric_function(metric_name: str):
    """The registry's ``(run, gold, options)`` function for one model-based metric."""

    def compute(run, gold, options: Mapping[str, Any]) -> MetricResult:
        return model_metric(metric_name, options)

    compute.__name__ = compute.__qualname__ = metric_name
    return compute


caption_relevance = model_metric_function("caption_relevance")
caption_bertscore = model_metric_function("caption_bertscore")
caption_image_similarity = model_metric_function("caption_image_similarity")
caption_factuality = model_metric_function("caption_factuality")
caption_umls_f1 = model_metric_function("caption_umls_f1")
caption_alignscore = model_metric_function("caption_alignscore")
caption_bleurt = model_metric_function("caption_bleurt")
synthesis_fidelity = model_metric_function("synthesis_fidelity")
synthesis_agreement = model_metric_function("synthesis_agreement")
synthesis_diversity = model_metric_function("synthesis_diversity")
synthesis_fbd = model_metric_function("synthesis_fbd")

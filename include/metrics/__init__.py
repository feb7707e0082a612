"""Official scores of every ImageCLEF 2025 task, computed from the canonical run and gold tables.

``score_run`` is the one entry point the pipeline calls; ``registry`` lists every metric with
its metadata. Importing this package is cheap: family modules (and scikit-learn, NLTK,
sacrebleu, rouge-score, jiwer) load only when a metric of that family is computed.
"""
from __future__ import annotations

from typing import Any, Mapping

from include.metrics.registry import METRICS, MetricSpec, get_metric, metric_names, metrics_for_format
from include.metrics.result import MetricResult

__all__ = [
    "METRICS", "MetricResult", "MetricSpec", "get_metric", "metric_names", "metrics_for_format",
    "score_run", "resolve_options",
]


def resolve_options(format_name: str, options: Mapping[str, Any] | None) -> dict[str, Any]:
    """Defaults of every metric of the format, overridden by ``options``; unknown keys refused."""
    defaults: dict[str, Any] = {}
    for name in metrics_for_format(format_name):
        defaults.update(METRICS[name].options)
    unknown = sorted(set(options or {}) - set(defaults))
    if unknown:
        known = ", ".join(sorted(defaults)) or "none"
        raise ValueError(f"unknown metric option(s) {', '.join(unknown)} for run format "
                         f"{format_name!r}; known options: {known}")
    return {**defaults, **(options or {})}


def score_run(format_name: str, metric_names: list[str] | tuple[str, ...], run, gold,
              options: Mapping[str, Any] | None = None) -> dict[str, MetricResult]:
    """Compute each named metric on one validated run; results keep the order of ``metric_names``.

    ``run`` and ``gold`` are the canonical structures of docs/format-contract.md. A metric that
    does not apply to ``format_name`` is a ``ValueError``; an unknown name a ``KeyError``.
    """
    specs = [get_metric(name) for name in metric_names]
    for spec in specs:
        if format_name not in spec.formats:
            raise ValueError(f"metric {spec.name!r} does not apply to run format {format_name!r}; "
                             f"it applies to {', '.join(spec.formats)}")
    resolved = resolve_options(format_name, options)
    results: dict[str, MetricResult] = {}
    for spec in specs:
        metric_options = {key: resolved[key] for key in spec.options}
        results[spec.name] = spec.compute(run, gold, metric_options)
    return results

"""Official scores of every ImageCLEF 2025 task, computed from the canonical run and gold tables.

``score_run`` is the one entry point the pipeline calls; ``registry`` lists every metric with
its metadata. Importing this package is cheap: family modules (and scikit-learn, NLTK,
sacrebleu, rouge-score, jiwer) load only when a metric of that family is computed.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

from include.metrics.registry import METRICS, MetricSpec, get_metric, metric_names, metrics_for_format
from include.metrics.result import MetricResult

__all__ = [
    "METRICS", "MetricResult", "MetricSpec", "get_metric", "metric_names", "metrics_for_format",
    "score_run", "resolve_options", "option_problems",
]


def option_problems(format_name: str, options: Mapping[str, Any] | None,
                    metric_names: Sequence[str] | None = None) -> list[tuple[str, str]]:
    """``(key, message)`` for every entry of ``options`` that no metric of the task would read.

    ``options`` is a task's ``metric_options``: option names written flat apply to every metric
    that reads them; a metric name maps to options for that metric alone. ``metric_names`` are
    the task's metrics (default: every metric of the format).
    """
    names = list(metric_names) if metric_names is not None else metrics_for_format(format_name)
    readable = sorted({option for name in names for option in METRICS[name].options})
    problems: list[tuple[str, str]] = []
    for key, value in (options or {}).items():
        if key in METRICS:
            problems += [(key, message) for message in _grouped_problems(key, value, names)]
        elif key not in readable:
            problems.append((key, f"unknown metric option(s) {key} for run format {format_name!r} and metrics "
                                  f"{', '.join(names)}; known options: {', '.join(readable) or 'none'} "
                                  f"(or a metric name holding options for that metric alone)"))
    return problems


def _grouped_problems(metric: str, value: Any, names: Sequence[str]) -> list[str]:
    if metric not in names:
        return [f"options grouped under metric {metric}, which this task does not compute "
                f"(its metrics: {', '.join(names)})"]
    if not isinstance(value, Mapping):
        return [f"options grouped under metric {metric} must be a mapping of option: value, not {value!r}"]
    known = sorted(METRICS[metric].options)
    unknown = sorted(set(value) - set(known))
    if unknown:
        return [f"unknown metric option(s) {', '.join(map(str, unknown))} under {metric}; "
                f"known options of {metric}: {', '.join(known) or 'none'}"]
    return []


def resolve_options(format_name: str, options: Mapping[str, Any] | None,
                    metric_names: Sequence[str] | None = None) -> dict[str, dict[str, Any]]:
    """Per metric, the options it computes with: its registry defaults, then the options written
    flat that it reads, then the options grouped under its own name. Unknown options are refused
    (``ValueError`` listing every problem and the known options)."""
    names = list(metric_names) if metric_names is not None else metrics_for_format(format_name)
    problems = option_problems(format_name, options, names)
    if problems:
        raise ValueError("; ".join(message for _, message in problems))
    options = options or {}
    resolved: dict[str, dict[str, Any]] = {}
    for name in names:
        spec = METRICS[name]
        flat = {key: options[key] for key in spec.options if key in options}
        resolved[name] = {**spec.options, **flat, **dict(options.get(name) or {})}
    return resolved


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
    resolved = resolve_options(format_name, options, [spec.name for spec in specs])
    results: dict[str, MetricResult] = {}
    for spec in specs:
        results[spec.name] = spec.compute(run, gold, resolved[spec.name])
    return results

"""What a model-based metric needs besides the canonical tables: the model directory and the files.

``model_dir`` is a metric option (the scoring code fills it from the campaign context, which reads
``CLEF_MODEL_DIR``); the run file, the gold folder and the test inputs travel on the run table's
``attrs`` (``run_path``, ``gold_dir``, ``inputs_dir``), set by :func:`attach_sources`, because image metrics read pixels the
canonical tables do not hold. A missing model or library is a :class:`MetricResult` that says which.
"""
from __future__ import annotations

from collections import OrderedDict
from functools import wraps
from pathlib import Path
from typing import Any, Callable, Mapping

from include.metrics.result import MetricResult

RUN_PATH, GOLD_DIR, INPUTS_DIR = "run_path", "gold_dir", "inputs_dir"


def attach_sources(run, run_path, gold_dir, inputs_dir=None):
    """Record where the run file, the gold folder and the test inputs (the staged test split, e.g.
    its ``images/``) are, for metrics that read images."""
    attrs = getattr(run, "attrs", None)
    if attrs is not None:
        attrs[RUN_PATH], attrs[GOLD_DIR] = str(run_path), str(gold_dir)
        if inputs_dir:
            attrs[INPUTS_DIR] = str(inputs_dir)
    return run


def source(run, key: str) -> Path | None:
    value = (getattr(run, "attrs", None) or {}).get(key)
    return Path(value) if value else None


def model_directory(options: Mapping[str, Any]):
    from include.models.store import ModelDirectory

    return ModelDirectory.of(options.get("model_dir"))


def reports_missing(function: Callable[..., MetricResult]) -> Callable[..., MetricResult]:
    """A metric that answers 'not computed: <why>' when its model, its library or its inputs are missing."""

    @wraps(function)
    def compute(run, gold, options) -> MetricResult:
        from include.models.loaders import ModelUnusable
        from include.models.store import ModelMissing

        try:
            return function(run, gold, options)
        except (ModelMissing, ModelUnusable, InputMissing) as reason:
            return MetricResult.missing(str(reason))

    return compute


_RECENT: OrderedDict = OrderedDict()


def recent(key: tuple, compute: Callable[[], Any], keep: int = 4):
    """``compute()`` once for the same inputs: a run's relevance and its parts share one model pass."""
    if key in _RECENT:
        _RECENT.move_to_end(key)
        return _RECENT[key]
    value = _RECENT[key] = compute()
    while len(_RECENT) > keep:
        _RECENT.popitem(last=False)
    return value


class InputMissing(Exception):
    """An input the metric reads (a gold image, the run file) is not there; the text says which."""

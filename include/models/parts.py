"""A run's metrics in two parts: the CPU part on the ``default`` queue, the model part on ``models``.

The scoring DAG scores every run's CPU metrics (and its validation report) on the ``default`` queue,
and, for a task with metrics that need a model (the registry's ``queue``), the same runs' model
metrics on the ``models`` queue, many runs per mapped instance so that each model is loaded once per
worker process (:mod:`include.models.store`). The model part writes under ``models/`` of the run's
folder; :func:`join_parts` puts both parts of a run back into one summary for the leaderboard.

The evaluation package (``include/campaign/evaluation/``: scoring, finalizing, records) calls this
module through a few hooks only: which metrics a part computes (:func:`part_metrics`), the model directory option
(:func:`options_for`), the test inputs the model part reads (:func:`inputs_copy`), the model part's
files (:func:`model_part_objects`) and the join (:func:`join_parts`). Nothing here imports torch.
"""
from __future__ import annotations

import hashlib
import math
import os
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from include.campaign.layout import relative_path, segment
from include.metrics.registry import DEFAULT_QUEUE, METRICS, MODELS_QUEUE

CPU_PART, MODELS_PART = "cpu", "models"
MODELS_FOLDER = "models/"  # under a run's prefix: the model metrics' metrics.json and per_item.csv
# Runs per mapped instance of the models queue, at least: each instance is one task process that loads
# each model once, so many runs share one load (up to the instance limit, when there are more runs).
MODEL_RUNS_PER_INSTANCE = 25
# Test inputs the model metrics read besides the gold (image-caption similarity embeds each test image).
MODEL_INPUT_FOLDERS = {"caption-text-csv": "images/"}
_INPUT_COPIES: dict[tuple[str, str], Path] = {}
_INPUT_LOCK = threading.Lock()


def metric_parts(task) -> dict[str, list[str]]:
    """The task's metrics by worker queue: ``default`` (CPU) and ``models`` (need a model), task order kept."""
    parts: dict[str, list[str]] = {DEFAULT_QUEUE: [], MODELS_QUEUE: []}
    for name in task.metrics:
        parts[METRICS[name].queue].append(name)
    return parts


def has_model_part(task) -> bool:
    """Whether the task's runs are also scored on the ``models`` queue."""
    return bool(metric_parts(task)[MODELS_QUEUE])


def part_metrics(task, part: str | None) -> list[str]:
    """The metrics one part computes: all the task's (``None``), the CPU ones or the model ones."""
    if part is None:
        return list(task.metrics)
    if part not in (CPU_PART, MODELS_PART):
        raise ValueError(f"unknown scoring part {part!r}; expected {CPU_PART!r} or {MODELS_PART!r}")
    return metric_parts(task)[MODELS_QUEUE if part == MODELS_PART else DEFAULT_QUEUE]


def model_instances(runs: int, limit: int, per_instance: int = MODEL_RUNS_PER_INSTANCE) -> int:
    """How many mapped instances score ``runs`` runs' model part: each at least ``per_instance`` runs (all
    of them when fewer), and no more than ``limit`` instances."""
    return max(1, min(limit, runs // max(1, per_instance)))


def options_for(task_options: Mapping[str, Any], task, names: list[str], model_dir: str | Path | None) -> tuple[dict, dict]:
    """(options to check, options the metrics ``names`` read): the task's options, plus the model
    directory when the task has a model metric and the campaign file does not set one."""
    options = dict(task_options)
    if model_dir and any(METRICS[name].needs_model for name in task.metrics) and "model_dir" not in options:
        options["model_dir"] = str(model_dir)
    readable = {option for name in names for option in METRICS[name].options}
    read = {key: value for key, value in options.items() if key in names or (key not in METRICS and key in readable)}
    return options, read


def inputs_copy(ctx, task) -> Path | None:
    """The staged test split's input folder the task's model metrics read (``images/``), downloaded once
    per content and process; None when the format reads none or nothing is staged there."""
    folder = MODEL_INPUT_FOLDERS.get(task.run_format)
    if folder is None:
        return None
    prefix = ctx.layout.staging(task.id, "test") + folder
    listing = [info for info in ctx.store.list_objects(prefix) if not info.key.endswith("/")]
    if not listing:
        return None
    fingerprint = hashlib.sha256("\n".join(f"{i.key}\t{i.size}\t{i.etag}" for i in listing).encode()).hexdigest()
    key = (f"{ctx.store.settings.endpoint_url}|{ctx.store.bucket}|{prefix}", fingerprint)
    with _INPUT_LOCK:
        copy = _INPUT_COPIES.get(key)
        if copy is None or not copy.is_dir():
            copy = _INPUT_COPIES[key] = _download_inputs(ctx, task, folder, prefix, listing, fingerprint)
    return copy


def _download_inputs(ctx, task, folder: str, prefix: str, listing, fingerprint: str) -> Path:
    base = Path(tempfile.gettempdir()) / "clef-inputs" / segment(ctx.campaign.id) / segment(task.id) / fingerprint[:24]
    if (base / folder).is_dir():  # another process on this worker downloaded it already
        return base
    base.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="inputs-", dir=base.parent))
    for info in listing:
        target = staging / folder / relative_path(prefix, info.key, "staged input")
        target.parent.mkdir(parents=True, exist_ok=True)
        ctx.store.download(info.key, str(target))
    try:
        os.replace(staging, base)  # atomic: a folder is either complete or absent
    except OSError:  # a concurrent process won the race with the same content
        shutil.rmtree(staging, ignore_errors=True)
    return base


def model_part_objects(summary: Mapping[str, Any], evaluation, per_item_csv: Callable[[Mapping[str, Any]], str],
                       dump_json: Callable[[Any], bytes]) -> dict[str, tuple[bytes, str]]:
    """The model part's files, by name under the run's ``models/`` folder: metrics.json and per_item.csv."""
    detail = {name: {"value": summary["metrics"][name], "not_computed": summary["not_computed"].get(name),
                     "breakdown": {k: _finite(v) for k, v in (result.breakdown or {}).items()},
                     "higher_is_better": METRICS[name].higher_is_better, "needs_model": METRICS[name].needs_model}
              for name, result in evaluation.results.items()}
    document = {**{k: summary[k] for k in ("team", "run", "sha256", "verdict", "reason")}, "metrics": detail}
    objects = {MODELS_FOLDER + "metrics.json": (dump_json(document), "application/json")}
    if evaluation.results:
        objects[MODELS_FOLDER + "per_item.csv"] = (per_item_csv(evaluation.results).encode("utf-8"), "text/csv; charset=utf-8")
    return objects


def _finite(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def join_parts(task, summaries: Iterable[Mapping[str, Any] | None]) -> list[dict]:
    """One summary per run: the CPU part with the model part's metrics joined in, in the task's metric order.

    A valid run whose model part is absent (its models-queue instance failed) or not valid gets every
    model metric as not computed, with that reason; a model part without its CPU part is dropped (the
    run is then missing, as when any scoring instance dies).
    """
    cpu, models = {}, {}
    for summary in summaries:
        if isinstance(summary, Mapping) and summary.get("team"):
            (models if summary.get("part") == MODELS_PART else cpu)[(summary["team"], summary["run"])] = summary
    model_metrics = metric_parts(task)[MODELS_QUEUE]
    return [_join_one(task, dict(base), models.get(key), model_metrics) for key, base in cpu.items()]


def _join_one(task, base: dict, extra: Mapping[str, Any] | None, model_metrics: list[str]) -> dict:
    metrics, not_computed = dict(base.get("metrics") or {}), dict(base.get("not_computed") or {})
    if base.get("verdict") == "valid" and model_metrics and not set(model_metrics) <= set(metrics):
        if extra is not None and extra.get("verdict") == "valid":
            metrics.update(extra.get("metrics") or {})
            not_computed.update(extra.get("not_computed") or {})
        else:
            why = (extra.get("reason") if extra else "") or "its models-queue scoring did not finish"
            for name in model_metrics:
                metrics[name], not_computed[name] = None, f"not computed: {why}"
    base["metrics"] = {name: metrics.get(name) for name in task.metrics if name in metrics}
    base["not_computed"] = {name: not_computed[name] for name in base["metrics"] if name in not_computed}
    return base


def item_table_names() -> tuple[str, str]:
    """The per-item tables of a run's folder: the CPU part's, then the model part's."""
    return ("per_item.csv", MODELS_FOLDER + "per_item.csv")

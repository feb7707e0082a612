"""Scoring: validate and score collected runs into versioned, immutable evaluations with lineage.

One scoring of a task is one evaluation version, ``evaluations/<task>/<version>/``::

    version.json                     allocated first, create-once: reason, who, when, request id
    runs/<team>/<run>/report.json    the validation report (report.txt: its plain-text rendering), for
                                     each run scored in this version
    runs/<team>/<run>/metrics.json   every metric's value, or why it was not computed
    runs/<team>/<run>/per_item.csv   per-item scores, one column per metric (valid runs only)
    evaluation.json                  every run of the task: its summary, the version that scored it and
                                     the prefix of its files (``files``)
    diff.json                        what changed against the previous version (scores, verdicts, ranks)
    lineage.json                     written last (create-once): run and gold sha256, metric code
                                     version, reason, who; its presence marks the version complete

and its leaderboard exports under ``leaderboards/<task>/<version>/`` (private until published).

A re-score of one team or run allocates a new version and carries the other runs forward from the
previous complete version, so every version is a complete evaluation of the task; a complete
version is never written again. The DAG's mapped tasks call :func:`score_one` once per run; the
``score`` command and :func:`score_one` share :func:`evaluate`, so a participant's local score
equals the official one.
"""
from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import io
import json
import logging
import math
import os
import re
import shutil
import subprocess
import tempfile
import threading
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path, PurePosixPath
from typing import Any, Iterable, Mapping


from include.campaign import leaderboard as leaderboards
from include.campaign.config import Task
from include.campaign.layout import segment
from include.campaign.store import dump_json

PROJECT_ROOT = Path(__file__).resolve().parents[2]
logger = logging.getLogger(__name__)
VERSION_NAME = re.compile(r"^v(\d{4,})$")
VERSION_FILE, EVALUATION_FILE, DIFF_FILE, LINEAGE_FILE = "version.json", "evaluation.json", "diff.json", "lineage.json"
LEADERBOARD_EXPORTS = {
    "csv": ("leaderboard.csv", "text/csv; charset=utf-8"),
    "json": ("leaderboard.json", "application/json"),
    "html": ("leaderboard.html", "text/html; charset=utf-8"),
    "latex": ("leaderboard.tex", "application/x-tex; charset=utf-8"),
    "figure_pdf": (leaderboards.FIGURE_PDF, "application/pdf"),
}
# What a run's summary holds (extra keys a caller adds, e.g. for XCom labels, are not kept).
SUMMARY_KEYS = ("team", "run", "key", "sha256", "verdict", "reason", "metrics", "not_computed", "gold_fingerprint", "scored_in", "files",
                "per_item_sha256")
# Scores closer than this are the same score: re-running identical code must not report a change.
SCORE_TOLERANCE = 1e-12
LIBRARIES = ("numpy", "pandas", "scikit-learn", "sacrebleu", "rouge-score", "jiwer", "nltk", "ir-measures",
             "pytrec-eval-terrier", "great-expectations", "torch", "transformers", "bert-score", "bleurt-pytorch")
# The code whose change changes a score: reported as "dirty" in the lineage when edited since the commit.
SCORING_CODE = ("include/metrics", "include/models", "include/campaign/validation", "include/schemas", "include/campaign/scoring.py")


class ScoringError(RuntimeError):
    """A whole-task problem (no manifest, no gold, unknown team, finalized version); the text says what to fix."""


# --- the evaluation of one run file (shared with the `score` command) -----------------------------


@dataclass
class RunEvaluation:
    """One run's validation report and, when it is valid, its metric results."""

    verdict: str  # valid | invalid | error
    report: dict[str, Any]
    text: str
    results: dict[str, Any] = field(default_factory=dict)  # metric name -> MetricResult
    reason: str = ""


def task_metric_options(task: Task) -> dict[str, Any]:
    """The task's ``metric_options`` as written: option names flat (for every metric that reads
    them) or grouped under a metric name (for that metric only); ``include.metrics`` resolves them."""
    return dict(task.metric_options)


def evaluate(task: Task, run_path: str | Path, gold_dir: str | Path, limits: Any = None,
             metrics: Iterable[str] | None = None, model_dir: str | Path | None = None,
             inputs_dir: str | Path | None = None) -> RunEvaluation:
    """Validate one run file against the gold folder and score it if valid. Never raises for bad run content.

    ``metrics`` (default: all the task's) is the part to compute: the ``default`` queue computes the
    CPU metrics, the ``models`` queue the model metrics (``include/models/parts.py``), with weights
    under ``model_dir`` and test images under ``inputs_dir``. A broken gold folder is the organizers'
    problem and raises :class:`ScoringError`.
    """
    from include.campaign.validation import GoldError, validate_run
    from include.metrics import resolve_options, score_run
    from include.metrics.model_inputs import attach_sources
    from include.models.parts import options_for

    names = list(task.metrics) if metrics is None else list(metrics)
    try:
        options, read = options_for(task_metric_options(task), task, names, model_dir)
        resolve_options(task.run_format, options, task.metrics)
    except ValueError as exc:  # the campaign file's fault, the same for every run
        raise ScoringError(f"task {task.id}: metric_options in the campaign file: {exc}") from None
    missing = _missing_gold(task, Path(gold_dir))
    if missing:
        raise ScoringError(f"task {task.id}: the gold folder {gold_dir} lacks {'; '.join(fix for _, fix in missing)}")
    try:
        outcome = validate_run(task.run_format, Path(run_path), Path(gold_dir), limits, task.id, task.format_options)
    except GoldError as exc:
        raise ScoringError(f"task {task.id}: the gold folder cannot be read: {exc}") from None
    except Exception as exc:  # a validator fault on one run must not stop the other runs
        return _error_evaluation("validation", exc)
    if outcome.report.get("verdict") != "valid":
        return RunEvaluation("invalid", outcome.report, outcome.text, reason=invalid_reason(outcome.report))
    try:
        attach_sources(outcome.run, run_path, gold_dir, inputs_dir)  # image metrics read the files themselves
        results = score_run(task.run_format, names, outcome.run, outcome.gold, read)
    except Exception as exc:
        return _error_evaluation("scoring", exc, outcome.report, outcome.text)
    return RunEvaluation("valid", outcome.report, outcome.text, results)


def _missing_gold(task: Task, folder: Path) -> list[tuple[str, str]]:
    """The required gold files (for the task's metrics) absent from ``folder``; none when it is no folder
    (the validator reports that)."""
    from include.campaign.validation.gold import missing_gold_files

    if not folder.is_dir():
        return []
    present = [path.relative_to(folder).as_posix() for path in folder.rglob("*") if path.is_file()]
    return missing_gold_files(task.run_format, present, task.metrics)


def _error_evaluation(stage: str, exc: Exception, report: dict | None = None, text: str = "") -> RunEvaluation:
    logger.exception("%s failed on one run", stage)
    message = f"{stage} failed: {type(exc).__name__}: {exc}"
    report = dict(report or {})
    report.update({"verdict": "error", "error": message})
    return RunEvaluation("error", report, (text + "\n" if text else "") + message + "\n", reason=message)


def invalid_reason(report: Mapping[str, Any]) -> str:
    """One line naming the broken rules of an invalid run, for leaderboards and summaries."""
    rules: list[str] = []
    for finding in report.get("rules_broken") or []:
        if isinstance(finding, Mapping):
            rules.append(str(finding.get("rule") or finding.get("description") or ""))
        else:
            rules.append(str(finding))
    rules = [rule for rule in rules if rule]
    if not rules:
        return "invalid: see the validation report"
    return f"invalid: {len(rules)} rule(s) broken ({', '.join(rules[:5])}{', ...' if len(rules) > 5 else ''})"


# --- the gold folder, downloaded once per process and content ---------------------------------------


@dataclass(frozen=True)
class GoldCopy:
    folder: Path  # the gold folder to hand to validation
    files: dict[str, str]  # path inside the folder -> sha256
    fingerprint: str  # sha256 over the listing (key, size, etag): changes when any gold object changes


_GOLD_COPIES: dict[tuple[str, str], GoldCopy] = {}
_GOLD_LOCK = threading.Lock()


def gold_copy(ctx, task_id: str) -> GoldCopy:
    """The task's test gold as a local folder, downloaded once per content (cached by fingerprint)."""
    prefix = ctx.layout.gold(task_id, "test")
    listing = [info for info in ctx.store.list_objects(prefix) if not info.key.endswith("/")]
    if not listing:
        raise ScoringError(f"task {task_id}: no gold under s3://{ctx.store.bucket}/{prefix}; stage the test ground truth there first")
    fingerprint = hashlib.sha256("\n".join(f"{i.key}\t{i.size}\t{i.etag}" for i in listing).encode()).hexdigest()
    cache_key = (f"{ctx.store.settings.endpoint_url}|{ctx.store.bucket}|{prefix}", fingerprint)
    with _GOLD_LOCK:
        copy = _GOLD_COPIES.get(cache_key)
        if copy is None or not copy.folder.is_dir():
            copy = _download_gold(ctx, task_id, prefix, listing, fingerprint)
            _GOLD_COPIES[cache_key] = copy
    return copy


def _download_gold(ctx, task_id: str, prefix: str, listing, fingerprint: str) -> GoldCopy:
    base = Path(tempfile.gettempdir()) / "clef-gold" / segment(ctx.campaign.id) / segment(task_id) / fingerprint[:24]
    index = base / "files.json"
    if index.is_file():  # another process on this worker downloaded it already
        return GoldCopy(base / "gold", json.loads(index.read_text()), fingerprint)
    staging = Path(tempfile.mkdtemp(prefix="gold-", dir=_ensure_dir(base.parent)))
    files: dict[str, str] = {}
    for info in listing:
        relative = _relative_gold_path(prefix, info.key)
        target = staging / "gold" / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        ctx.store.download(info.key, str(target))
        files[relative] = file_sha256(target)
    (staging / "files.json").write_text(json.dumps(files, sort_keys=True))
    try:
        os.replace(staging, base)  # atomic: a folder is either complete or absent
    except OSError:  # a concurrent process won the race; its copy has the same content
        shutil.rmtree(staging, ignore_errors=True)
    return GoldCopy(base / "gold", files, fingerprint)


def _ensure_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def _relative_gold_path(prefix: str, key: str) -> str:
    relative = PurePosixPath(key[len(prefix):])
    if relative.is_absolute() or any(part in ("", ".", "..") for part in relative.parts):
        raise ScoringError(f"gold object {key!r} has an unsafe name; rename it")
    return str(relative)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1024 * 1024), b""):
            digest.update(chunk)
    return digest.hexdigest()


# --- planning and versions ---------------------------------------------------------------------------


def plan(ctx, task_id: str, teams: Iterable[str] | str | None = None, runs: Iterable[str] | str | None = None) -> list[dict]:
    """The collected runs to score, from the collection manifest, optionally filtered.

    ``teams`` and ``runs`` are lists or comma/space separated text (an empty value means all); a run
    is named ``run`` (that run of every selected team) or ``team/run``. Names that match nothing are
    refused with the list of known ones, so a typo in the form never scores nothing silently.
    """
    _task(ctx, task_id)
    collected = read_manifest(ctx, task_id).get("collected") or []
    wanted_teams, wanted_runs = _names(teams), _names(runs)
    _refuse_unknown(task_id, "team", wanted_teams, {entry["team"] for entry in collected})
    _refuse_unknown(task_id, "run", wanted_runs, {entry["run"] for entry in collected} | {f"{e['team']}/{e['run']}" for e in collected})
    items = []
    for entry in collected:
        if wanted_teams and entry["team"] not in wanted_teams:
            continue
        if wanted_runs and entry["run"] not in wanted_runs and f"{entry['team']}/{entry['run']}" not in wanted_runs:
            continue
        items.append({"team": entry["team"], "run": entry["run"], "key": entry["key"], "sha256": entry.get("sha256")})
    return sorted(items, key=lambda item: (item["team"], item["run"]))


def read_manifest(ctx, task_id: str) -> dict:
    key = ctx.layout.collection_manifest(task_id)
    if not ctx.store.exists(key):
        raise ScoringError(f"task {task_id}: no collection manifest at s3://{ctx.store.bucket}/{key}; runs are scored after collection")
    return ctx.store.get_json(key)


def _names(value: Iterable[str] | str | None) -> set[str]:
    if value is None:
        return set()
    items = re.split(r"[\s,]+", value) if isinstance(value, str) else [str(v).strip() for v in value]
    return {item for item in items if item}


def _refuse_unknown(task_id: str, kind: str, wanted: set[str], known: set[str]) -> None:
    unknown = sorted(wanted - known)
    if unknown:
        choices = ", ".join(sorted(known)) or "none collected"
        raise ScoringError(f"task {task_id}: no collected {kind} named {', '.join(unknown)}; collected {kind}s: {choices}")


# --- mapped instances: which queue, how many runs each (docs/scoring-batches.md) ----------------------

# At most this many mapped scoring instances per queue and DAG run (CLEF_SCORING_MAX_INSTANCES, and
# never more than Airflow's [core] max_map_length): more runs share an instance.
DEFAULT_MAX_INSTANCES = 256


def max_instances(map_length_limit: int, configured: str | int | None = None) -> int:
    """How many mapped instances one scoring task may have: the configured target, within Airflow's limit."""
    target = int(configured) if configured not in (None, "") else DEFAULT_MAX_INSTANCES
    if target < 1 or map_length_limit < 1:
        raise ScoringError(f"the number of mapped scoring instances must be at least 1 (got {target}, max_map_length {map_length_limit})")
    return min(target, map_length_limit)


def batches(items: list[dict], limit: int) -> list[dict]:
    """Consecutive runs in at most ``limit`` batches of ``ceil(len(items) / limit)`` runs (the last may be
    shorter); each batch is ``{"label": ..., "runs": [...]}``, labelled with its first and last run."""
    if not items:
        return []
    size = max(1, math.ceil(len(items) / limit))
    return [{"label": _batch_label(items[start:start + size]), "runs": items[start:start + size]} for start in range(0, len(items), size)]


def _batch_label(runs: list[dict]) -> str:
    first, last = runs[0], runs[-1]
    name = lambda item: f"{item['team']}/{item['run']}"  # noqa: E731
    if len(runs) == 1:
        return f"{first['task']}: {name(first)}"
    tail = name(last) if last["task"] == first["task"] else f"{last['task']}: {name(last)}"
    return f"{first['task']}: {name(first)} … {tail} ({len(runs)} runs)"


def new_version(ctx, task_id: str, reason: str, triggered_by: str, request_id: str | None = None) -> str:
    """Allocate the next evaluation version (v0001, v0002, ...) with a create-once write.

    Two concurrent scorings never share a version: the loser of a create-once race moves on to
    the next number. ``request_id`` (e.g. the DAG run id) makes a retried allocation return the
    version it allocated before instead of a new one.
    """
    _task(ctx, task_id)
    if not str(reason or "").strip():
        raise ScoringError(f"task {task_id}: a scoring needs a reason (what changed, why re-score)")
    existing = versions(ctx, task_id)
    if request_id:
        for version in reversed(existing):
            if _version_record(ctx, task_id, version).get("request_id") == request_id:
                return version
    number = max((int(VERSION_NAME.match(v).group(1)) for v in existing), default=0) + 1
    record = {"task": task_id, "reason": str(reason).strip(), "triggered_by": triggered_by or "unknown",
              "created_at": ctx.now().isoformat(), "request_id": request_id}
    for _ in range(1000):
        version = f"v{number:04d}"
        if ctx.store.create_json_once(ctx.layout.evaluations(task_id, version) + VERSION_FILE, {**record, "version": version}):
            return version
        number += 1
    raise ScoringError(f"task {task_id}: could not allocate an evaluation version after 1000 attempts")


def versions(ctx, task_id: str) -> list[str]:
    """Every allocated version of the task, oldest first."""
    names = [name for name in ctx.store.list_folders(ctx.layout.evaluations(task_id)) if VERSION_NAME.match(name)]
    return sorted(names, key=lambda name: int(VERSION_NAME.match(name).group(1)))


def is_complete(ctx, task_id: str, version: str) -> bool:
    return ctx.store.exists(ctx.layout.evaluations(task_id, version) + LINEAGE_FILE)


def latest_version(ctx, task_id: str, before: str | None = None) -> str | None:
    """The newest complete version (optionally older than ``before``), or None."""
    limit = int(VERSION_NAME.match(before).group(1)) if before else None
    for version in reversed(versions(ctx, task_id)):
        if limit is not None and int(VERSION_NAME.match(version).group(1)) >= limit:
            continue
        if is_complete(ctx, task_id, version):
            return version
    return None


def _version_record(ctx, task_id: str, version: str) -> dict:
    key = ctx.layout.evaluations(task_id, version) + VERSION_FILE
    if not ctx.store.exists(key):
        raise ScoringError(f"task {task_id}: evaluation version {version} was never allocated (call new_version first)")
    return ctx.store.get_json(key)


def _task(ctx, task_id: str) -> Task:
    try:
        return ctx.campaign.task(task_id)
    except KeyError as exc:
        raise ScoringError(str(exc.args[0])) from None


# --- scoring one run ---------------------------------------------------------------------------------


def run_prefix(ctx, task_id: str, version: str, team: str, run: str) -> str:
    return ctx.layout.evaluations(task_id, version) + f"runs/{segment(team)}/{segment(run)}/"


def score_one(ctx, task_id: str, version: str, item: Mapping[str, Any], part: str | None = None) -> dict:
    """Validate and (if valid) score one collected run into the version; return its summary.

    ``part`` None scores every metric; ``"cpu"`` only the metrics of the default queue (the report and
    per-item scores as usual); ``"models"`` only the model metrics, written under ``models/`` of the
    run's folder (the summary says ``part: models``; :func:`finalize` joins the two, see
    ``include/models/parts.py``).
    Never raises for a bad run: an invalid run is a result. Raises :class:`ScoringError` for a
    whole-task problem (no gold, broken gold, a version already finalized).
    """
    from include.models import parts  # the model part's hooks (imports no model library)

    task = _task(ctx, task_id)
    gold = _gold_for_version(ctx, task_id, version)
    if is_complete(ctx, task_id, version):
        raise ScoringError(f"task {task_id}: evaluation {version} is complete and never rewritten; allocate a new version")
    limits = _validation_limits(ctx, task)
    metrics = parts.part_metrics(task, part)
    with tempfile.TemporaryDirectory(prefix="run-") as scratch:
        run_path = Path(scratch) / segment(item["run"])
        sha256 = download_with_sha256(ctx.store, item["key"], run_path)
        if item.get("sha256") and sha256 != item["sha256"]:
            evaluation = RunEvaluation("error", {"verdict": "error"}, "", reason=(
                f"the collected object {item['key']} has sha256 {sha256}, not {item['sha256']} as the collection "
                "manifest says: it changed after collection, so it is not scored"))
            evaluation.report["error"] = evaluation.text = evaluation.reason
        else:
            inputs = parts.inputs_copy(ctx, task) if part != parts.CPU_PART and parts.has_model_part(task) else None
            evaluation = evaluate(task, run_path, gold.folder, limits, metrics=metrics, model_dir=getattr(ctx, "model_dir", None),
                                  inputs_dir=inputs)
    summary = _summary(item, sha256, evaluation, gold, version)
    if part == parts.MODELS_PART:
        prefix = run_prefix(ctx, task.id, version, summary["team"], summary["run"])
        for name, (data, content_type) in parts.model_part_objects(summary, evaluation, per_item_csv, dump_json).items():
            ctx.store.put_bytes(prefix + name, data, content_type=content_type)
        return {**summary, "part": parts.MODELS_PART}
    _write_run_outputs(ctx, task, version, summary, evaluation)
    return summary


_VERSION_GOLD: dict[tuple[str, str, str], GoldCopy] = {}


def _gold_for_version(ctx, task_id: str, version: str) -> GoldCopy:
    """The gold of a version, looked up once per process: checks the version exists, lists the gold once.

    Every run of a version is scored against the gold seen by the first run in this process; if
    the gold changes while other processes score, ``finalize`` notices (fingerprints differ).
    """
    key = (f"{ctx.store.settings.endpoint_url}|{ctx.store.bucket}", task_id, version)
    copy = _VERSION_GOLD.get(key)
    if copy is None or not copy.folder.is_dir():
        _version_record(ctx, task_id, version)
        copy = _VERSION_GOLD[key] = gold_copy(ctx, task_id)
    return copy


def download_with_sha256(store, key: str, path: Path) -> str:
    """Stream an object to ``path`` in one GET, hashing it on the way (no second read)."""
    return store.download_with_sha256(key, path)


def _validation_limits(ctx, task: Task):
    from include.campaign.validation import RunLimits

    return RunLimits(**ctx.campaign.task_run_limits(task).model_dump())


def _summary(item: Mapping[str, Any], sha256: str, evaluation: RunEvaluation, gold: GoldCopy, version: str) -> dict:
    metrics = {name: _finite(result.value) for name, result in evaluation.results.items()}
    not_computed = {name: (result.not_computed or "not computed: no value") for name, result in evaluation.results.items() if metrics[name] is None}
    return {
        "team": item["team"], "run": item["run"], "key": item["key"], "sha256": sha256,
        "verdict": evaluation.verdict, "reason": evaluation.reason,
        "metrics": metrics, "not_computed": not_computed,
        "gold_fingerprint": gold.fingerprint, "scored_in": version,
        "coverage": run_coverage(evaluation.report),
    }


def run_coverage(report: Mapping[str, Any] | None) -> dict[str, int] | None:
    """How many of the test items a run answered, from its validation counts (None when not counted)."""
    counts = (report or {}).get("counts") or {}
    if counts.get("ids_total") is None or counts.get("ids_covered") is None:
        return None
    return {"answered": int(counts["ids_covered"]), "total": int(counts["ids_total"])}


def _finite(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _write_run_outputs(ctx, task: Task, version: str, summary: dict, evaluation: RunEvaluation) -> None:
    from include.metrics.registry import METRICS

    detail = {
        name: {
            "value": summary["metrics"][name],
            "not_computed": summary["not_computed"].get(name),
            "breakdown": {k: _finite(v) for k, v in (result.breakdown or {}).items()},
            "higher_is_better": METRICS[name].higher_is_better,
        }
        for name, result in evaluation.results.items()
    }
    objects = {
        "report.json": (dump_json(evaluation.report), "application/json"),
        "report.txt": ((evaluation.text or "").encode("utf-8"), "text/plain; charset=utf-8"),
        "metrics.json": (dump_json({**{k: summary[k] for k in ("team", "run", "sha256", "verdict", "reason")}, "metrics": detail}), "application/json"),
    }
    if evaluation.results:
        objects["per_item.csv"] = (per_item_csv(evaluation.results).encode("utf-8"), "text/csv; charset=utf-8")
        summary["per_item_sha256"] = hashlib.sha256(objects["per_item.csv"][0]).hexdigest()
    prefix = run_prefix(ctx, task.id, version, summary["team"], summary["run"])
    for name, (data, content_type) in objects.items():
        ctx.store.put_bytes(prefix + name, data, content_type=content_type)


def per_item_csv(results: Mapping[str, Any]) -> str:
    """Per-item scores of every metric that has them, one row per item, one column per metric.

    A corpus-level metric (kappa, pooled Jaccard, WER) also gets one ``metric:component`` column per
    item component its value is made of, so significance tests can resample items.
    """
    import pandas as pd

    columns = {name: result.per_item for name, result in results.items() if result.per_item is not None}
    for name, result in results.items():  # corpus-level metrics: their additive components (statistics.py)
        components = getattr(result, "components", None)
        for component in ([] if components is None else components.columns):
            columns[f"{name}:{component}"] = components[component]
    if not columns:
        return "item\n"
    table = pd.concat({name: series.groupby(level=0).first() for name, series in columns.items()}, axis=1)
    table.index = table.index.astype(str)
    table.index.name = "item"
    return table.sort_index().to_csv(lineterminator="\n")


# --- finalizing a version ----------------------------------------------------------------------------


def finalize(ctx, task_id: str, version: str, summaries: Iterable[Mapping[str, Any] | None], reason: str, triggered_by: str,
             planned: Iterable[Mapping[str, Any]] | None = None) -> dict:
    """Complete the version: carry unchanged runs forward, write evaluation, diff, leaderboard, lineage.

    ``planned`` are the runs this version set out to score: one without a summary had its scoring
    task die, and is listed under ``missing`` with that reason (results name it to the organizer and
    tell its team). Idempotent: a complete version is returned as it was, never rewritten.
    """
    from include.models.parts import join_parts  # a run's CPU and model parts, one summary

    task = _task(ctx, task_id)
    allocation = _version_record(ctx, task_id, version)
    base = ctx.layout.evaluations(task_id, version)
    if is_complete(ctx, task_id, version):
        return _outcome(ctx, task_id, version, ctx.store.get_json(base + EVALUATION_FILE), ctx.store.get_json(base + DIFF_FILE))
    previous = latest_version(ctx, task_id, before=version)
    previous_evaluation = read_evaluation(ctx, task_id, previous) if previous else {"runs": [], "missing": []}
    previous_runs = {(r["team"], r["run"]): r for r in previous_evaluation["runs"]}
    scored = {(s["team"], s["run"]): {k: s.get(k) for k in SUMMARY_KEYS} for s in join_parts(task, summaries)
              if s.get("scored_in") == version}
    previous_missing = {(m["team"], m["run"]): m for m in previous_evaluation.get("missing") or []}
    planned_keys = {(p["team"], p["run"]) for p in planned or [] if isinstance(p, Mapping) and p.get("team")}
    runs, missing = _complete_run_list(ctx, task_id, version, read_manifest(ctx, task_id), scored, previous_runs,
                                       planned_keys, previous_missing)
    evaluation = {"task": task_id, "version": version, "previous_version": previous, "runs": runs, "missing": missing}
    board = leaderboards.build(task, runs, metric_specs(task), version=version)
    leaderboards.add_statistics(board, read_item_tables(ctx, board, runs), metric_specs(task))
    evaluation["statistics"] = board.statistics
    previous_board = read_leaderboard(ctx, task_id, previous) if previous else None
    diff = diff_evaluations(list(previous_runs.values()), runs, previous_board, board.to_dict())
    diff.update({"task": task_id, "version": version, "previous_version": previous, "reason": allocation.get("reason") or reason})
    ctx.store.put_json(base + EVALUATION_FILE, evaluation)
    ctx.store.put_json(base + DIFF_FILE, diff)
    write_leaderboard(ctx, task_id, version, board)
    lineage = _lineage(ctx, task, version, previous, allocation, runs, missing, reason, triggered_by, board.statistics)
    ctx.store.create_json_once(base + LINEAGE_FILE, lineage)
    return _outcome(ctx, task_id, version, evaluation, diff)


def metric_specs(task: Task) -> list:
    from include.metrics.registry import METRICS

    return [METRICS[name] for name in task.metrics]


def _complete_run_list(ctx, task_id: str, version: str, manifest: dict, scored: dict, previous_runs: dict,
                       planned: set | frozenset = frozenset(), previous_missing: dict | None = None) -> tuple[list[dict], list[dict]]:
    """Every collected run: scored now, carried forward unchanged from the previous version, or missing.

    A carried run keeps ``scored_in`` and ``files``: its reports and per-item scores stay in the
    (immutable) version that scored it, so a re-score of one team among 300 copies nothing. A
    missing run says why (its scoring task died, it was never scored, it changed since) and since
    which version it has been missing.
    """
    runs: list[dict] = []
    missing: list[dict] = []
    for summary in scored.values():
        summary["files"] = run_prefix(ctx, task_id, version, summary["team"], summary["run"])
    collected = {(e["team"], e["run"]): e for e in manifest.get("collected") or []}
    for key in sorted(set(collected) | set(scored)):
        if key in scored:
            runs.append(scored[key])
            continue
        earlier = previous_runs.get(key)
        # A run this version set out to (re-)score keeps no older score when its task died: the
        # re-score had a reason (new gold, a metric fix) that may make the older score wrong.
        if earlier and key not in planned and earlier.get("sha256") == collected[key].get("sha256"):
            runs.append(earlier)
        else:
            missing.append({"team": key[0], "run": key[1], **_why_missing(key, version, earlier, planned, (previous_missing or {}).get(key))})
    return runs, missing


FAILED_TASK_REASON = "its scoring stopped before it produced a score (a failure on the organizers' side, not a verdict on the run)"


def _why_missing(key: tuple[str, str], version: str, earlier: Mapping | None, planned: set | frozenset, before: Mapping | None) -> dict:
    """``reason`` (told to the team as is) and ``since`` (the first version the run was missing from)."""
    if key in planned:
        return {"reason": FAILED_TASK_REASON, "since": version, "scoring_task_failed": True}
    if before:  # still missing since an earlier version, for the reason given then
        return {k: before[k] for k in ("reason", "since", "scoring_task_failed") if k in before}
    if earlier:
        return {"reason": f"the collected run changed after {earlier['scored_in']} scored it, and it was not scored again", "since": version}
    return {"reason": "it was collected but has not been scored yet", "since": version}


def read_evaluation(ctx, task_id: str, version: str) -> dict:
    return ctx.store.get_json(ctx.layout.evaluations(task_id, version) + EVALUATION_FILE)


def read_leaderboard(ctx, task_id: str, version: str) -> dict:
    return ctx.store.get_json(ctx.layout.leaderboards(task_id, version) + LEADERBOARD_EXPORTS["json"][0])


def write_leaderboard(ctx, task_id: str, version: str, board: leaderboards.Leaderboard) -> dict[str, str]:
    prefix = ctx.layout.leaderboards(task_id, version)
    keys = {}
    for export, data in board.exports().items():
        name, content_type = LEADERBOARD_EXPORTS[export]
        ctx.store.put_bytes(prefix + name, data, content_type=content_type)
        keys[export] = prefix + name
    return keys


def read_item_tables(ctx, board: leaderboards.Leaderboard, runs: list[dict]) -> dict[tuple[str, str], Any]:
    """The per-item tables (pandas, index = item id) of the ranked runs, from the versions that scored them."""
    import pandas as pd

    from include.models.parts import item_table_names

    by_key = {(r["team"], r["run"]): r for r in runs}
    tables = {}
    for row in board.ranked:
        prefix = by_key.get((row.team, row.run), {}).get("files")
        parts = [pd.read_csv(io.BytesIO(ctx.store.get_bytes(prefix + name)), index_col="item", dtype={"item": str})
                 for name in item_table_names() if prefix and ctx.store.exists(prefix + name)]
        if parts:  # the CPU part's per-item scores, joined with the models queue's
            tables[(row.team, row.run)] = pd.concat(parts, axis=1) if len(parts) > 1 else parts[0]
    return tables


def _lineage(ctx, task: Task, version: str, previous: str | None, allocation: dict, runs: list[dict],
             missing: list[dict], reason: str, triggered_by: str, board_statistics: dict | None = None) -> dict:
    from include.metrics import resolve_options

    gold = gold_copy(ctx, task.id)
    stale = sorted({r["scored_in"] for r in runs if r.get("gold_fingerprint") not in (None, gold.fingerprint)})
    warnings = [f"runs scored in {', '.join(stale)} used other gold than the current one (see those versions' lineage)"] if stale else []
    return {
        "campaign": ctx.campaign.id, "task": task.id, "version": version, "previous_version": previous,
        "reason": allocation.get("reason") or reason, "triggered_by": allocation.get("triggered_by") or triggered_by,
        "requested_at": allocation.get("created_at"), "finalized_at": ctx.now().isoformat(),
        "run_format": task.run_format,
        "code_version": code_version(), "libraries": library_versions(),
        "metrics": [
            {"name": spec.name, "function": repr(spec.compute), "higher_is_better": spec.higher_is_better,
             "needs_model": spec.needs_model, "code_version": code_version()}
            for spec in metric_specs(task)
        ],
        "metric_options": resolve_options(task.run_format, task_metric_options(task), task.metrics),
        "gold": {"prefix": ctx.layout.gold(task.id, "test"), "fingerprint": gold.fingerprint, "files": gold.files},
        "runs": [{k: r.get(k) for k in ("team", "run", "key", "sha256", "verdict", "scored_in", "files", "gold_fingerprint",
                                        "per_item_sha256")} for r in runs],
        "missing": missing, "warnings": warnings,
        "statistics": board_statistics,
    }


def _outcome(ctx, task_id: str, version: str, evaluation: dict, diff: dict) -> dict:
    runs = evaluation["runs"]
    board = read_leaderboard(ctx, task_id, version)
    ranked = [row for row in board["rows"] if row["status"] == leaderboards.RANKED]
    return {
        "task": task_id, "version": version, "previous_version": evaluation.get("previous_version"),
        "runs": len(runs), "valid": sum(r["verdict"] == "valid" for r in runs),
        "invalid": sum(r["verdict"] == "invalid" for r in runs), "errors": sum(r["verdict"] == "error" for r in runs),
        "ranked": len(ranked), "teams": board["participating_teams"],
        "scored_in_this_version": sum(r.get("scored_in") == version for r in runs),
        "carried_forward": sum(r.get("scored_in") != version for r in runs),
        "missing": [f"{m['team']}/{m['run']}" for m in evaluation.get("missing", [])],
        "changed": [f"{c['team']}/{c['run']}" for c in diff.get("changed", [])],
        "teams_changed": diff.get("teams_changed", []),
        "rank_changes": len(diff.get("rank_changes", [])),
        "ranked_by": board["ranked_by"],
        "top": [{"rank": r["rank"], "team": r["team"], "run": r["run"], "value": r["metrics"].get(board["ranked_by"])} for r in ranked[:3]],
        "leaderboard": {export: ctx.layout.leaderboards(task_id, version) + name for export, (name, _) in LEADERBOARD_EXPORTS.items()},
    }


# --- differences between versions -------------------------------------------------------------------


def diff_evaluations(old_runs: list[Mapping[str, Any]], new_runs: list[Mapping[str, Any]],
                     old_board: Mapping[str, Any] | None, new_board: Mapping[str, Any]) -> dict:
    """Runs whose verdict or scores changed (old and new values), added and removed runs, rank changes."""
    old = {(r["team"], r["run"]): r for r in old_runs}
    new = {(r["team"], r["run"]): r for r in new_runs}
    changed = []
    for key in sorted(set(old) & set(new)):
        change = _run_change(old[key], new[key])
        if change:
            changed.append({"team": key[0], "run": key[1], **change})
    added = [{"team": t, "run": r} for t, r in sorted(set(new) - set(old))]
    removed = [{"team": t, "run": r} for t, r in sorted(set(old) - set(new))]
    old_ranks, new_ranks = _ranks(old_board), _ranks(new_board)
    rank_changes = [
        {"team": t, "run": r, "old_rank": old_ranks.get((t, r)), "new_rank": new_ranks.get((t, r))}
        for t, r in sorted(set(old_ranks) | set(new_ranks))
        if old_board is not None and old_ranks.get((t, r)) != new_ranks.get((t, r))
    ]
    teams = sorted({c["team"] for c in changed + added + removed})
    return {"changed": changed, "added": added, "removed": removed, "rank_changes": rank_changes, "teams_changed": teams,
            "unchanged": len(set(old) & set(new)) - len(changed)}


def _run_change(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict:
    metrics = {}
    for name in sorted(set(old.get("metrics") or {}) | set(new.get("metrics") or {})):
        before, after = (old.get("metrics") or {}).get(name), (new.get("metrics") or {}).get(name)
        if not _same_score(before, after):
            metrics[name] = {"old": before, "new": after}
    change: dict[str, Any] = {}
    if old.get("verdict") != new.get("verdict"):
        change["verdict"] = {"old": old.get("verdict"), "new": new.get("verdict")}
    if metrics:
        change["metrics"] = metrics
    if change:
        change["old_sha256"], change["new_sha256"] = old.get("sha256"), new.get("sha256")
    return change


def _same_score(before: float | None, after: float | None) -> bool:
    if before is None or after is None:
        return before is None and after is None
    return math.isclose(before, after, rel_tol=SCORE_TOLERANCE, abs_tol=SCORE_TOLERANCE)


def _ranks(board: Mapping[str, Any] | None) -> dict[tuple[str, str], int]:
    if not board:
        return {}
    return {(row["team"], row["run"]): row["rank"] for row in board["rows"] if row.get("rank") is not None}


# --- code provenance -----------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def code_version() -> dict[str, Any]:
    """The scoring code's version: ``CLEF_CODE_VERSION``, else the git commit (dirty if edited), else the package version."""
    if os.environ.get("CLEF_CODE_VERSION"):
        return {"version": os.environ["CLEF_CODE_VERSION"], "source": "CLEF_CODE_VERSION"}
    commit = _git("rev-parse", "HEAD")
    if commit:
        dirty = bool(_git("status", "--porcelain", "--", *SCORING_CODE))
        return {"git_commit": commit, "dirty": dirty, "source": "git"}
    try:
        return {"package_version": importlib.metadata.version("clef-campaign"), "source": "package"}
    except importlib.metadata.PackageNotFoundError:
        return {"source": "unknown", "note": "no CLEF_CODE_VERSION, no git checkout, no installed package"}


def _git(*args: str) -> str:
    try:
        answer = subprocess.run(["git", *args], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return ""
    return answer.stdout.strip() if answer.returncode == 0 else ""


@lru_cache(maxsize=1)
def library_versions() -> dict[str, str]:
    found = {}
    for name in LIBRARIES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return found

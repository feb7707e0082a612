"""Scoring one run: validate it against the gold, score it with the task's metrics, write its outputs.

The DAG's mapped tasks call :func:`score_batch` (each run as :func:`score_one`); the ``score`` command and
:func:`score_one` share :func:`evaluate`, so a participant's local score equals the official one.
"""
from __future__ import annotations

import collections
import hashlib
import logging
import math
import shutil
import tempfile
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

from include.campaign.config import Task
from include.campaign.evaluation.gold import GoldCopy, gold_for_version
from include.campaign.evaluation.records import ScoringError, known_task, write_run_outputs
from include.campaign.evaluation.versioning import is_complete
from include.campaign.layout import segment
from include.campaign.store import dump_json

logger = logging.getLogger(__name__)


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


def metric_options(task: Task, model_dir: str | Path | None = None) -> dict[str, Any]:
    """The options the task's metrics compute with: the campaign file's, plus the deployment's model
    directory (``CampaignContext.settings.model_dir``) when a metric needs a model, unless the file sets
    it (``include/models/parts.py``'s :func:`options_for`)."""
    from include.models.parts import options_for

    return options_for(task_metric_options(task), task, list(task.metrics), model_dir)[0]


def evaluate(task: Task, run_path: str | Path, gold_dir: str | Path, limits: Any = None,
             metrics: Iterable[str] | None = None, model_dir: str | Path | None = None,
             inputs_dir: str | Path | None = None, gold_checked: bool = False) -> RunEvaluation:
    """Validate one run file against the gold folder and score it if valid. Never raises for bad run content.

    ``limits`` are the task's run limits (default: the defaults). ``metrics`` (default: all the task's)
    is the part to compute: the ``default`` queue computes the CPU metrics, the ``models`` queue the
    model metrics (``include/models/parts.py``), with weights under ``model_dir`` and test images under
    ``inputs_dir``. A broken gold folder is the organizers' problem and raises :class:`ScoringError`
    (``gold_checked``: the caller has run :func:`check_gold_folder` on it already).
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
    if not gold_checked:
        check_gold_folder(task, gold_dir)
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


def check_gold_folder(task: Task, gold_dir: str | Path) -> None:
    """Raise :class:`ScoringError` naming what the gold folder lacks for the task's metrics (a scoring
    of many runs checks its gold folder once, then passes ``gold_checked`` to :func:`evaluate`)."""
    missing = _missing_gold(task, Path(gold_dir))
    if missing:
        raise ScoringError(f"task {task.id}: the gold folder {gold_dir} lacks {'; '.join(fix for _, fix in missing)}")


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


def score_one(ctx, task_id: str, version: str, item: Mapping[str, Any], part: str | None = None) -> dict:
    """Validate and (if valid) score one collected run into the version; return its summary.

    ``part`` None scores every metric; ``"cpu"`` only the metrics of the default queue (the report and
    per-item scores as usual); ``"models"`` only the model metrics, written under ``models/`` of the
    run's folder (the summary says ``part: models``; :func:`finalize` joins the two, see
    ``include/models/parts.py``).
    Never raises for a bad run: an invalid run is a result. Raises :class:`ScoringError` for a
    whole-task problem (no gold, broken gold, a version already finalized).
    """
    opened = _open_version(ctx, task_id, version)
    with tempfile.TemporaryDirectory(prefix="run-") as scratch:
        summary, outputs = _judge(ctx, opened, version, item, part, _fetch(ctx.store, item, Path(scratch)))
    outputs.write(ctx)
    return summary


def score_batch(ctx, items: list[Mapping[str, Any]], part: str | None = None) -> list[dict]:
    """Score a mapped instance's runs (each item names its ``task`` and ``version``), the ``part`` of
    each as :func:`score_one`; each version is checked once for the batch, not once per run. Summaries
    keep ``task`` and ``version``.

    The object-store traffic overlaps the validation and metrics: the next run downloads and the last
    runs' outputs upload while a run is judged (:class:`_RunTraffic`). As with one run at a time, a
    fault of the store fails the batch, after every transfer under way has ended.
    """
    opened: dict[tuple[str, str], tuple[Task, GoldCopy]] = {}
    summaries = []
    with _RunTraffic(ctx.store, items) as traffic:
        for item, fetched in traffic.runs():
            key = (item["task"], item["version"])
            if key not in opened:
                opened[key] = _open_version(ctx, *key)
            summary, outputs = _judge(ctx, opened[key], item["version"], item, part, fetched)
            traffic.write(ctx, outputs)
            summaries.append({**summary, "task": item["task"], "version": item["version"]})
    return summaries


class _RunTraffic:
    """The batch's downloads, one run ahead of the run being judged, and its uploads, up to
    ``WRITES_AHEAD`` runs behind it, each in one extra thread: the caller keeps validating and scoring
    while the store answers (botocore waits on its socket without the GIL). Each downloaded run has
    its own temporary folder, made and removed by the download thread (each file-system call gives
    up the GIL, and the caller would wait to take it back from the transfers), and any left when the
    batch ends are removed then."""

    WRITES_AHEAD = 4

    def __init__(self, store, items: list[Mapping[str, Any]]):
        self._store, self._items = store, list(items)
        self._folders: set[Path] = set()
        self._downloads = ThreadPoolExecutor(max_workers=1, thread_name_prefix="run-download")
        self._uploads = ThreadPoolExecutor(max_workers=1, thread_name_prefix="run-upload")
        self._writing: collections.deque[Future] = collections.deque()

    def __enter__(self) -> "_RunTraffic":
        return self

    def __exit__(self, exc_type, exc, traceback) -> None:
        try:
            self._downloads.shutdown(wait=True)
            self._uploads.shutdown(wait=True)
            if exc_type is None:
                while self._writing:
                    self._writing.popleft().result()  # the first failed upload fails the batch
        finally:
            for folder in list(self._folders):
                self._remove(folder)

    def runs(self) -> Iterator[tuple[Mapping[str, Any], "_FetchedRun"]]:
        """(item, its downloaded run) in order, the next run downloading while the caller judges this one."""
        ahead = self._download(0)
        for index, item in enumerate(self._items):
            download, ahead = ahead, self._download(index + 1)
            fetched = download.result()
            try:
                yield item, fetched
            finally:
                self._remove_later(fetched.path.parent)

    def _download(self, index: int) -> Future | None:
        return self._downloads.submit(self._fetch, self._items[index]) if index < len(self._items) else None

    def _fetch(self, item: Mapping[str, Any]) -> "_FetchedRun":
        folder = Path(tempfile.mkdtemp(prefix="run-"))
        self._folders.add(folder)
        return _fetch(self._store, item, folder)

    def _remove_later(self, folder: Path) -> None:
        try:
            self._downloads.submit(self._remove, folder)
        except RuntimeError:  # the batch has ended, and its end removed every folder left
            pass

    def _remove(self, folder: Path) -> None:
        shutil.rmtree(folder, ignore_errors=True)
        self._folders.discard(folder)

    def write(self, ctx, outputs: "_RunOutputs") -> None:
        """Upload a judged run's outputs, first waiting for the oldest upload when too many are under way."""
        while len(self._writing) >= self.WRITES_AHEAD:
            self._writing.popleft().result()
        self._writing.append(self._uploads.submit(outputs.write, ctx))


@dataclass(frozen=True)
class _FetchedRun:
    path: Path
    sha256: str


@dataclass(frozen=True)
class _RunOutputs:
    """A judged run's files, to write into the version that scored it."""

    task_id: str
    version: str
    team: str
    run: str
    objects: dict[str, tuple[bytes, str]]

    def write(self, ctx) -> None:
        write_run_outputs(ctx, self.task_id, self.version, self.team, self.run, self.objects)


def _open_version(ctx, task_id: str, version: str) -> tuple[Task, GoldCopy]:
    """The task and the version's gold, once the version is known to exist and not to be complete."""
    task = known_task(ctx, task_id)
    gold = gold_for_version(ctx, task_id, version)
    if is_complete(ctx, task_id, version):
        raise ScoringError(f"task {task_id}: evaluation {version} is complete and never rewritten; allocate a new version")
    check_gold_folder(task, gold.folder)
    return task, gold


def _fetch(store, item: Mapping[str, Any], folder: Path) -> _FetchedRun:
    """The collected run, downloaded into ``folder`` in one GET and hashed on the way."""
    path = folder / segment(item["run"])
    return _FetchedRun(path, download_with_sha256(store, item["key"], path))


def _judge(ctx, opened: tuple[Task, GoldCopy], version: str, item: Mapping[str, Any], part: str | None,
           fetched: _FetchedRun) -> tuple[dict, _RunOutputs]:
    """The run's summary and the files to write for it: its validation and (if valid) its metrics, or why
    it was not scored."""
    from include.models import parts  # the model part's hooks (imports no model library)

    task, gold = opened
    metrics = parts.part_metrics(task, part)
    if item.get("sha256") and fetched.sha256 != item["sha256"]:
        evaluation = RunEvaluation("error", {"verdict": "error"}, "", reason=(
            f"the collected object {item['key']} has sha256 {fetched.sha256}, not {item['sha256']} as the collection "
            "manifest says: it changed after collection, so it is not scored"))
        evaluation.report["error"] = evaluation.text = evaluation.reason
    else:
        inputs = parts.inputs_copy(ctx, task) if part != parts.CPU_PART and parts.has_model_part(task) else None
        evaluation = evaluate(task, fetched.path, gold.folder, ctx.campaign.task_run_limits(task), metrics=metrics,
                              model_dir=ctx.settings.model_dir, inputs_dir=inputs, gold_checked=True)
    summary = _summary(item, fetched.sha256, evaluation, gold, version)
    if part == parts.MODELS_PART:  # under models/ of the run's folder
        objects = parts.model_part_objects(summary, evaluation, per_item_csv, dump_json)
        return {**summary, "part": parts.MODELS_PART}, _RunOutputs(task.id, version, summary["team"], summary["run"], objects)
    return summary, _RunOutputs(task.id, version, summary["team"], summary["run"], _run_output_objects(summary, evaluation))


def download_with_sha256(store, key: str, path: Path) -> str:
    """Stream an object to ``path`` in one GET, hashing it on the way (no second read)."""
    return store.download_with_sha256(key, path)


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


def _run_output_objects(summary: dict, evaluation: RunEvaluation) -> dict[str, tuple[bytes, str]]:
    """The run's report (JSON and text), metrics and per-item scores; records the per-item file's sha256 in ``summary``."""
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
    return objects


def per_item_csv(results: Mapping[str, Any]) -> str:
    """Per-item scores of every metric that has them, one row per item, one column per metric.

    A corpus-level metric (kappa, pooled Jaccard, WER) also gets one ``metric:component`` column per
    item component its value is made of, so significance tests can resample items.
    """
    import pandas as pd

    from include.campaign.evaluation.item_csv import table_csv

    columns = {name: result.per_item for name, result in results.items() if result.per_item is not None}
    for name, result in results.items():  # corpus-level metrics: their additive components (statistics.py)
        components = getattr(result, "components", None)
        for component in ([] if components is None else components.columns):
            columns[f"{name}:{component}"] = components[component]
    if not columns:
        return "item\n"
    table = pd.concat({name: _one_value_per_item(series) for name, series in columns.items()}, axis=1)
    table.index = table.index.astype(str)
    table.index.name = "item"
    return table_csv(table.sort_index())


def _one_value_per_item(series):
    """The series with one value per item (an item's first non-missing one); a series that has that
    already is kept as it is (a group-by costs more than the rest of the table)."""
    index = series.index
    if index.is_unique and not index.hasnans:
        return series
    return series.groupby(level=0).first()


def metric_specs(task: Task) -> list:
    from include.metrics.registry import METRICS

    return [METRICS[name] for name in task.metrics]


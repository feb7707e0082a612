"""Planning a scoring: which collected runs to score, in how many mapped instances (the split of a run's
metrics between the default and models queues is include/models/parts.py).

The rules for queues and batches are described in docs/scoring-batches.md.
"""
from __future__ import annotations

import math
import re
from typing import Iterable

from include.campaign.config import Task
from include.campaign.evaluation.records import ScoringError, known_task, read_collection_manifest


def plan(ctx, task_id: str, teams: Iterable[str] | str | None = None, runs: Iterable[str] | str | None = None,
         manifest_key: str | None = None) -> list[dict]:
    """The collected runs to score, from the collection manifest, optionally filtered.

    ``teams`` and ``runs`` are lists or comma/space separated text (an empty value means all); a run
    is named ``run`` (that run of every selected team) or ``team/run``. Names that match nothing are
    refused with the list of known ones, so a typo in the form never scores nothing silently.
    ``manifest_key`` is the manifest the collection announced (the layout's place by default).
    """
    known_task(ctx, task_id)
    collected = read_collection_manifest(ctx, task_id, manifest_key).get("collected") or []
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

# --- mapped instances: how many runs each (docs/scoring-batches.md) ----------------------

# At most this many mapped scoring instances per queue and DAG run (CLEF_SCORING_MAX_INSTANCES, and
# never more than Airflow's [core] max_map_length): more runs share an instance. An instance costs a
# task start-up (about 2 s in benchmarks/scoring_dag.py, more on a Celery worker), several times one
# run's validation and metrics: 16 instances keep 16 worker slots busy and pay that start-up 16 times.
DEFAULT_MAX_INSTANCES = 16

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


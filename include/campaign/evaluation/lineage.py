"""Lineage of an evaluation version: what produced its numbers (runs, gold, metric code and libraries, who, why).

The lineage is written last and create-once; its presence marks the version complete.
"""
from __future__ import annotations

import importlib
import importlib.metadata
import subprocess
from functools import lru_cache
from pathlib import Path
from typing import Any

from include.campaign.config import Task
from include.campaign.evaluation.gold import gold_copy
from include.campaign.evaluation.scoring import metric_specs, task_metric_options

PROJECT_ROOT = Path(__file__).resolve().parents[3]
LIBRARIES = ("numpy", "pandas", "scikit-learn", "sacrebleu", "rouge-score", "jiwer", "nltk", "ir-measures",
             "pytrec-eval-terrier", "great-expectations", "torch", "transformers", "bert-score", "bleurt-pytorch")
# The code whose change changes a score: reported as "dirty" in the lineage when edited since the commit.
SCORING_CODE = ("include/metrics", "include/models", "include/campaign/validation", "include/schemas", "include/campaign/evaluation")


def build_lineage(ctx, task: Task, version: str, previous: str | None, allocation: dict, runs: list[dict],
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
        "code_version": code_version(ctx.settings.code_version), "libraries": library_versions(),
        "metrics": [
            {"name": spec.name, "function": repr(spec.compute), "higher_is_better": spec.higher_is_better,
             "needs_model": spec.needs_model, "code_version": code_version(ctx.settings.code_version)}
            for spec in metric_specs(task)
        ],
        "metric_options": resolve_options(task.run_format, task_metric_options(task), task.metrics),
        "gold": {"prefix": ctx.layout.gold(task.id, "test"), "fingerprint": gold.fingerprint, "files": gold.files},
        "runs": [{k: r.get(k) for k in ("team", "run", "key", "sha256", "verdict", "scored_in", "files", "gold_fingerprint",
                                        "per_item_sha256")} for r in runs],
        "missing": missing, "warnings": warnings,
        "statistics": board_statistics,
    }


@lru_cache(maxsize=4)
def code_version(configured: str | None = None) -> dict[str, Any]:
    """The scoring code's version: the configured one (``CLEF_CODE_VERSION``, read by the context's
    settings), else the git commit (dirty if edited), else the package version."""
    if configured:
        return {"version": configured, "source": "CLEF_CODE_VERSION"}
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

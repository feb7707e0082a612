"""Evaluation: validate and score collected runs into versioned, immutable evaluations with lineage.

One scoring of a task is one evaluation version, ``evaluations/<task>/<version>/`` (its objects are
listed in :mod:`.records`), and its leaderboard exports under ``leaderboards/<task>/<version>/``
(private until published). The modules, each one concern:

- :mod:`.records` the one module that reads and writes evaluation objects (version, run outputs,
  evaluation, diff, lineage, leaderboard) and the collection manifest it scores;
- :mod:`.versioning` allocating a version (create-once), listing versions, the latest complete one;
- :mod:`.planning` which runs to score, in how many mapped instances (which metrics run on which
  worker queue, and the join of a run's two parts: ``include/models/parts.py``);
- :mod:`.gold` the task's gold folder, downloaded once per process and content;
- :mod:`.scoring` one run: validate, score, write its outputs (shared with the ``score`` command);
- :mod:`.item_csv` a run's per-item table as CSV, byte for byte what pandas' ``to_csv`` writes, faster;
- :mod:`.diff` what changed between two versions;
- :mod:`.lineage` what produced a version's numbers (code, libraries, gold, runs, who, why);
- :mod:`.finalizing` completing a version: carry runs forward, write evaluation, diff, leaderboard, lineage.

The public names below are importable from the package itself (``from include.campaign import
evaluation``; ``evaluation.score_one(...)``).
"""
from __future__ import annotations

from include.campaign.evaluation.records import (DIFF_FILE, EVALUATION_FILE, LEADERBOARD_EXPORTS, LINEAGE_FILE, SUMMARY_KEYS,
                                                 VERSION_FILE, ScoringError, read_evaluation, read_item_tables, read_leaderboard,
                                                 read_collection_manifest, run_prefix, write_leaderboard)
from include.campaign.evaluation.versioning import VERSION_NAME, is_complete, latest_version, new_version, versions
from include.campaign.evaluation.diff import SCORE_TOLERANCE, diff_evaluations
from include.campaign.evaluation.gold import GoldCopy, file_sha256, gold_copy
from include.campaign.evaluation.scoring import (RunEvaluation, evaluate, invalid_reason, metric_options, metric_specs, per_item_csv,
                                                 run_coverage, score_batch, score_one, task_metric_options)
from include.campaign.evaluation.lineage import code_version, library_versions
from include.campaign.evaluation.planning import DEFAULT_MAX_INSTANCES, batches, max_instances, plan
from include.campaign.evaluation.finalizing import FAILED_TASK_REASON, finalize, finalize_with_records

__all__ = [
    "DEFAULT_MAX_INSTANCES", "DIFF_FILE", "EVALUATION_FILE", "FAILED_TASK_REASON", "LEADERBOARD_EXPORTS", "LINEAGE_FILE",
    "SCORE_TOLERANCE", "SUMMARY_KEYS", "VERSION_FILE", "VERSION_NAME", "GoldCopy", "RunEvaluation", "ScoringError", "batches",
    "code_version", "diff_evaluations", "evaluate", "file_sha256", "finalize", "finalize_with_records", "gold_copy",
    "invalid_reason", "is_complete", "latest_version", "library_versions", "max_instances", "metric_options", "metric_specs",
    "new_version", "per_item_csv", "plan", "read_collection_manifest", "read_evaluation", "read_item_tables", "read_leaderboard",
    "run_coverage", "run_prefix", "score_batch", "score_one", "task_metric_options", "versions", "write_leaderboard",
]

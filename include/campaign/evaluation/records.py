"""Evaluation records: the one module that reads and writes the objects of an evaluation in the store.

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
The other modules of :mod:`include.campaign.evaluation` (and results, overview) read and write these
objects through the functions here, never by building keys or calling the store themselves.
"""
from __future__ import annotations

import io
from typing import Any

from include.campaign import leaderboard as leaderboards
from include.campaign.config import Task
from include.campaign.layout import segment

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


class ScoringError(RuntimeError):
    """A whole-task problem (no manifest, no gold, unknown team, finalized version); the text says what to fix."""


def known_task(ctx, task_id: str) -> Task:
    """The campaign's task ``task_id``; an unknown one is a :class:`ScoringError`."""
    try:
        return ctx.campaign.task(task_id)
    except KeyError as exc:
        raise ScoringError(str(exc.args[0])) from None


def read_manifest(ctx, task_id: str) -> dict:
    key = ctx.layout.collection_manifest(task_id)
    if not ctx.store.exists(key):
        raise ScoringError(f"task {task_id}: no collection manifest at s3://{ctx.store.bucket}/{key}; runs are scored after collection")
    return ctx.store.get_json(key)


def version_record(ctx, task_id: str, version: str) -> dict:
    key = ctx.layout.evaluations(task_id, version) + VERSION_FILE
    if not ctx.store.exists(key):
        raise ScoringError(f"task {task_id}: evaluation version {version} was never allocated (call new_version first)")
    return ctx.store.get_json(key)


def run_prefix(ctx, task_id: str, version: str, team: str, run: str) -> str:
    return ctx.layout.evaluations(task_id, version) + f"runs/{segment(team)}/{segment(run)}/"


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

    by_key = {(r["team"], r["run"]): r for r in runs}
    tables = {}
    for row in board.ranked:
        prefix = by_key.get((row.team, row.run), {}).get("files")
        if prefix and ctx.store.exists(prefix + "per_item.csv"):
            data = ctx.store.get_bytes(prefix + "per_item.csv")
            tables[(row.team, row.run)] = pd.read_csv(io.BytesIO(data), index_col="item", dtype={"item": str})
    return tables

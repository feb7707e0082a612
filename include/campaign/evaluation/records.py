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
The other modules of :mod:`include.campaign.evaluation` (and results) read and write these objects
through the functions here, never by building keys or calling the store themselves; keys come from
:class:`~include.campaign.layout.Layout`. Each function makes one request (a read is one GET, never a
HEAD first), so a task that knows what it needs reads each object once.
"""
from __future__ import annotations

import io
from typing import Any

from include.campaign import leaderboard as leaderboards
from include.campaign.config import Task
from include.campaign.store import dump_json

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


# --- what is scored: the collection manifest -----------------------------------------------------------


def read_collection_manifest(ctx, task_id: str, key: str | None = None) -> dict:
    """The collection manifest (at ``key`` when the caller was told it, else where the layout puts it)."""
    key = key or ctx.layout.collection_manifest(task_id)
    if not key.startswith(ctx.layout.collected(task_id)):
        raise ScoringError(f"task {task_id}: {key} is not a collection manifest of this task (expected under {ctx.layout.collected(task_id)})")
    manifest = ctx.store.get_json_or_none(key)
    if manifest is None:
        raise ScoringError(f"task {task_id}: no collection manifest at s3://{ctx.store.bucket}/{key}; runs are scored after collection")
    return manifest


# --- a version's own records -----------------------------------------------------------------------------


def create_version_record(ctx, task_id: str, version: str, record: dict) -> bool:
    """Write ``version.json`` unless it exists (create-once); False when another allocation has it."""
    return ctx.store.create_json_once(ctx.layout.evaluation_record(task_id, version, VERSION_FILE), record)


def version_record(ctx, task_id: str, version: str) -> dict:
    record = ctx.store.get_json_or_none(ctx.layout.evaluation_record(task_id, version, VERSION_FILE))
    if record is None:
        raise ScoringError(f"task {task_id}: evaluation version {version} was never allocated (call new_version first)")
    return record


def version_names(ctx, task_id: str) -> list[str]:
    """The folder names under the task's evaluations (one listing)."""
    return ctx.store.list_folders(ctx.layout.evaluations(task_id))


def has_lineage(ctx, task_id: str, version: str) -> bool:
    return ctx.store.exists(ctx.layout.evaluation_record(task_id, version, LINEAGE_FILE))


def lineage_info(ctx, task_id: str, version: str):
    """The lineage object's listing (its time), or None while the version is not complete."""
    return ctx.store.head(ctx.layout.evaluation_record(task_id, version, LINEAGE_FILE))


def read_lineage(ctx, task_id: str, version: str) -> dict:
    return ctx.store.get_json(ctx.layout.evaluation_record(task_id, version, LINEAGE_FILE))


def read_lineage_or_none(ctx, task_id: str, version: str) -> dict | None:
    return ctx.store.get_json_or_none(ctx.layout.evaluation_record(task_id, version, LINEAGE_FILE))


def write_lineage(ctx, task_id: str, version: str, lineage: dict) -> bool:
    """Write the lineage once (its presence marks the version complete); False when it was there."""
    return ctx.store.create_json_once(ctx.layout.evaluation_record(task_id, version, LINEAGE_FILE), lineage)


def read_evaluation(ctx, task_id: str, version: str) -> dict:
    return ctx.store.get_json(ctx.layout.evaluation_record(task_id, version, EVALUATION_FILE))


def write_evaluation(ctx, task_id: str, version: str, evaluation: dict) -> None:
    ctx.store.put_json(ctx.layout.evaluation_record(task_id, version, EVALUATION_FILE), evaluation)


def read_diff(ctx, task_id: str, version: str) -> dict:
    return ctx.store.get_json(ctx.layout.evaluation_record(task_id, version, DIFF_FILE))


def write_diff(ctx, task_id: str, version: str, diff: dict) -> None:
    ctx.store.put_json(ctx.layout.evaluation_record(task_id, version, DIFF_FILE), diff)


# --- one run's outputs -------------------------------------------------------------------------------------


def run_prefix(ctx, task_id: str, version: str, team: str, run: str) -> str:
    return ctx.layout.run_outputs(task_id, version, team, run)


def write_run_outputs(ctx, task_id: str, version: str, team: str, run: str, objects: dict[str, tuple[bytes, str]]) -> None:
    """Write a run's outputs (name -> (bytes, content type)) into the version that scored it."""
    ctx.store.put_many({ctx.layout.run_output(task_id, version, team, run, name): content for name, content in objects.items()})


def read_run_report(ctx, task_id: str, version: str, team: str, run: str) -> dict | None:
    """A run's validation report, or None when it has none."""
    return ctx.store.get_json_or_none(ctx.layout.run_output(task_id, version, team, run, "report.json"))


def read_item_tables(ctx, board: leaderboards.Leaderboard, runs: list[dict]) -> dict[tuple[str, str], Any]:
    """The per-item tables (pandas, index = item id) of the ranked runs, from the versions that scored them:
    one GET per ranked run and part (CPU; models, for a task with model metrics), none before it, the
    runs read side by side."""
    import pandas as pd

    from include.models.parts import has_model_part, item_table_names

    names = item_table_names() if has_model_part(ctx.campaign.task(board.task)) else item_table_names()[:1]
    by_key = {(r["team"], r["run"]): r for r in runs}
    prefixes = [((row.team, row.run), by_key[(row.team, row.run)]["files"])
                for row in board.ranked if by_key.get((row.team, row.run), {}).get("files")]
    wanted = [(key, prefix + name) for key, prefix in prefixes for name in names]
    parts: dict[tuple[str, str], list] = {}
    for (key, _), data in zip(wanted, ctx.store.get_many_or_none([object_key for _, object_key in wanted])):
        if data is not None:
            parts.setdefault(key, []).append(pd.read_csv(io.BytesIO(data), index_col="item", dtype={"item": str}))
    # the CPU part's per-item scores, joined with the models queue's
    return {key: pd.concat(found, axis=1) if len(found) > 1 else found[0] for key, found in parts.items()}


# --- leaderboards ----------------------------------------------------------------------------------------


def leaderboard_keys(ctx, task_id: str, version: str) -> dict[str, str]:
    """Every export's key, by export name (csv, json, html, latex, figure_pdf)."""
    return {export: ctx.layout.leaderboard_export(task_id, version, name) for export, (name, _) in LEADERBOARD_EXPORTS.items()}


def read_leaderboard(ctx, task_id: str, version: str) -> dict:
    return ctx.store.get_json(ctx.layout.leaderboard_export(task_id, version, LEADERBOARD_EXPORTS["json"][0]))


def write_leaderboard(ctx, task_id: str, version: str, board: leaderboards.Leaderboard) -> dict[str, str]:
    keys = leaderboard_keys(ctx, task_id, version)
    ctx.store.put_many(_leaderboard_objects(keys, board))
    return keys


def _leaderboard_objects(keys: dict[str, str], board: leaderboards.Leaderboard) -> dict[str, tuple[bytes, str]]:
    return {keys[export]: (data, LEADERBOARD_EXPORTS[export][1]) for export, data in board.exports().items()}


def write_version_outputs(ctx, task_id: str, version: str, evaluation: dict, diff: dict, board: leaderboards.Leaderboard) -> None:
    """A version's evaluation, diff and leaderboard exports, written side by side (the lineage, which
    marks the version complete, is written after them by :func:`write_lineage`)."""
    objects = {ctx.layout.evaluation_record(task_id, version, EVALUATION_FILE): (dump_json(evaluation), "application/json"),
               ctx.layout.evaluation_record(task_id, version, DIFF_FILE): (dump_json(diff), "application/json")}
    ctx.store.put_many({**objects, **_leaderboard_objects(leaderboard_keys(ctx, task_id, version), board)})


def read_publication(ctx, task_id: str) -> dict | None:
    """The record of the task's last publication, or None (one GET)."""
    return ctx.store.get_json_or_none(ctx.layout.publication_record(task_id))


def record_publication(ctx, task_id: str, version: str, record: dict) -> dict:
    """Keep the first record of ``version``'s publication (a retry keeps who approved it, when) and make
    it the current one; returns the record kept."""
    history = ctx.layout.publication_history(task_id, version)
    if not ctx.store.create_json_once(history, record):
        record = ctx.store.get_json(history)
    ctx.store.put_json(ctx.layout.publication_record(task_id), record)
    return record


def copy_to_public(ctx, task_id: str, version: str) -> list[str]:
    """The version's exports to ``public/leaderboards/<task>/`` (current) and ``…/<version>/`` (kept)."""
    keys = []
    for name, _ in LEADERBOARD_EXPORTS.values():
        source = ctx.layout.leaderboard_export(task_id, version, name)
        for destination in (ctx.layout.public_leaderboard(task_id, name), ctx.layout.public_leaderboard(task_id, name, version)):
            ctx.store.copy(source, destination)
            keys.append(destination)
    return keys


def public_leaderboard_key(ctx, task_id: str, export: str = "html") -> str:
    return ctx.layout.public_leaderboard(task_id, LEADERBOARD_EXPORTS[export][0])


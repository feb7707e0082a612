"""Finalizing an evaluation version: carry unchanged runs forward, write evaluation, diff, leaderboard, lineage.

A re-score of one team or run allocates a new version and carries the other runs forward from the
previous complete version, so every version is a complete evaluation of the task; a complete
version is never written again.
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping

from include.campaign import leaderboard as leaderboards
from include.campaign.evaluation.diff import diff_evaluations
from include.campaign.evaluation.lineage import build_lineage
from include.campaign.evaluation.records import (SUMMARY_KEYS, known_task, leaderboard_keys, read_diff, read_evaluation, read_item_tables,
                                                 read_leaderboard, read_collection_manifest, run_prefix, version_record, write_lineage,
                                                 write_version_outputs)
from include.campaign.evaluation.scoring import metric_specs
from include.campaign.evaluation.versioning import is_complete, latest_version
from include.models.parts import join_parts  # a run's CPU and model parts, one summary (imports no model library)


def finalize(ctx, task_id: str, version: str, summaries: Iterable[Mapping[str, Any] | None], reason: str, triggered_by: str,
             planned: Iterable[Mapping[str, Any]] | None = None, manifest_key: str | None = None) -> dict:
    """Complete the version: carry unchanged runs forward, write evaluation, diff, leaderboard, lineage.

    ``planned`` are the runs this version set out to score: one without a summary had its scoring
    task die, and is listed under ``missing`` with that reason (results name it to the organizer and
    tell its team). ``manifest_key`` is the collection manifest the scoring was planned from (the
    layout's place by default). Idempotent: a complete version is returned as it was, never rewritten.
    Returns a summary of the version (counts, top runs, leaderboard keys).
    """
    return finalize_with_records(ctx, task_id, version, summaries, reason, triggered_by, planned, manifest_key)[0]


def finalize_with_records(ctx, task_id: str, version: str, summaries: Iterable[Mapping[str, Any] | None], reason: str,
                          triggered_by: str, planned: Iterable[Mapping[str, Any]] | None = None,
                          manifest_key: str | None = None) -> tuple[dict, dict]:
    """:func:`finalize`, also returning the version's records (``evaluation``, ``diff``, ``leaderboard``
    as dicts) for what follows in the same task, so nothing just written is read back."""
    task = known_task(ctx, task_id)
    allocation = version_record(ctx, task_id, version)
    if is_complete(ctx, task_id, version):
        records = {"evaluation": read_evaluation(ctx, task_id, version), "diff": read_diff(ctx, task_id, version),
                   "leaderboard": read_leaderboard(ctx, task_id, version)}
        return _outcome(ctx, task_id, version, **records), records
    previous = latest_version(ctx, task_id, before=version)
    previous_evaluation = read_evaluation(ctx, task_id, previous) if previous else {"runs": [], "missing": []}
    previous_runs = {(r["team"], r["run"]): r for r in previous_evaluation["runs"]}
    scored = {(s["team"], s["run"]): {k: s.get(k) for k in SUMMARY_KEYS} for s in join_parts(task, summaries)
              if s.get("scored_in") == version}
    previous_missing = {(m["team"], m["run"]): m for m in previous_evaluation.get("missing") or []}
    planned_keys = {(p["team"], p["run"]) for p in planned or [] if isinstance(p, Mapping) and p.get("team")}
    runs, missing = _complete_run_list(ctx, task_id, version, read_collection_manifest(ctx, task_id, manifest_key), scored, previous_runs,
                                       planned_keys, previous_missing)
    evaluation = {"task": task_id, "version": version, "previous_version": previous, "runs": runs, "missing": missing}
    board = leaderboards.build(task, runs, metric_specs(task), version=version)
    leaderboards.add_statistics(board, read_item_tables(ctx, board, runs), metric_specs(task))
    evaluation["statistics"] = board.statistics
    previous_board = read_leaderboard(ctx, task_id, previous) if previous else None
    board_record = board.to_dict()
    diff = diff_evaluations(list(previous_runs.values()), runs, previous_board, board_record)
    diff.update({"task": task_id, "version": version, "previous_version": previous, "reason": allocation.get("reason") or reason})
    write_version_outputs(ctx, task_id, version, evaluation, diff, board)
    lineage = build_lineage(ctx, task, version, previous, allocation, runs, missing, reason, triggered_by, board.statistics)
    write_lineage(ctx, task_id, version, lineage)
    records = {"evaluation": evaluation, "diff": diff, "leaderboard": board_record}
    return _outcome(ctx, task_id, version, **records), records


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



def _outcome(ctx, task_id: str, version: str, evaluation: dict, diff: dict, leaderboard: dict) -> dict:
    board = leaderboard
    runs = evaluation["runs"]
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
        "leaderboard": leaderboard_keys(ctx, task_id, version),
    }


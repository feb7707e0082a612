"""Differences between two evaluation versions: changed scores and verdicts, added and removed runs, rank changes."""
from __future__ import annotations

import math
from typing import Any, Mapping

# Scores closer than this are the same score: re-running identical code must not report a change.
SCORE_TOLERANCE = 1e-12


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


"""Results day: publish a task's leaderboard, e-mail every team its own scores, and tell teams what a re-score changed.

Before publication, leaderboards live only under ``leaderboards/<task>/<version>/`` (private).
:func:`publish` copies the latest complete version's exports to ``public/leaderboards/<task>/``
(the current files, plus a copy per version), records the publication, and sends each team one
e-mail with every one of its runs' scores and ranks, its team rank, the number of participating
teams and a link to the public page; a team whose run could not be scored (its scoring task died)
is told which run and why, and the approval summary names such runs for the organizer to decide.
Every message goes through the stage's :class:`~include.campaign.teams.Notices` (the outbox), so a
second run sends nothing, a refused address is reported to the organizers while the other teams are
served, and only what failed for a transient reason is sent by a retry. After publication, :func:`notify_rescore` compares a new version with the one
last published, e-mails only the teams whose scores changed (what changed and why) and
re-publishes. A message never names another team's runs.
"""
from __future__ import annotations

import logging
from typing import Any, Mapping

from include.campaign.evaluation import records, versioning
from include.campaign.evaluation.diff import diff_evaluations
from include.campaign.leaderboard import DISPLAY_DECIMALS, NOT_COMPUTED, RANKED
from include.campaign.significance import interval_text, settings_text
from include.campaign.teams import Notices

logger = logging.getLogger(__name__)
RESULTS_PURPOSE, RESCORE_PURPOSE = "results", "rescore"
TOP_SHOWN = 10


class ResultsError(RuntimeError):
    """Nothing to publish, or a request that would go backwards; the text says what to do."""


# --- what the organizer sees before approving ---------------------------------------------------


def scoring_pending(ctx, task_ids: list[str]) -> list[str]:
    """The tasks whose latest collected runs have no complete evaluation yet (scoring still running,
    or failed): results wait for them. A task with nothing collected has nothing to wait for."""
    pending = []
    for task_id in task_ids:
        manifest = ctx.store.head(ctx.layout.collection_manifest(task_id))
        if manifest is None:
            continue
        version = versioning.latest_version(ctx, task_id)
        finished = records.lineage_info(ctx, task_id, version) if version else None
        if finished is None or finished.last_modified < manifest.last_modified:
            pending.append(task_id)
    return pending


def summary(ctx, task_id: str) -> str:
    """The text shown in the approval step: version, counts, top of the leaderboard, publication state."""
    task = ctx.campaign.task(task_id)
    version = versioning.latest_version(ctx, task_id)
    if version is None:
        return f"{task.title} ({task_id}): no complete evaluation yet; nothing to publish."
    lineage = _lineage(ctx, task_id, version)
    board = records.read_leaderboard(ctx, task_id, version)
    rows = board["rows"]
    counts = {status: sum(row["status"] == status for row in rows) for status in (RANKED, "not ranked", "invalid")}
    lines = [
        f"{ctx.campaign.name} / {task.title} ({task_id})",
        f"Evaluation {version}, requested {lineage.get('requested_at')} by {lineage.get('triggered_by')}: {lineage.get('reason')}",
        f"{len(rows)} runs from {board['participating_teams']} teams: {counts[RANKED]} ranked, "
        f"{counts['not ranked']} valid but not ranked, {counts['invalid']} invalid or not scored.",
    ]
    if board["ranked_by"]:
        direction = next(m for m in board["metrics"] if m["name"] == board["ranked_by"])["higher_is_better"]
        lines.append(f"Ranked by {board['ranked_by']} ({'higher' if direction else 'lower'} is better).")
    if board.get("note"):
        lines.append(f"Note: {board['note']}")
    evaluation = records.read_evaluation(ctx, task_id, version)
    withheld = primary_not_computed(task, evaluation)
    if withheld:
        lines.append(f"WITHHELD: {withheld} Approving does not publish this task and e-mails no team; "
                     f"fetch the model(s) (python -m include.cli models CAMPAIGN lists them) and re-score.")
    lines += _missing_lines(ctx, task_id, evaluation)
    ranked = [row for row in rows if row["status"] == RANKED]
    if ranked:
        lines.append(f"Top {min(TOP_SHOWN, len(ranked))} of {len(ranked)} ranked runs:")
        lines += [f"  {row['rank']:>3}  {row['team']} / {row['run']}  {_number(row['metrics'].get(board['ranked_by']))}{_significance(row)}"
                  for row in ranked[:TOP_SHOWN]]
        lines += _significance_summary(board)
    lines.append(_publication_state(ctx, task_id, version))
    return "\n".join(lines)


def primary_not_computed(task, evaluation: Mapping[str, Any]) -> str | None:
    """Why the task cannot be published, when no valid run has a value of its primary metric
    (typically the model it needs is missing: the recorded reason names it); None otherwise."""
    valid = [run for run in evaluation.get("runs") or [] if run.get("verdict") == "valid"]
    primary = task.primary_metric
    if not valid or any((run.get("metrics") or {}).get(primary) is not None for run in valid):
        return None
    reasons = sorted({(run.get("not_computed") or {}).get(primary) or "not computed" for run in valid})
    return (f"the primary metric {primary} is not computed for any of the {len(valid)} valid run(s) "
            f"({'; '.join(reasons)}).")


def _missing_lines(ctx, task_id: str, evaluation: Mapping[str, Any]) -> list[str]:
    """The collected runs without a score, named for the organizer to decide before approving."""
    missing = missing_runs(evaluation)
    if not missing:
        return []
    teams = sorted({m["team"] for m in missing})
    lines = [f"NOT SCORED: {len(missing)} collected run(s) of {len(teams)} team(s) have no score in {evaluation['version']}:"]
    lines += [f"  {m['team']} / {m['run']}: {m.get('reason', 'not scored')} (missing since {m.get('since', evaluation['version'])})" for m in missing]
    lines.append(f"Approving publishes without them and tells each of these teams that its run was not scored and why. To score "
                 f"them first, reject, then trigger {ctx.campaign.id}_scoring by hand with task {task_id}, teams {', '.join(teams)}, "
                 f"runs {', '.join(m['team'] + '/' + m['run'] for m in missing)} and a reason.")
    return lines


def _publication_state(ctx, task_id: str, version: str) -> str:
    record = published(ctx, task_id)
    if record is None:
        return "Not published yet: approving publishes this leaderboard and e-mails every team its results."
    if record["version"] == version:
        return f"Already published ({version}, approved by {record.get('approved_by')}); publishing again sends no e-mail."
    return (f"Published version: {record['version']}; this newer evaluation will be published and only teams "
            "whose scores changed will be e-mailed.")


# --- publication ----------------------------------------------------------------------------------


def published(ctx, task_id: str) -> dict | None:
    """The record of the last publication of the task (version, since, who, when), or None."""
    return records.read_publication(ctx, task_id)


def publish(ctx, task_id: str, approved_by: str, public_base_url: str | None = None) -> dict:
    """Publish the latest complete evaluation of the task and e-mail each team its results once.

    If an older version was published already, this publishes the newer one and e-mails only the
    teams whose scores changed (as :func:`notify_rescore`). ``public_base_url`` (or the context's
    ``settings.public_base_url``, from ``CLEF_PUBLIC_BASE_URL``) replaces presigned links with public ones.
    """
    task = ctx.campaign.task(task_id)
    version = versioning.latest_version(ctx, task_id)
    if version is None:
        raise ResultsError(f"task {task_id}: no complete evaluation to publish; run the scoring DAG first")
    evaluation = records.read_evaluation(ctx, task_id, version)
    withheld = primary_not_computed(task, evaluation)
    if withheld:  # a leaderboard without its ranking score is not published, and no team is told a rank
        logger.warning("task %s %s not published: %s", task_id, version, withheld)
        return {**_mail_report(task_id, version), "published": False, "withheld": withheld}
    record = published(ctx, task_id)
    if record is not None and record["version"] != version:
        reason = _lineage(ctx, task_id, version).get("reason", "re-scored")
        return notify_rescore(ctx, task_id, version, reason, public_base_url=public_base_url, approved_by=approved_by)
    _copy_to_public(ctx, task_id, version)
    if record is None:
        _record_publication(ctx, task_id, version, since=None, approved_by=approved_by, reason="results release")
    board = records.read_leaderboard(ctx, task_id, version)
    link = public_link(ctx, task_id, public_base_url)
    notices = Notices(ctx, task_ids=(task_id,))
    report = _mail_report(task_id, version)
    for team in result_teams(board, evaluation):
        _notify(ctx, notices, report, team, RESULTS_PURPOSE, f"{task_id}.{team}",
                lambda contact: _results_context(ctx, task, board, evaluation, team, contact, link))
    return _finish(notices, report, f"results of {task_id}")


def notify_rescore(ctx, task_id: str, version: str, reason: str, public_base_url: str | None = None,
                   approved_by: str | None = None, current: Mapping[str, Any] | None = None) -> dict:
    """After publication: publish ``version`` and e-mail only the teams whose scores changed since the published one.

    Before publication this does nothing (leaderboards stay private); an older version than the
    published one is refused. Each message says what changed (old and new values, ranks) and why.
    ``current`` are the version's records (``evaluation``, ``leaderboard``) when the caller just
    finalized it (:func:`~include.campaign.evaluation.finalize_with_records`): it is then known to be
    complete and nothing of it is read back.
    """
    task = ctx.campaign.task(task_id)
    record = published(ctx, task_id)
    if record is None:
        return {"task": task_id, "version": version, "published": False, "sent": [], "note": "results not published yet: nothing e-mailed"}
    if current is None and not versioning.is_complete(ctx, task_id, version):
        raise ResultsError(f"task {task_id}: evaluation {version} is not complete; finalize it before notifying teams")
    if _number_of(version) < _number_of(record["version"]):
        raise ResultsError(f"task {task_id}: {record['version']} is published; {version} is older and is not published over it")
    evaluation = current["evaluation"] if current is not None else records.read_evaluation(ctx, task_id, version)
    withheld = primary_not_computed(task, evaluation)
    if withheld and record["version"] != version:  # the published leaderboard stays until the primary is computed again
        logger.warning("task %s %s not published over %s: %s", task_id, version, record["version"], withheld)
        return {**_mail_report(task_id, version), "published": False, "withheld": withheld}
    # A retry after the record was written compares with what the record replaced, so no team is missed.
    since = record["version"] if record["version"] != version else record.get("since")
    _copy_to_public(ctx, task_id, version)
    if record["version"] != version:
        who = approved_by or f"re-score by {_lineage(ctx, task_id, version).get('triggered_by', 'unknown')}"
        _record_publication(ctx, task_id, version, since=since, approved_by=who, reason=reason)
    report: dict[str, Any] = {**_mail_report(task_id, version), "since": since, "published": True, "teams_changed": []}
    if since is None:
        return report
    since_evaluation, since_board = records.read_evaluation(ctx, task_id, since), records.read_leaderboard(ctx, task_id, since)
    board = current["leaderboard"] if current is not None else records.read_leaderboard(ctx, task_id, version)
    diff = diff_evaluations(since_evaluation["runs"], evaluation["runs"], since_board, board)
    link = public_link(ctx, task_id, public_base_url)
    report["teams_changed"] = diff["teams_changed"]
    notices = Notices(ctx, task_ids=(task_id,))
    for team in diff["teams_changed"]:
        _notify(ctx, notices, report, team, RESCORE_PURPOSE, f"{task_id}.{version}.{team}",
                lambda contact: _rescore_context(ctx, task, board, evaluation, diff, team, contact, link, since, version, reason))
    return _finish(notices, report, f"re-score notices of {task_id} {version}")


def _mail_report(task_id: str, version: str) -> dict[str, Any]:
    return {"task": task_id, "version": version, "sent": [], "already_sent": [], "unreachable": [], "not_sent": []}


def _notify(ctx, notices: Notices, report: dict, team: str, purpose: str, milestone: str, build_context) -> None:
    """One team's message through the stage's :class:`Notices`: sent once; a refused address is reported
    (to the organizers too) and the other teams are served."""
    contact = team_contact(ctx, team)
    if contact is None:
        report["unreachable"].append({"team": team, "reason": f"no contact e-mail in {ctx.layout.team_record(team)}"})
        return
    sent_before, refused_before = len(notices.sent), len(notices.undeliverable)
    if notices.send(purpose, milestone, contact["email"], **build_context(contact)):
        report["sent" if len(notices.sent) > sent_before else "already_sent"].append(team)
    elif len(notices.undeliverable) > refused_before:
        report["unreachable"].append({"team": team, "reason": f"{contact['email']} is undeliverable: {notices.undeliverable[-1]['error']}"})
    else:
        report["not_sent"].append(team)


def _finish(notices: Notices, report: dict, stage: str) -> dict:
    """Tell the organizers about refused addresses, then fail (for a retry) if some mail is still to send."""
    report["mail"] = notices.summary()
    notices.raise_if_failed(stage)
    return report


def _copy_to_public(ctx, task_id: str, version: str) -> list[str]:
    """The version's exports to ``public/leaderboards/<task>/`` (current) and ``…/<version>/`` (kept)."""
    return records.copy_to_public(ctx, task_id, version)


def _record_publication(ctx, task_id: str, version: str, since: str | None, approved_by: str, reason: str) -> None:
    record = {"task": task_id, "version": version, "since": since, "approved_by": approved_by, "reason": reason,
              "published_at": ctx.now().isoformat(), "public_prefix": ctx.layout.public_leaderboards(task_id)}
    records.record_publication(ctx, task_id, version, record)  # a retry keeps the first record (who approved, when)


def public_link(ctx, task_id: str, public_base_url: str | None = None) -> str:
    """The public HTML leaderboard: under the configured base URL, else a presigned GET link."""
    key = records.public_leaderboard_key(ctx, task_id, "html")
    base = public_base_url or ctx.settings.public_base_url
    if base:
        return f"{base.rstrip('/')}/{key}"
    return ctx.store.presigned_get(key, ctx.campaign.links.download_expiry_hours * 3600)


# --- teams ----------------------------------------------------------------------------------------


def board_teams(board: Mapping[str, Any]) -> list[str]:
    return sorted({row["team"] for row in board["rows"]})


def result_teams(board: Mapping[str, Any], evaluation: Mapping[str, Any]) -> list[str]:
    """Every team with a collected run: on the leaderboard, or with runs that could not be scored."""
    return sorted(set(board_teams(board)) | {m["team"] for m in missing_runs(evaluation)})


def missing_runs(evaluation: Mapping[str, Any]) -> list[dict]:
    """The collected runs the evaluation has no score for, each with the reason (told to its team as is)."""
    return list(evaluation.get("missing") or [])


def team_contact(ctx, team_id: str) -> dict | None:
    """A team's display name and contact e-mail from its registration record, or None."""
    record = ctx.store.get_json_or_none(ctx.layout.team_record(team_id))
    if record is None:
        return None
    contact = record.get("contact") if isinstance(record.get("contact"), Mapping) else {}
    email = record.get("contact_email") or record.get("email") or contact.get("email")
    if not email:
        return None
    return {"email": str(email), "name": str(record.get("team_name") or record.get("name") or team_id),
            "contact_name": str(record.get("contact_name") or contact.get("name") or "")}


# --- message contents -------------------------------------------------------------------------------


def _results_context(ctx, task, board: Mapping[str, Any], evaluation: Mapping[str, Any], team: str, contact: dict, link: str) -> dict:
    runs_by_key = {(r["team"], r["run"]): r for r in evaluation["runs"]}
    team_rows = [row for row in board["rows"] if row["team"] == team]
    ranked_teams = board["team_ranks"]
    return {
        **_common_context(ctx, task, board, team, contact, link),
        "runs": [dict(_run_lines(board, row, runs_by_key.get((team, row["run"]), {})),
                      problems=_report_lines(ctx, task.id, evaluation, team, row, runs_by_key.get((team, row["run"]), {})))
                 for row in sorted(team_rows, key=lambda r: r["run"])],
        "team_rank": ranked_teams.get(team),
        "ranked_teams": len(ranked_teams),
        "ranked_runs": sum(row["status"] == RANKED for row in board["rows"]),
        "has_not_computed": any(row["status"] != "invalid" and None in row["metrics"].values() for row in team_rows),
        "significance": settings_text(board["statistics"]["settings"]) if (board.get("statistics") or {}).get("settings") else "",
        "missing": _team_missing(evaluation, team),
    }


REPORT_LINES = 10  # the first problems of an invalid run's validation report, in its results e-mail


def _report_lines(ctx, task_id: str, evaluation: Mapping[str, Any], team: str, row: Mapping[str, Any], run: Mapping[str, Any]) -> list[str]:
    """For an invalid run: its first problems, each with file, line and rule, from its validation report."""
    if row["status"] != "invalid":
        return []
    report = records.read_run_report(ctx, task_id, run.get("scored_in") or evaluation["version"], team, row["run"])
    if report is None:
        return []
    lines = []
    for finding in report.get("rules_broken") or []:
        for example in finding.get("examples") or [{}]:
            where = example.get("file") or ""
            where += f" line {example['line']}" if example.get("line") is not None else (f": member {example['member']}" if example.get("member") else "")
            lines.append(f"{where + ': ' if where else ''}{example.get('message') or finding.get('description')} [{finding.get('rule')}]")
            if len(lines) >= REPORT_LINES:
                return lines
    return lines


def _team_missing(evaluation: Mapping[str, Any], team: str) -> list[dict]:
    return [{"run": m["run"], "reason": m.get("reason") or "it could not be scored"} for m in missing_runs(evaluation) if m["team"] == team]


def _rescore_context(ctx, task, board, evaluation, diff, team, contact, link, since, version, reason) -> dict:
    rows = {row["run"]: row for row in board["rows"] if row["team"] == team}
    missing = {m["run"]: m["reason"] for m in _team_missing(evaluation, team)}
    changes = [c for c in diff["changed"] if c["team"] == team]
    ranks = {c["run"]: c for c in diff["rank_changes"] if c["team"] == team}
    return {
        **_common_context(ctx, task, board, team, contact, link),
        "reason": reason, "since": since, "version": version,
        "changes": [
            {
                "run": change["run"],
                "verdict": change.get("verdict"),
                "metrics": [(name, _shown_if(change, "old", name), _shown_if(change, "new", name))
                            for name in _in_task_order(board, change.get("metrics") or {})],
                "rank": ranks.get(change["run"]),
            }
            for change in changes
        ],
        "added": [a["run"] for a in diff["added"] if a["team"] == team],
        "removed": [{"run": r["run"], "reason": missing.get(r["run"], "")} for r in diff["removed"] if r["team"] == team],
        "missing": [{"run": run, "reason": why} for run, why in sorted(missing.items()) if run not in rows],
        "current": [_run_lines(board, rows[run], {}) for run in sorted(rows)],
        "team_rank": board["team_ranks"].get(team),
        "ranked_teams": len(board["team_ranks"]),
    }


def _shown_if(change: Mapping[str, Any], side: str, metric: str) -> str:
    """A changed value as the team should read it: "not scored" on the side where the run was not valid."""
    verdict = (change.get("verdict") or {}).get(side, "valid")
    return _number(change["metrics"][metric][side]) if verdict == "valid" else "not scored"


def _in_task_order(board: Mapping[str, Any], names) -> list[str]:
    order = [m["name"] for m in board["metrics"]]
    return sorted(names, key=lambda name: (order.index(name) if name in order else len(order), name))


def _common_context(ctx, task, board, team, contact, link) -> dict:
    return {
        "campaign_name": ctx.campaign.name, "task_title": task.title, "task_id": task.id, "team": team,
        "team_name": contact["name"], "contact_name": contact["contact_name"], "link": link,
        "participating_teams": board["participating_teams"], "ranked_by": board["ranked_by"], "version": board["version"],
        "link_hours": ctx.campaign.links.download_expiry_hours, "contact_email": ctx.campaign.contact_email,
        "reply_to": ctx.campaign.contact_email, "note": board.get("note") or "",
    }


def _run_lines(board: Mapping[str, Any], row: Mapping[str, Any], run: Mapping[str, Any]) -> dict:
    return {
        "run": row["run"], "status": row["status"], "rank": row["rank"], "note": row.get("note") or run.get("reason") or "",
        "metrics": [(m["name"], _number(row["metrics"].get(m["name"])) if row["status"] != "invalid" else "")
                    for m in board["metrics"]],
        "interval": interval_text(row.get("interval"), DISPLAY_DECIMALS), "group": row.get("group") or "",
        "differs_from_best": row.get("differs_from_best"), "p_vs_best": row.get("p_vs_best"),
    }


def _significance(row: Mapping[str, Any]) -> str:
    """``  95 % CI [a, b], group x`` for a ranked row with an interval, else nothing."""
    if not row.get("interval"):
        return ""
    return f"  95 % CI {interval_text(row['interval'], DISPLAY_DECIMALS)}, group {row.get('group') or '-'}"


def _significance_summary(board: Mapping[str, Any]) -> list[str]:
    """How many runs share the best run's group, and how the intervals and groups were computed."""
    statistics = board.get("statistics") or {}
    if not statistics.get("settings"):
        return [f"No confidence intervals or groups: {statistics['note']}"] if statistics.get("note") else []
    ranked = [row for row in board["rows"] if row["status"] == RANKED and row.get("interval")]
    best_group = ranked[0].get("group") if ranked else None
    tied = sum(row.get("group") == best_group for row in ranked)
    lines = [f"{tied} of {len(ranked)} ranked runs are not significantly different from the best one (group {best_group}).",
             f"Significance: {settings_text(statistics['settings'])}."]
    if statistics.get("note"):
        lines.append(f"Note on significance: {statistics['note']}")
    return lines


def _number(value: float | None) -> str:
    return NOT_COMPUTED if value is None else f"{value:.{DISPLAY_DECIMALS}f}"


def _number_of(version: str) -> int:
    return versioning.version_number(version)


def _lineage(ctx, task_id: str, version: str) -> dict:
    return records.read_lineage(ctx, task_id, version)

"""The organizers' view of one campaign: what each panel of the Campaigns page shows, from the object store.

This is the view model behind the Airflow UI's **Campaigns** entry (``plugins/campaigns_view.py``).
It reads only through :class:`~include.campaign.store.ObjectStore` and builds every key with
:class:`~include.campaign.layout.Layout`, so the page shows exactly what the stages wrote:

- ``timeline``: every milestone of every task, with the DAG run that served it (the plugin passes the
  Airflow DAG runs in; this module never imports Airflow) and its state;
- ``registrations``: teams per task, agreements waiting for a decision, rejected registrations;
- ``submissions``: per task, a team x run grid: uploads before the deadline, then the collection
  manifest and the latest evaluation's verdicts (valid, invalid with the first problem, late, over
  the limit, refused);
- ``evaluations``: every version with its reason, who asked for it and its diff, and the private
  leaderboard of the latest complete version;
- ``mail``: messages sent per purpose and milestone, and undeliverable addresses with the reason.

The page shows one panel at a time (tabs), so each answer reads only what its panel needs: a
campaign of 11 tasks, 200 teams and 2,000 runs means a few hundred small objects for the busiest
panel. They are read concurrently (boto3 clients are thread-safe), listings are used wherever a
key says enough and parsed with ElementTree (:meth:`ObjectStore.scan`; botocore's parser cost the
Mail tab more than the server's listing), and an object that may be absent costs one GET, not a
HEAD and a GET.
"""
from __future__ import annotations

import datetime as dt
import threading
from collections import Counter, OrderedDict, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Sequence

from include.campaign.evaluation.versioning import versions as evaluation_versions
from include.campaign.evaluation.records import DIFF_FILE, EVALUATION_FILE, LEADERBOARD_EXPORTS, LINEAGE_FILE, VERSION_FILE
from include.campaign.timeline import milestone_events, reminder_events
from include.campaign.config import MILESTONE_LABELS
from include.campaign.context import CampaignContext
from include.campaign.store import StoreError
from include.campaign.teams import NOT_REQUIRED

UTC = dt.timezone.utc
READERS = 16  # concurrent object reads; moto, MinIO and S3 all serve this many without throttling
CACHED_OBJECTS = 50_000  # parsed JSON objects kept between pages (a 200-team campaign has about 1,000)
REJECTED_SHOWN = 100  # newest rejected registrations listed (the count covers all of them)

# Which DAG (by stage suffix) serves which milestone; conference dates have no stage.
STAGE_OF_MILESTONE = {
    "registration_opens": "registration",
    "registration_closes": "registration",
    "dev_data_release": "data_release",
    "test_data_release": "data_release",
    "run_deadline": "run_collection",
    "results_release": "results",
}
REMINDER_STAGE = "working_notes"
STATE_DONE, STATE_RUNNING, STATE_FAILED, STATE_NEXT, STATE_LATER, STATE_MISSED = "done", "running", "failed", "next", "later", "not run"
_RUN_STATES = {"success": STATE_DONE, "failed": STATE_FAILED, "running": STATE_RUNNING, "queued": STATE_RUNNING}


@dataclass(frozen=True)
class DagRunInfo:
    """What the page needs of one Airflow DAG run (the plugin reads these from Airflow)."""

    dag_id: str
    run_id: str
    logical_date: dt.datetime | None
    state: str
    triggered_by: str | None = None


# --- the whole page ------------------------------------------------------------------------------


def campaign_overview(ctx: CampaignContext, dag_runs: Iterable[DagRunInfo] = ()) -> dict[str, Any]:
    """Every panel of one campaign (the JSON view for scripts; the page shows one panel at a time)."""
    reader, runs = _Reader(ctx), list(dag_runs)
    # The panels read disjoint prefixes: build them side by side, so the answer costs its slowest panel.
    built = dict(zip(PANELS, reader.map(lambda name: PANEL_BUILDERS[name](ctx, reader, runs), PANELS)))
    return {"campaign": _header(ctx), "now": ctx.now().astimezone(UTC).isoformat(), **built}


def campaign_panel(ctx: CampaignContext, panel: str, dag_runs: Iterable[DagRunInfo] = ()) -> dict[str, Any]:
    """One panel of the page (the page shows one at a time, as tabs), with the campaign's header."""
    if panel not in PANEL_BUILDERS:
        raise ValueError(f"unknown panel {panel!r}; one of {', '.join(PANELS)}")
    built = PANEL_BUILDERS[panel](ctx, _Reader(ctx), list(dag_runs))
    return {"campaign": _header(ctx), "now": ctx.now().astimezone(UTC).isoformat(), "panel": panel, panel: built}


def _header(ctx: CampaignContext) -> dict[str, Any]:
    return {"id": ctx.campaign.id, "name": ctx.campaign.name, "timezone": ctx.campaign.timezone,
            "tasks": [{"id": t.id, "title": t.title} for t in ctx.campaign.tasks]}


def campaign_summary(ctx: CampaignContext) -> dict[str, Any]:
    """One line of the list of campaigns: name, tasks, the next milestone."""
    upcoming = [e for e in milestone_events(ctx.campaign) if e.moment_utc > ctx.now()]
    following = upcoming[0] if upcoming else None
    return {
        "id": ctx.campaign.id, "name": ctx.campaign.name, "tasks": len(ctx.campaign.tasks),
        "next": None if following is None else {"label": following.label, "at": following.moment_utc.isoformat(), "tasks": list(following.task_ids)},
    }


# --- timeline ------------------------------------------------------------------------------------


def timeline(ctx: CampaignContext, dag_runs: Sequence[DagRunInfo]) -> list[dict[str, Any]]:
    """Every milestone moment in time order with its state and the DAG run that served it."""
    campaign = ctx.campaign
    runs_by_moment = {(run.dag_id, _utc(run.logical_date)): run for run in dag_runs if run.logical_date is not None}
    rows = []
    for event in _all_events(campaign):
        stage = STAGE_OF_MILESTONE.get(event.milestone) or (REMINDER_STAGE if event.milestone not in MILESTONE_LABELS else None)
        dag_id = f"{campaign.id}_{stage}" if stage else None
        run = runs_by_moment.get((dag_id, event.moment_utc)) if dag_id else None
        rows.append({
            "milestone": event.milestone, "label": _event_label(event.milestone), "tasks": list(event.task_ids),
            "at_utc": event.moment_utc.isoformat(), "at_campaign": event.moment.astimezone(campaign.zone).strftime("%Y-%m-%d %H:%M %Z"),
            "dag_id": dag_id, "run_id": run.run_id if run else None, "run_state": run.state if run else None,
            "state": _state(run, event.moment_utc, ctx.now(), has_stage=dag_id is not None),
        })
    _mark_next(rows)
    return rows


def _all_events(campaign):
    events = milestone_events(campaign) + reminder_events(campaign)
    return sorted(events, key=lambda e: (e.moment_utc, e.milestone))


def _event_label(milestone: str) -> str:
    if milestone in MILESTONE_LABELS:
        return MILESTONE_LABELS[milestone]
    base, _, days = milestone.rpartition("_minus_")
    return f"reminder: {MILESTONE_LABELS.get(base, base)} in {days.rstrip('d')} day(s)" if base else milestone.replace("_", " ")


def _state(run: DagRunInfo | None, moment: dt.datetime, now: dt.datetime, has_stage: bool) -> str:
    if run is not None:
        return _RUN_STATES.get(run.state, run.state)
    if moment > now:
        return STATE_LATER
    return STATE_MISSED if has_stage else STATE_DONE


def _mark_next(rows: list[dict[str, Any]]) -> None:
    """The first milestone still to come is ``next`` (several if they share its moment)."""
    later = [row for row in rows if row["state"] == STATE_LATER]
    if later:
        first = later[0]["at_utc"]
        for row in later:
            if row["at_utc"] == first:
                row["state"] = STATE_NEXT


def _utc(moment: dt.datetime) -> dt.datetime:
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


# --- registrations -------------------------------------------------------------------------------


def registrations(ctx: CampaignContext, reader: "_Reader", teams: list[dict[str, Any]]) -> dict[str, Any]:
    """Teams per task, agreements waiting for a decision, rejected registrations with their reasons."""
    decisions = _agreement_decisions(ctx, reader)
    per_task, pending = [], []
    for task in ctx.campaign.tasks:
        registered = [team for team in teams if task.id in team.get("tasks", [])]
        counts: Counter[str] = Counter()
        for team in registered:
            status = _agreement_state(task.requires_agreement, decisions.get((team["team_id"], task.id)))
            counts[status] += 1
            if status == "pending":
                pending.append({"team_id": team["team_id"], "team_name": team.get("team_name", ""), "task": task.id,
                                "agreement": (team.get("agreements") or {}).get(task.id), "contact": team.get("contact_email", "")})
        per_task.append({"task": task.id, "title": task.title, "teams": len(registered), "requires_agreement": task.requires_agreement,
                         "approved": counts["approved"], "pending": counts["pending"], "refused": counts["refused"]})
    rejected_keys = sorted((info for info in reader.objects(ctx.layout.registrations_rejected()) if info.key.endswith("/reason.json")), key=lambda info: info.key)
    rejected = reader.listed_json(rejected_keys[-REJECTED_SHOWN:])
    rejected.sort(key=lambda r: r.get("received_at") or "", reverse=True)
    return {
        "teams": len(teams), "per_task": per_task, "pending": pending,
        "rejected_total": len(rejected_keys),
        "rejected": [{"document": r.get("document", ""), "received_at": r.get("received_at", ""), "reasons": list(r.get("reasons") or [])} for r in rejected],
    }


def _agreement_decisions(ctx: CampaignContext, reader: "_Reader") -> dict[tuple[str, str], dict[str, Any]]:
    prefix = ctx.layout.approvals()
    decisions = {}
    for record in reader.json_under(prefix):
        decisions[(record.get("team"), record.get("task"))] = record
    return decisions


def _agreement_state(required: bool, decision: Mapping[str, Any] | None) -> str:
    if not required:
        return NOT_REQUIRED
    if decision is None:
        return "pending"
    return "approved" if decision.get("approved") else "refused"


# --- submissions ---------------------------------------------------------------------------------


CELL_RECEIVED, CELL_VALID, CELL_INVALID, CELL_LATE, CELL_OVER, CELL_REFUSED, CELL_COLLECTED = (
    "received", "valid", "invalid", "late", "over the limit", "refused", "collected")


def submissions(ctx: CampaignContext, reader: "_Reader") -> list[dict[str, Any]]:
    """Per task, a team x run grid; after the deadline from the collection manifest and the evaluation."""
    return reader.map(lambda task: _task_grid(ctx, reader, task), ctx.campaign.tasks)


def _task_grid(ctx: CampaignContext, reader: "_Reader", task) -> dict[str, Any]:
    manifest = reader.json_or_none(ctx.layout.collection_manifest(task.id))
    cells: dict[tuple[str, str], dict[str, Any]] = {}
    if manifest is None:
        for info in reader.objects(ctx.layout.submissions(task.id)):
            team, _, run = info.key[len(ctx.layout.submissions(task.id)):].partition("/")
            cells[(team, run)] = {"state": CELL_RECEIVED, "detail": f"{info.size:,} bytes, {info.last_modified.astimezone(UTC):%Y-%m-%d %H:%M} UTC"}
        source = "uploads so far (before the deadline)"
    else:
        _manifest_cells(manifest, cells)
        _verdict_cells(ctx, reader, task.id, cells)
        source = "collection at the deadline"
    teams = sorted({team for team, _ in cells})
    runs = sorted({run for _, run in cells})
    return {"task": task.id, "title": task.title, "source": source, "teams": teams, "runs": runs,
            "cells": {f"{team}/{run}": cell for (team, run), cell in sorted(cells.items())},
            "counts": dict(Counter(cell["state"] for cell in cells.values()))}


def _manifest_cells(manifest: Mapping[str, Any], cells: dict) -> None:
    for entry in manifest.get("collected") or []:
        cells[(entry["team"], entry["run"])] = {"state": CELL_COLLECTED, "detail": f"sha256 {str(entry.get('sha256', ''))[:12]}…"}
    for part, state in (("late", CELL_LATE), ("dropped_over_limit", CELL_OVER), ("refused", CELL_REFUSED)):
        for entry in manifest.get(part) or []:
            key = (str(entry.get("team", "")), str(entry.get("run", "")))
            cells.setdefault(key, {"state": state, "detail": entry.get("reason") or f"uploaded {entry.get('uploaded_at', '')}"})


def _verdict_cells(ctx: CampaignContext, reader: "_Reader", task_id: str, cells: dict) -> None:
    version = _latest_complete(ctx, reader, task_id)
    if version is None:
        return
    evaluation = reader.immutable_json_of([ctx.layout.evaluation_record(task_id, version, EVALUATION_FILE)])[0] or {}
    runs = evaluation.get("runs") or []
    invalid = [run for run in runs if run.get("verdict") != "valid"]
    reports = reader.immutable_json_of([f"{run['files']}report.json" for run in invalid if run.get("files")])
    first_problems = dict(zip([(r["team"], r["run"]) for r in invalid if r.get("files")], map(first_problem, reports)))
    for run in runs:
        key = (run["team"], run["run"])
        if run.get("verdict") == "valid":
            cells[key] = {"state": CELL_VALID, "detail": f"scored in {run.get('scored_in', version)}"}
        else:
            detail = first_problems.get(key) or run.get("reason") or run.get("verdict", "")
            cells[key] = {"state": CELL_INVALID, "detail": detail}
    for missing in evaluation.get("missing") or []:
        cells[(missing["team"], missing["run"])] = {"state": "not scored", "detail": missing.get("reason", "")}


def first_problem(report: Mapping[str, Any]) -> str:
    """``run.csv line 3: 'maybe' is not one of 0, 1 (label.allowed)``: the first broken rule where it first broke."""
    for finding in report.get("rules_broken") or []:
        if not isinstance(finding, Mapping):
            return str(finding)
        for example in finding.get("examples") or []:
            where = example.get("file", "")
            if example.get("line") is not None:
                where += f" line {example['line']}"
            elif example.get("member"):
                where += f": {example['member']}"
            return f"{where}: {example.get('message', '')} ({finding.get('rule', '')})"
        return f"{finding.get('description') or finding.get('rule', '')} ({finding.get('rule', '')})"
    return ""


# --- evaluations ---------------------------------------------------------------------------------


def evaluations(ctx: CampaignContext, reader: "_Reader") -> list[dict[str, Any]]:
    """Per task: every version (reason, who, when, complete, diff) and the latest private leaderboard."""
    return reader.map(lambda task: _task_evaluations(ctx, reader, task), ctx.campaign.tasks)


def _task_evaluations(ctx: CampaignContext, reader: "_Reader", task) -> dict[str, Any]:
    names = reader.version_names(task.id)
    record_of = lambda name, file: ctx.layout.evaluation_record(task.id, name, file)  # noqa: E731
    records = reader.immutable_json_of([record_of(name, VERSION_FILE) for name in names])
    complete = [bool(lineage) for lineage in reader.immutable_json_of([record_of(name, LINEAGE_FILE) for name in names])]
    diffs = reader.immutable_json_of([record_of(name, DIFF_FILE) for name, done in zip(names, complete) if done])
    diff_of = dict(zip([n for n, done in zip(names, complete) if done], diffs))
    versions = []
    for name, record, done in zip(names, records, complete):
        diff = diff_of.get(name) or {}
        versions.append({
            "version": name, "reason": record.get("reason", ""), "triggered_by": record.get("triggered_by", ""),
            "created_at": record.get("created_at", ""), "complete": done,
            "changed": [f"{c['team']}/{c['run']}" for c in diff.get("changed", [])],
            "added": [f"{c['team']}/{c['run']}" for c in diff.get("added", [])],
            "removed": [f"{c['team']}/{c['run']}" for c in diff.get("removed", [])],
            "rank_changes": len(diff.get("rank_changes", [])),
        })
    latest = next((v["version"] for v in reversed(versions) if v["complete"]), None)
    board = reader.immutable_json_of([ctx.layout.leaderboard_export(task.id, latest, LEADERBOARD_EXPORTS["json"][0])])[0] if latest else None
    published = reader.json_or_none(ctx.layout.publication_record(task.id))
    return {"task": task.id, "title": task.title, "versions": list(reversed(versions)), "latest": latest,
            "leaderboard": _board_preview(board), "published_version": (published or {}).get("version")}


def _board_preview(board: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if not board:
        return None
    metrics = [m["name"] for m in board.get("metrics", [])]
    return {"ranked_by": board.get("ranked_by"), "metrics": metrics, "note": board.get("note"),
            "rows": [{"rank": row.get("rank"), "team": row["team"], "run": row["run"], "status": row["status"],
                      "values": [row.get("metrics", {}).get(name) for name in metrics]} for row in board.get("rows", [])]}


def _latest_complete(ctx: CampaignContext, reader: "_Reader", task_id: str) -> str | None:
    names = reader.version_names(task_id)
    complete = reader.immutable_json_of([ctx.layout.evaluation_record(task_id, n, LINEAGE_FILE) for n in names])
    done = [name for name, lineage in zip(names, complete) if lineage]
    return done[-1] if done else None


# --- mail ----------------------------------------------------------------------------------------


def mail(ctx: CampaignContext, reader: "_Reader") -> dict[str, Any]:
    """Messages sent per purpose and milestone (outbox markers), and those refused or of unknown fate."""
    problems = undeliverable(ctx, reader)
    problem_keys = {p["marker"] for p in problems}
    prefix = ctx.layout.outbox_prefix()
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for key in reader.keys(prefix):
        parts = key[len(prefix):].split("/")
        if len(parts) == 3 and key not in problem_keys:
            counts[parts[0]][parts[1]] += 1
    sent = [{"purpose": purpose, "total": sum(by_milestone.values()),
             "milestones": [{"milestone": m, "messages": n} for m, n in sorted(by_milestone.items())]}
            for purpose, by_milestone in sorted(counts.items())]
    return {"sent": sent, "total": sum(item["total"] for item in sent), "undeliverable": problems}


def undeliverable(ctx: CampaignContext, reader: "_Reader") -> list[dict[str, Any]]:
    """Messages the SMTP server refused for good, or whose delivery is unknown, newest first.

    The index under ``undeliverable/`` names them; each one's outbox marker is read again, so a
    message an organizer had sent again (by deleting its marker) no longer shows.
    """
    records = reader.json_under(ctx.layout.undeliverable_prefix())
    markers = [_marker_key(ctx, r) for r in records]
    current = reader.json_of([m for m in markers if m])
    status_of = dict(zip([m for m in markers if m], current))
    shown = []
    for record, marker in zip(records, markers):
        status = (status_of.get(marker) or {}).get("status")
        if status in ("undeliverable", "unknown"):
            shown.append({"recipient": record.get("recipient", ""), "purpose": record.get("purpose", ""), "milestone": record.get("milestone", ""),
                          "status": status, "reason": record.get("error", ""), "at": record.get("tried_at", ""), "marker": marker})
    shown.sort(key=lambda r: r["at"], reverse=True)
    return shown


def _marker_key(ctx: CampaignContext, record: Mapping[str, Any]) -> str | None:
    try:
        return ctx.layout.outbox(record["purpose"], record["milestone"], record["recipient"])
    except (KeyError, ValueError):
        return None


# --- the panels, in the order of the page's tabs ---------------------------------------------------

# panel name -> builder(ctx, reader, dag_runs); the only list of panels (the tabs, the JSON view).
PANEL_BUILDERS: dict[str, Callable[[CampaignContext, "_Reader", list[DagRunInfo]], Any]] = {
    "timeline": lambda ctx, reader, runs: timeline(ctx, runs),
    "registrations": lambda ctx, reader, runs: registrations(ctx, reader, reader.json_under(ctx.layout.registrations_teams())),
    "submissions": lambda ctx, reader, runs: submissions(ctx, reader),
    "evaluations": lambda ctx, reader, runs: evaluations(ctx, reader),
    "mail": lambda ctx, reader, runs: mail(ctx, reader),
}
PANELS = tuple(PANEL_BUILDERS)


# --- reading many small objects -------------------------------------------------------------------


class _Reader:
    """Concurrent reads for one page: listings, JSON objects and existence checks.

    JSON objects found by a listing are cached by (key, ETag) across pages: the listing says which
    changed, so an organizer clicking through the tabs re-reads only what a stage wrote since. The
    objects of a complete evaluation version never change (scoring never rewrites one), so they are
    cached by key once read.
    """

    def __init__(self, ctx: CampaignContext):
        self.ctx = ctx
        self.store = ctx.store
        self._versions: dict[str, list[str]] = {}

    def map(self, function, items: Iterable[Any]) -> list[Any]:
        items = list(items)
        if len(items) <= 1:
            return [function(item) for item in items]
        with ThreadPoolExecutor(max_workers=min(READERS, len(items))) as pool:
            return list(pool.map(function, items))

    def objects(self, prefix: str) -> list:
        return self.store.scan(prefix)

    def keys(self, prefix: str) -> list[str]:
        return [info.key for info in self.store.scan(prefix)]

    def json_under(self, prefix: str) -> list[dict[str, Any]]:
        """Every JSON object under ``prefix``; only those whose ETag changed since the last page are read."""
        return self.listed_json([info for info in self.store.scan(prefix) if info.key.endswith(".json")])

    def listed_json(self, listed: Sequence[Any]) -> list[dict[str, Any]]:
        """The JSON objects of a listing's entries; only those whose ETag changed since the last page are read."""
        values = self.map(lambda info: _CACHE.get_or_read(self._where(info.key, info.etag), lambda: self._json_or_empty(info.key)), listed)
        return [value for value in values if isinstance(value, dict)]

    def json_of(self, keys: Sequence[str]) -> list[Any]:
        return self.map(self._json_or_empty, keys)

    def immutable_json_of(self, keys: Sequence[str]) -> list[Any]:
        """Objects that are never rewritten once they exist (a complete evaluation version's files)."""
        return self.map(lambda key: _CACHE.get_or_read(self._where(key, None), lambda: self._json_or_none_uncached(key)), keys)

    def _where(self, key: str, etag: str | None) -> tuple:
        """The cache key: the same object key in another bucket or store is another object."""
        return (self.store.settings.endpoint_url, self.store.bucket, key, etag)

    def json_or_none(self, key: str) -> Any:
        return self._json_or_none_uncached(key)

    def exist(self, keys: Sequence[str]) -> list[bool]:
        return self.map(self.store.exists, keys)

    def version_names(self, task_id: str) -> list[str]:
        if task_id not in self._versions:
            self._versions[task_id] = evaluation_versions(self.ctx, task_id)
        return self._versions[task_id]

    def _json_or_none_uncached(self, key: str) -> Any:
        try:
            return self.store.get_json_or_none(key)
        except (StoreError, ValueError):
            return None

    def _json_or_empty(self, key: str) -> Any:
        try:
            return self.store.get_json(key)
        except (StoreError, ValueError):
            return {}


class _JsonCache:
    """A bounded, thread-safe map (key, ETag) -> parsed JSON; an absent object is never cached."""

    def __init__(self, limit: int):
        self.limit = limit
        self._values: OrderedDict[tuple, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get_or_read(self, key: tuple, read) -> Any:
        with self._lock:
            if key in self._values:
                self._values.move_to_end(key)
                return self._values[key]
        value = read()
        if value is None or value == {}:
            return value
        with self._lock:
            self._values[key] = value
            while len(self._values) > self.limit:
                self._values.popitem(last=False)
        return value

    def clear(self) -> None:
        with self._lock:
            self._values.clear()


_CACHE = _JsonCache(limit=CACHED_OBJECTS)

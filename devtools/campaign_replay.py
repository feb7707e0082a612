"""Replay a whole campaign with the demo data: every DAG, in milestone order, with ``dag.test()``.

Used by ``python -m devtools.simulate`` and the end-to-end tests. The environment (Airflow home,
connections, bucket, SMTP server) is prepared by the caller; this module moves the calendar onto
the present (:mod:`devtools.compressed_calendar`), loads the demo data (:mod:`devtools.demo`), uploads
registrations and runs at the right moments, runs each milestone's DAG, answers the results approval
as an organizer, and returns a report of what happened.
"""
from __future__ import annotations

import datetime as dt
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import yaml

from devtools.dag_driver import DagDriver, RunResult
from include.campaign.timeline import milestone_events, reminder_events
from include.campaign.config import Campaign, parse_campaign
from include.campaign.context import CampaignContext
from devtools.compressed_calendar import replay_copy
from include.campaign.significance import interval_text
from devtools.demo.submit import submit_registrations, submit_runs, team_ids

UTC = dt.timezone.utc
ORGANIZER = "organizer"


@dataclass
class SimulationReport:
    campaign: str
    runs: list[RunResult] = field(default_factory=list)
    leaderboards: dict[str, dict] = field(default_factory=dict)
    manifests: dict[str, dict] = field(default_factory=dict)
    mail_by_purpose: dict[str, int] = field(default_factory=dict)
    team_ids: dict[str, str] = field(default_factory=dict)  # team name -> team id
    seconds: float = 0.0

    @property
    def failed(self) -> list[RunResult]:
        return [run for run in self.runs if not run.ok]

    def to_dict(self) -> dict[str, Any]:
        return {
            "campaign": self.campaign,
            "seconds": round(self.seconds, 1),
            "dag_runs": [{"dag_id": r.dag_id, "run_id": r.run_id, "state": r.state, "failed_tasks": r.failed_tasks()} for r in self.runs],
            "leaderboards": self.leaderboards,
            "manifests": self.manifests,
            "mail_by_purpose": self.mail_by_purpose,
            "team_ids": self.team_ids,
        }


class Simulation:
    """One replay of ``config_path`` in ``workdir`` against the store of ``ctx_factory()``."""

    def __init__(self, config_path: str | Path, workdir: str | Path, ctx_factory: Callable[[Campaign], CampaignContext],
                 step: float = 2.0, seed: int = 2025, say: Callable[[str], None] = print, data: str | Path | None = None):
        self.source = Path(config_path)
        self.raw = yaml.safe_load(self.source.read_text(encoding="utf-8"))
        self.original = parse_campaign(self.source.read_text(encoding="utf-8"), str(self.source))
        self.campaigns_dir = Path(workdir) / "campaigns"
        self.campaigns_dir.mkdir(parents=True, exist_ok=True)
        self.ctx_factory, self.step, self.seed, self.say = ctx_factory, step, seed, say
        self.data = Path(data) if data else None  # the organizer's own data (devtools/demo/folder.py), else demo data
        self.t0 = dt.datetime.now(UTC).replace(microsecond=0) + dt.timedelta(seconds=2)
        self.report = SimulationReport(self.original.id)

    # --- calendar ----------------------------------------------------------------------------------

    def _write_campaign(self, closing_start: dt.datetime | None) -> Campaign:
        data = replay_copy(self.raw, self.original, self.t0, self.step, closing_start)
        text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
        path = self.campaigns_dir / f"{self.original.id}.yaml"
        path.write_text(text, encoding="utf-8")
        self.campaign = parse_campaign(text, str(path))
        self.ctx = self.ctx_factory(self.campaign)
        self.driver = DagDriver(self.campaigns_dir)
        return self.campaign

    def _dag(self, stage: str) -> str:
        return f"{self.campaign.id}_{stage}"

    def _run(self, stage: str, logical_date: dt.datetime | None = None, conf: dict | None = None, approve: bool = False) -> RunResult:
        dag_id = self._dag(stage)
        if approve:
            result = self.driver.run_with_approval(dag_id, logical_date, user=ORGANIZER)
        else:
            result = self.driver.run(dag_id, logical_date, conf)
        self.report.runs.append(result)
        when = f" @ {logical_date:%H:%M:%S}" if logical_date else ""
        self.say(f"{'ok  ' if result.ok else 'FAIL'} {dag_id}{when}" + ("" if result.ok else f": {', '.join(result.failed_tasks())}"))
        return result

    # --- the replay --------------------------------------------------------------------------------

    def run(self) -> SimulationReport:
        from devtools.demo import AFTER_DEV_RELEASE, AGREEMENT_NOT_APPROVED, LATE, build_demo, load_demo

        started = time.monotonic()
        campaign = self._write_campaign(closing_start=None)
        self.ctx.store.ensure_bucket(versioning=True)
        if self.data is not None:
            from devtools.demo.folder import read_data_folder, upload_data_folder

            demo = read_data_folder(campaign.id, self.data)
            uploaded = upload_data_folder(self.ctx, self.data)
            self.say(f"{campaign.name}: {uploaded} staged, gold and agreement files uploaded from {self.data}; "
                     f"{len(demo.registrations)} registrations and {sum(len(r) for r in demo.runs.values())} runs to replay; "
                     f"registration opens {self.t0:%H:%M:%S} UTC")
        else:
            demo = build_demo(campaign, self.seed)
            load_demo(self.ctx, demo)
            self.say(f"{campaign.name}: demo data loaded; registration opens {self.t0:%H:%M:%S} UTC")
        on_time = [r for r in demo.registrations if not r.flags & {LATE, AFTER_DEV_RELEASE}]

        self._wait(campaign.milestone_time("registration_opens"))
        for event in milestone_events(campaign, ("registration_opens",)):
            self._run("registration", event.moment_utc)
        self._upload_registrations(on_time)
        self._run("registration_intake", campaign.milestone_time("registration_opens") + dt.timedelta(seconds=1))
        self._approve_agreements(demo, skip_flag=AGREEMENT_NOT_APPROVED)

        for event in self._moments(("dev_data_release",)):
            self._run("data_release", event)
        self._upload_registrations([r for r in demo.registrations if AFTER_DEV_RELEASE in r.flags])
        self._run("registration_intake", campaign.milestone_time("registration_opens") + dt.timedelta(seconds=2))
        self._approve_agreements(demo, skip_flag=AGREEMENT_NOT_APPROVED, only_flag=AFTER_DEV_RELEASE)
        for event in self._moments(("test_data_release",)):
            self._run("data_release", event)
        self._upload_runs(demo, late=False)

        # Every on-time run is up: bring the closing phase to a few seconds from now.
        campaign = self._write_campaign(closing_start=dt.datetime.now(UTC).replace(microsecond=0) + dt.timedelta(seconds=self.step))
        self._wait(campaign.milestone_time("registration_closes"))
        self._upload_registrations([r for r in demo.registrations if LATE in r.flags])
        for event in self._moments(("registration_closes",)):
            self._run("registration", event)
        for deadline in self._moments(("run_deadline",)):
            self._wait(deadline)
            due = [t.id for t in campaign.tasks if campaign.milestone_time("run_deadline", t) == deadline]
            self._upload_runs(demo, late=True, tasks=due)
            self._run("run_collection", deadline)
            scored = self.driver.run_asset_triggered(self._dag("scoring"))
            if scored is None:
                raise RuntimeError(f"collecting {', '.join(due)} queued no scoring run: the runs/<task> asset events did not reach {self._dag('scoring')}")
            self.report.runs.append(scored)
            self.say(f"{'ok  ' if scored.ok else 'FAIL'} {scored.dag_id} (asset-triggered by {', '.join(due)})")
        for moment in self._moments(("results_release",)):
            self._run("results", moment, approve=True)
        for moment in sorted({e.moment_utc for e in reminder_events(campaign)}):
            self._run("working_notes", moment)
        self._collect_report(campaign)
        self.report.seconds = time.monotonic() - started
        return self.report

    def _moments(self, milestones: tuple[str, ...]) -> list[dt.datetime]:
        return sorted({e.moment_utc for e in milestone_events(self.campaign, milestones)})

    @staticmethod
    def _wait(moment: dt.datetime) -> None:
        # moto stamps uploads to the second: wait until the clock is past the milestone's second.
        while (remaining := (moment - dt.datetime.now(UTC)).total_seconds() + 1.05) > 0:
            time.sleep(min(remaining, 1.0))

    # --- participants and organizers ---------------------------------------------------------------

    def _upload_registrations(self, registrations) -> None:
        submit_registrations(self.ctx, registrations)

    def _team_ids(self) -> dict[str, str]:
        self.report.team_ids = team_ids(self.ctx)
        return self.report.team_ids

    def _approve_agreements(self, demo, skip_flag: str, only_flag: str | None = None) -> None:
        """The organizer approves every signed agreement, except those of the teams flagged ``skip_flag``."""
        ids = self._team_ids()
        for registration in demo.registrations:
            if skip_flag in registration.flags or (only_flag and only_flag not in registration.flags) or (not only_flag and registration.flags):
                continue
            tasks = [t for t in registration.document.get("tasks", []) if self.campaign.task(t).requires_agreement]
            if tasks and registration.team_name in ids:
                self._run("agreement_approval", conf={"team_id": ids[registration.team_name], "tasks": tasks, "decision": "approve", "note": "agreement checked"})

    def _upload_runs(self, demo, late: bool, tasks: list[str] | None = None) -> None:
        submit_runs(self.ctx, demo, late, tasks)
        self._team_ids()

    # --- what happened -----------------------------------------------------------------------------

    def _collect_report(self, campaign: Campaign) -> None:
        from include.campaign import evaluation

        for task in campaign.tasks:
            manifest_key = self.ctx.layout.collection_manifest(task.id)
            if self.ctx.store.exists(manifest_key):
                self.report.manifests[task.id] = self.ctx.store.get_json(manifest_key)
            version = evaluation.latest_version(self.ctx, task.id)
            if version:
                self.report.leaderboards[task.id] = evaluation.read_leaderboard(self.ctx, task.id, version)
        counts: Counter = Counter()
        for key in self.ctx.store.list_keys(self.ctx.layout.outbox_prefix()):
            counts[key.split("/")[2]] += 1
        self.report.mail_by_purpose = dict(sorted(counts.items()))


def render_summary(report: SimulationReport, top: int = 5) -> str:
    """Per task, the leaderboard's top five; then the e-mails sent, by purpose."""
    lines = [f"{report.campaign}: {len(report.runs)} DAG runs, {len(report.failed)} failed, {report.seconds:.0f} s"]
    for task_id, board in report.leaderboards.items():
        metric = board.get("ranked_by")
        ranked = [row for row in board["rows"] if row["status"] == "ranked"]
        others = Counter(row["status"] for row in board["rows"] if row["status"] != "ranked")
        lines.append(f"\n{task_id}: ranked by {metric or 'nothing computable'}; {len(ranked)} ranked runs"
                     + "".join(f", {count} {status}" for status, count in sorted(others.items())))
        if board.get("note"):  # e.g. the primary metric's model is missing: which one, and how to fetch it
            lines.append(f"  note: {board['note']}")
        for row in ranked[:top]:
            value = row["metrics"].get(metric) if metric else None
            shown = "n/c" if value is None else f"{value:.4f}"
            significance = f"  95 % CI {interval_text(row['interval'])}  group {row['group']}" if row.get("interval") else ""
            lines.append(f"  {row['rank']:>3}  {row['team']}/{row['run']:<8} {shown}{significance}")
    lines.append("\ne-mails sent, by purpose:")
    for purpose, count in report.mail_by_purpose.items():
        lines.append(f"  {purpose:<26} {count}")
    return "\n".join(lines)

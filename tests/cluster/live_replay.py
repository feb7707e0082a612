"""A campaign replayed live on the local cluster: the scheduler fires the milestones, people act through the REST API.

:class:`LiveReplay` starts :class:`devtools.cluster.LocalCluster` on a demo copy of a campaign whose
milestones are a minute apart (:func:`tests.cluster.campaign.live_campaign_copy`), loads the demo data,
and lets the stand-in participants of :mod:`devtools.demo.live` register, get their agreements approved
and upload runs. Meanwhile it

- kills a ``default`` worker with SIGKILL (its task processes too) as soon as one runs scoring
  instances, then restarts the scheduler once;
- answers the results DAG's approval (human in the loop) through the api-server's REST API, as an
  organizer clicking *Approve* in the UI would;

and, once every milestone has fired and every DAG run has ended, returns what happened: DAG runs and
task instances (from the REST API), leaderboards and outbox markers (from S3), and the e-mails.
"""
from __future__ import annotations

import datetime as dt
import json
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from devtools.cluster import LocalCluster

UTC = dt.timezone.utc
TERMINAL = {"success", "failed"}
SCORING_TASKS = ("score_run", "score_run_models")


class ReplayTimeout(AssertionError):
    """The replay did not end within its bound (not a network timeout, which is retried)."""


def _quote(text: str) -> str:
    return urllib.parse.quote(text, safe="")


class ClusterApi:
    """The REST calls the replay needs, on top of devtools.demo.live.AirflowApi's login."""

    def __init__(self, api):
        self.api = api

    def get(self, path: str) -> Any:
        return self.api._call(f"GET {path}", "GET", path)

    def pages(self, path: str, key: str) -> list[dict]:
        items: list[dict] = []
        separator = "&" if "?" in path else "?"
        while True:
            answer = self.get(f"{path}{separator}limit=100&offset={len(items)}")
            batch = answer.get(key, [])
            items += batch
            if not batch or len(items) >= answer.get("total_entries", 0):
                return items

    def dag_runs(self, campaign_id: str) -> list[dict]:
        return self.pages(f"/api/v2/dags/~/dagRuns?dag_id_pattern={_quote(campaign_id + '_%')}", "dag_runs")

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        return self.pages(f"/api/v2/dags/{_quote(dag_id)}/dagRuns/{_quote(run_id)}/taskInstances", "task_instances")

    def pending_approvals(self) -> list[dict]:
        return self.pages("/api/v2/dags/~/dagRuns/~/hitlDetails?response_received=false", "hitl_details")

    def answer(self, detail: dict, option: str) -> dict:
        ti = detail["task_instance"]
        path = (f"/api/v2/dags/{_quote(ti['dag_id'])}/dagRuns/{_quote(ti['dag_run_id'])}/taskInstances/"
                f"{_quote(ti['task_id'])}/{ti['map_index']}/hitlDetails")
        return self.api._call(f"answering {ti['dag_id']} {ti['task_id']}", "PATCH", path, {"chosen_options": [option], "params_input": {}})

    def hitl_detail(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> dict:
        return self.get(f"/api/v2/dags/{_quote(dag_id)}/dagRuns/{_quote(run_id)}/taskInstances/{_quote(task_id)}/{map_index}/hitlDetails")


@dataclass
class Disturbance:
    """What the replay did to the cluster in the middle of scoring."""

    killed_worker: str = ""
    killed_hostname: str = ""
    killed_at: float = 0.0
    running_on_killed: list[dict] = field(default_factory=list)  # task instances running there at the kill
    scheduler_restarted: bool = False


@dataclass
class ReplayOutcome:
    campaign: Any
    dag_runs: list[dict]
    task_instances: dict[tuple[str, str], list[dict]]
    leaderboards: dict[str, dict]
    evaluations: dict[str, dict]
    manifests: dict[str, dict]
    outbox_keys: list[str]
    messages: list[Any]
    approvals: list[dict]
    answered: dict[str, dict]  # results DAG run id -> its approval's HITL detail, read back through the REST API
    disturbance: Disturbance
    worker_hostnames: dict[str, str]
    log: list[str]
    seconds: float


class LiveReplay:
    def __init__(self, cluster: LocalCluster, demo_file: Path, say: Callable[[str], None]):
        self.cluster, self.demo_file, self.say = cluster, demo_file, say
        self.api = ClusterApi(cluster.api)
        self.disturbance = Disturbance()
        self.approvals: list[dict] = []
        self.log: list[str] = []
        self.errors: list[BaseException] = []
        self.stop = threading.Event()

    def _say(self, line: str) -> None:
        self.log.append(line)
        self.say(line)

    def run(self, kill_one_of: list[str], timeout: float) -> ReplayOutcome:
        from include.campaign import evaluation
        from devtools.demo.live import Organizer, Participants
        from devtools.devstack import load_demo_data

        started = time.monotonic()
        smtp_port = int(json.loads(self.cluster.env["AIRFLOW_CONN_SMTP_DEFAULT"])["port"])
        ctx, demo = load_demo_data(self.demo_file, self.cluster.s3_endpoint, self.cluster.bucket, smtp_port)
        campaign = ctx.campaign
        threads = [
            threading.Thread(target=self._guard(Participants(ctx, demo, self._say).play), name="participants", daemon=True),
            threading.Thread(target=self._guard(Organizer(ctx, demo, self.cluster.api, self._say).play), name="organizer", daemon=True),
            threading.Thread(target=self._guard(lambda: self._kill_during_scoring(campaign.id, kill_one_of)), name="kill", daemon=True),
            threading.Thread(target=self._guard(self._approve_results), name="approve", daemon=True),
        ]
        for thread in threads:
            thread.start()
        try:
            self._wait_until_finished(campaign, threads[0], started + timeout)
        finally:
            self.stop.set()
        for thread in threads:
            thread.join(timeout=30)
        if self.errors:
            raise self.errors[0]
        dag_runs = self.api.dag_runs(campaign.id)
        task_instances = {(r["dag_id"], r["dag_run_id"]): self.api.task_instances(r["dag_id"], r["dag_run_id"]) for r in dag_runs}
        results_dag = f"{campaign.id}_results"
        answered = {r["dag_run_id"]: self.api.hitl_detail(results_dag, r["dag_run_id"], "approve_publication") for r in dag_runs if r["dag_id"] == results_dag}
        leaderboards, evaluations, manifests = {}, {}, {}
        for task in campaign.tasks:
            manifests[task.id] = ctx.store.get_json(ctx.layout.collection_manifest(task.id))
            version = evaluation.latest_version(ctx, task.id)
            if version:
                leaderboards[task.id] = evaluation.read_leaderboard(ctx, task.id, version)
                evaluations[task.id] = evaluation.read_evaluation(ctx, task.id, version)
        return ReplayOutcome(
            campaign=campaign, dag_runs=dag_runs, task_instances=task_instances, leaderboards=leaderboards,
            evaluations=evaluations, manifests=manifests, outbox_keys=sorted(ctx.store.list_keys(ctx.layout.outbox_prefix())),
            messages=list(self.cluster.recorder.messages), approvals=self.approvals, answered=answered, disturbance=self.disturbance,
            worker_hostnames={w.name: w.hostname for w in self.cluster.workers()}, log=self.log, seconds=time.monotonic() - started)

    def _guard(self, action: Callable[[], None]) -> Callable[[], None]:
        """Run ``action`` in a thread; an error stops the replay and is raised by :meth:`run`."""
        def guarded() -> None:
            try:
                action()
            except BaseException as exc:  # noqa: BLE001 (handed to the main thread, which raises it)
                self.errors.append(exc)
                self.stop.set()
        return guarded

    def _poll(self, step: Callable[[], bool], every: float) -> None:
        """Call ``step`` every ``every`` seconds until it returns True or the replay stops (the API
        client retries a busy api-server itself; what still fails is an error)."""
        while not self.stop.is_set():
            if step():
                return
            self.stop.wait(every)

    # --- the end ---------------------------------------------------------------------------------------

    def _wait_until_finished(self, campaign, participants: threading.Thread, deadline: float) -> None:
        """Every milestone has passed, the participants are done, and no DAG run is still going."""
        from include.campaign.timeline import milestone_events

        last = max(e.moment_utc for e in milestone_events(campaign))

        def finished() -> bool:
            self.cluster.check_alive()  # a killed worker is no longer watched
            if time.monotonic() > deadline:
                states = sorted({(r["dag_id"], r["state"]) for r in self.api.dag_runs(campaign.id) if r["state"] not in TERMINAL})
                raise ReplayTimeout(f"the replay did not finish in time; still going: {states}")
            if dt.datetime.now(UTC) < last + dt.timedelta(seconds=10) or participants.is_alive():
                return False
            runs = self.api.dag_runs(campaign.id)
            return bool(runs) and all(r["state"] in TERMINAL for r in runs) and self._every_stage_ran(campaign, runs)

        self._poll(finished, every=5)

    @staticmethod
    def _every_stage_ran(campaign, runs: list[dict]) -> bool:
        stages = {r["dag_id"][len(campaign.id) + 1:] for r in runs}
        return {"registration", "data_release", "run_collection", "scoring", "results", "working_notes"} <= stages

    # --- the disturbance -----------------------------------------------------------------------------

    def _kill_during_scoring(self, campaign_id: str, candidates: list[str]) -> None:
        """SIGKILL the first of ``candidates`` (worker names) seen running scoring instances, then restart the scheduler."""
        hostnames = {self.cluster.components[name].hostname: name for name in candidates}
        dag_id = f"{campaign_id}_scoring"

        def step() -> bool:
            running = []
            for run in self.api.pages(f"/api/v2/dags/~/dagRuns?dag_id_pattern={_quote(dag_id)}&state=running", "dag_runs"):
                running += [ti for ti in self.api.task_instances(dag_id, run["dag_run_id"])
                            if ti["task_id"] in SCORING_TASKS and ti["state"] == "running" and ti.get("hostname") in hostnames]
            if not running:
                return False
            hostname = running[0]["hostname"]
            victims = [ti for ti in running if ti["hostname"] == hostname]
            self.cluster.kill_worker(hostnames[hostname])
            self.disturbance = Disturbance(hostnames[hostname], hostname, time.monotonic(), victims)
            names = ", ".join(f"{ti['task_id']}[{ti['map_index']}]" for ti in victims)
            self._say(f"killed {hostnames[hostname]} while it ran {names}")
            self.cluster.restart("scheduler")
            self.disturbance.scheduler_restarted = True
            return True

        self._poll(step, every=1)

    # --- the organizer ---------------------------------------------------------------------------------

    def _approve_results(self) -> None:
        """Approve every pending publication through PATCH .../hitlDetails, as the UI's Approve button does."""
        def step() -> bool:
            for detail in self.api.pending_approvals():
                answer = self.api.answer(detail, "Approve")
                self.approvals.append({"task_instance": detail["task_instance"], "answer": answer})
                self._say(f"organizer: approved {detail['task_instance']['dag_id']} / {detail['task_instance']['task_id']} through the REST API")
            return False

        self._poll(step, every=3)

"""The live demo's participants: they register, get approved and upload runs while the scheduler fires.

``make demo`` writes a copy of the campaign whose milestones are a few minutes apart, and Airflow's
own scheduler fires every DAG on those dates. This module plays everyone who is not the scheduler:
teams upload their registrations and runs at the right moments (some late, one invalid, one over its
limit), a stand-in organizer approves the signed agreements through Airflow's REST API (so each
approval shows in the UI as a run of the approval DAG), and a watcher prints one line per DAG run
as it starts and ends. The results approval is left to the person at the UI.
"""
from __future__ import annotations

import datetime as dt
import json
import threading
import time
import urllib.error
import urllib.request
from typing import Any, Callable

from include.campaign.context import CampaignContext
from include.demo import AFTER_DEV_RELEASE, AGREEMENT_NOT_APPROVED, LATE, DemoData
from include.demo.submit import submit_registrations, submit_runs, team_ids

UTC = dt.timezone.utc


class AirflowApi:
    """A small client for Airflow 3's REST API (``/api/v2``), authenticated as the demo's admin."""

    def __init__(self, base_url: str, username: str, password: str):
        self.base_url, self.username, self.password = base_url.rstrip("/"), username, password
        self._token: str | None = None

    def _request(self, method: str, path: str, body: dict | None = None) -> Any:
        if self._token is None:
            self._token = self._login()
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"{self.base_url}{path}", data=data, method=method,
                                         headers={"Authorization": f"Bearer {self._token}", "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as answer:
            return json.loads(answer.read() or b"null")

    def _login(self) -> str:
        request = urllib.request.Request(f"{self.base_url}/auth/token", data=json.dumps({"username": self.username, "password": self.password}).encode(),
                                         method="POST", headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as answer:
            return json.loads(answer.read())["access_token"]

    def trigger(self, dag_id: str, conf: dict) -> dict:
        return self._request("POST", f"/api/v2/dags/{dag_id}/dagRuns", {"logical_date": None, "conf": conf})

    def dag_runs(self, dag_id_pattern: str) -> list[dict]:
        answer = self._request("GET", f"/api/v2/dags/~/dagRuns?dag_id_pattern={dag_id_pattern}&limit=100&order_by=-start_date")
        return answer.get("dag_runs", [])

    def unpause(self, dag_id: str) -> None:
        self._request("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False})


class Participants:
    """Plays the teams and the agreement-approving organizer of one demo campaign."""

    def __init__(self, ctx: CampaignContext, demo: DemoData, api: AirflowApi, say: Callable[[str], None] = print):
        self.ctx, self.demo, self.api, self.say = ctx, demo, api, say
        self.campaign = ctx.campaign

    def play(self) -> None:
        c = self.campaign
        self._at(c.milestone_time("registration_opens") + dt.timedelta(seconds=20))
        self._register(lambda flags: not flags & {LATE, AFTER_DEV_RELEASE})
        self._approve_when_registered(lambda flags: not flags)
        self._at(c.milestone_time("dev_data_release") + dt.timedelta(seconds=60))
        self._register(lambda flags: AFTER_DEV_RELEASE in flags)
        self._approve_when_registered(lambda flags: AFTER_DEV_RELEASE in flags)
        self._at(c.milestone_time("test_data_release") + dt.timedelta(seconds=60))
        self._upload_runs(late=False)
        self._at(c.milestone_time("registration_closes") + dt.timedelta(seconds=5))
        self._register(lambda flags: LATE in flags)
        self._at(c.milestone_time("run_deadline") + dt.timedelta(seconds=2))
        self._upload_runs(late=True)
        self.say("participants: all registrations and runs are in; the results approval waits for you in the UI")

    @staticmethod
    def _at(moment: dt.datetime) -> None:
        while (remaining := (moment - dt.datetime.now(UTC)).total_seconds()) > 0:
            time.sleep(min(remaining, 5.0))

    def _register(self, wanted: Callable[[frozenset], bool]) -> None:
        count = submit_registrations(self.ctx, [r for r in self.demo.registrations if wanted(r.flags)])
        self.say(f"participants: {count} registration(s) uploaded to {self.ctx.layout.registrations_inbox()}")

    def _approve_when_registered(self, wanted: Callable[[frozenset], bool], timeout: float = 600) -> None:
        """Once intake has recorded the teams, approve their agreements (except the two flagged teams)."""
        chosen = [r for r in self.demo.registrations if wanted(r.flags) and AGREEMENT_NOT_APPROVED not in r.flags]
        deadline = time.monotonic() + timeout
        pending = {r.team_name: r for r in chosen}
        while pending and time.monotonic() < deadline:
            ids = team_ids(self.ctx)
            for name in [n for n in pending if n in ids]:
                tasks = [t for t in pending[name].document.get("tasks", []) if self.campaign.task(t).requires_agreement]
                if tasks:
                    self.api.trigger(f"{self.campaign.id}_agreement_approval", {"team_id": ids[name], "tasks": tasks, "decision": "approve", "note": "demo: agreement checked"})
                    self.say(f"organizer: approved the agreements of {ids[name]} for {', '.join(tasks)}")
                del pending[name]
            time.sleep(5)

    def _upload_runs(self, late: bool) -> None:
        count = submit_runs(self.ctx, self.demo, late)
        self.say(f"participants: {count} {'late ' if late else ''}run(s) uploaded")


def watch_dag_runs(api: AirflowApi, campaign_id: str, say: Callable[[str], None], stop: threading.Event) -> None:
    """One line per DAG run of the campaign each time its state changes."""
    seen: dict[tuple[str, str], str] = {}
    while not stop.is_set():
        try:
            for run in api.dag_runs(f"{campaign_id}_%"):
                key = (run["dag_id"], run["dag_run_id"])
                if seen.get(key) != run["state"]:
                    seen[key] = run["state"]
                    say(f"{dt.datetime.now(UTC):%H:%M:%S} {run['dag_id']:<38} {run['run_type']:<16} {run['state']}")
        except (urllib.error.URLError, OSError, KeyError, ValueError):
            pass  # the API server may restart; the next poll catches up
        stop.wait(5)

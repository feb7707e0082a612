"""The live demo's participants: they register, get approved and upload runs while the scheduler fires.

``make demo`` writes a copy of the campaign whose milestones are a few minutes apart, and Airflow's
own scheduler fires every DAG on those dates. This module plays everyone who is not the scheduler:
teams upload their registrations and runs at the right moments (some late, one invalid, one over its
limit), a stand-in organizer, in a thread of its own, approves the signed agreements through
Airflow's REST API as intake records the teams (so each approval shows in the UI as a run of the
approval DAG), and a watcher prints one line per DAG run as it starts and ends. The results approval is left to the person at the UI,
and so are the agreements of the last ``leave`` teams the organizer would approve (``--leave-to-ui``): they wait on
the Campaigns page's Registrations tab for the person at the UI to approve or reject.

The stand-ins meet the same weather as real participants: an API server that answers 500 while its
database is busy, a dropped connection, a store that throttles. Each call is retried with
exponential backoff a bounded number of times (:mod:`devtools.demo.retry`); what still fails raises
:class:`StandInError` with a message saying what could not be done, and ``devtools.devstack`` stops
the demo on it instead of letting a thread die unseen.
"""
from __future__ import annotations

import datetime as dt
import json
import re
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Callable

from include.campaign.context import CampaignContext
from devtools.demo import AFTER_DEV_RELEASE, AGREEMENT_NOT_APPROVED, LATE, DemoData
from devtools.demo.retry import ATTEMPTS, BACKOFF_SECONDS, StandInError, TokenRefused, retrying
from devtools.demo.submit import submit_registrations, submit_runs, team_ids

UTC = dt.timezone.utc

HTTP_TIMEOUT_SECONDS = 30
_RUN_ID_UNSAFE = re.compile(r"[^A-Za-z0-9_.~:+-]")  # Airflow's default allowed_run_id_pattern


class AirflowApi:
    """A small client for Airflow 3's REST API (``/api/v2``), authenticated as the demo's admin.

    Every call is retried on transient failures (:func:`retrying`); after a refused token (expired,
    or the server restarted) the next try logs in again."""

    def __init__(self, base_url: str, username: str, password: str, attempts: int = ATTEMPTS, backoff: tuple[float, float] = BACKOFF_SECONDS):
        self.base_url, self.username, self.password = base_url.rstrip("/"), username, password
        self.attempts, self.backoff = attempts, backoff
        self._token: str | None = None

    def _call(self, what: str, method: str, path: str, body: dict | None = None, accept: frozenset[int] = frozenset()) -> Any:
        return retrying(what, lambda: self._request(method, path, body, accept), self.attempts, self.backoff)

    def _request(self, method: str, path: str, body: dict | None, accept: frozenset[int]) -> Any:
        if self._token is None:
            self._token = self._login()
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"{self.base_url}{path}", data=data, method=method,
                                         headers={"Authorization": f"Bearer {self._token}", "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_SECONDS) as answer:
                return json.loads(answer.read() or b"null")
        except urllib.error.HTTPError as exc:
            if exc.code == 401:
                self._token = None  # log in again on the next try
                raise TokenRefused(f"{method} {path}: HTTP 401") from exc
            if exc.code in accept:
                return None
            raise

    def _login(self) -> str:
        request = urllib.request.Request(f"{self.base_url}/auth/token", data=json.dumps({"username": self.username, "password": self.password}).encode(),
                                         method="POST", headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_SECONDS) as answer:
            return json.loads(answer.read())["access_token"]

    def trigger(self, dag_id: str, conf: dict, run_id: str) -> dict | None:
        """Trigger ``dag_id`` once under ``run_id``: a retry after a lost answer meets 409 (already there), which counts as done."""
        body = {"dag_run_id": run_id, "logical_date": None, "conf": conf}
        return self._call(f"triggering {dag_id} ({run_id})", "POST", f"/api/v2/dags/{dag_id}/dagRuns", body, accept=frozenset({409}))

    def dag_runs(self, dag_id_pattern: str) -> list[dict]:
        query = urllib.parse.urlencode({"dag_id_pattern": dag_id_pattern, "limit": 100, "order_by": "-start_date"})
        answer = self._call("listing DAG runs", "GET", f"/api/v2/dags/~/dagRuns?{query}")
        return answer.get("dag_runs", [])

    def unpause(self, dag_id: str) -> None:
        self._call(f"unpausing {dag_id}", "PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False})


class Participants:
    """Plays the teams of one demo campaign: registrations and runs at the right moments.

    The moments follow the calendar's own spacing (``step``: registration opening to the development
    release), so a demo with milestones 30 s apart plays as one with a minute between them. Store
    calls are retried (:mod:`devtools.demo.retry`); a step that cannot be done raises
    :class:`StandInError`, and the devstack stops the demo with its message."""

    def __init__(self, ctx: CampaignContext, demo: DemoData, say: Callable[[str], None] = print):
        self.ctx, self.demo, self.say = ctx, demo, say
        self.campaign = ctx.campaign

    @property
    def step(self) -> dt.timedelta:
        c = self.campaign
        return max(c.milestone_time("dev_data_release") - c.milestone_time("registration_opens"), dt.timedelta(seconds=10))

    def play(self) -> None:
        c, step = self.campaign, self.step
        _at(c.milestone_time("registration_opens") + step / 3)
        self._register(lambda flags: not flags & {LATE, AFTER_DEV_RELEASE})
        _at(c.milestone_time("dev_data_release") + step)
        self._register(lambda flags: AFTER_DEV_RELEASE in flags)
        _at(c.milestone_time("test_data_release") + step)
        # a team uploads once it is registered (on a busy machine intake may lag), in time for the deadline
        self._upload_runs(late=False, teams_until=c.milestone_time("run_deadline") - step / 2)
        _at(c.milestone_time("registration_closes") + min(step / 12, dt.timedelta(seconds=5)))
        self._register(lambda flags: LATE in flags)
        _at(c.milestone_time("run_deadline") + min(step / 30, dt.timedelta(seconds=2)))
        self._upload_runs(late=True)
        self.say("participants: all registrations and runs are in; the results approval waits for you in the UI")

    def _register(self, wanted: Callable[[frozenset], bool]) -> None:
        chosen = [r for r in self.demo.registrations if wanted(r.flags)]
        count = submit_registrations(self.ctx, chosen)
        self.say(f"participants: {count} registration(s) uploaded to {self.ctx.layout.registrations_inbox()}")

    def _upload_runs(self, late: bool, teams_until: dt.datetime | None = None) -> None:
        """Upload the runs of the registered teams, waiting until ``teams_until`` for intake to record
        them all. None recorded by then stops the demo; a few missing teams are named."""
        kind = "late " if late else ""
        expected = {run.team for runs in self.demo.runs.values() for run in runs if run.late == late}
        missing = self._unregistered(expected, teams_until)
        if expected and len(missing) == len(expected):
            raise StandInError(f"participants: no team with {kind}runs to upload is registered ({', '.join(missing)}); "
                               f"intake recorded none of them, so nothing could be scored")
        if missing:
            self.say(f"participants: {', '.join(missing)} not registered, their {kind}runs stay home")
        count = submit_runs(self.ctx, self.demo, late)
        self.say(f"participants: {count} {kind}run(s) uploaded")

    def _unregistered(self, teams: set[str], until: dt.datetime | None) -> list[str]:
        while (missing := sorted(teams - set(team_ids(self.ctx)))) and until is not None and dt.datetime.now(UTC) < until:
            time.sleep(min(5.0, max(0.5, (until - dt.datetime.now(UTC)).total_seconds())))
        return missing


class Organizer:
    """Plays the organizer who checks signed agreements: approves them, through the REST API, as soon
    as intake has recorded each team (every team the demo means to approve: not the two whose
    agreement stays unapproved, not the late or invalid ones).

    The agreements of the last ``leave`` of those teams are left to the person at the UI (the
    Campaigns page's Approve / Reject buttons), as a real organizer would decide them.

    A team that intake has not recorded ``grace`` after registration closes stops the demo: its
    runs could never count. API calls are retried; what still fails raises :class:`StandInError`."""

    def __init__(self, ctx: CampaignContext, demo: DemoData, api: AirflowApi, say: Callable[[str], None] = print,
                 poll_seconds: float = 5.0, grace: dt.timedelta = dt.timedelta(minutes=5), leave: int = 0):
        self.ctx, self.demo, self.api, self.say = ctx, demo, api, say
        self.campaign = ctx.campaign
        self.poll_seconds, self.grace, self.leave = poll_seconds, grace, max(0, leave)

    def approvable(self) -> list:
        """The registrations whose agreements the demo means to approve (by the stand-in or at the UI).

        A core team that takes no task of the campaign (one in four, in a one-task campaign) is not
        waited for: intake rejects a registration without tasks, so it is never recorded."""
        return [r for r in self.demo.registrations if (not r.flags or r.flags == {AFTER_DEV_RELEASE}) and r.document.get("tasks")]

    def to_approve(self) -> list:
        """What the stand-in approves itself: the approvable ones but the last ``leave``."""
        approvable = self.approvable()
        return approvable[:len(approvable) - self.leave] if self.leave else approvable

    def left_to_ui(self) -> list:
        return self.approvable()[len(self.to_approve()):]

    def play(self) -> None:
        left = [r.team_name for r in self.left_to_ui()]
        if left:
            self.say(f"organizer: the agreements of {', '.join(left)} are left to you: Campaigns > Registrations in the UI")
        until = self.campaign.milestone_time("registration_closes") + self.grace
        self.approve_when_registered(self.to_approve(), (until - dt.datetime.now(UTC)).total_seconds())
        self.say("organizer: every agreement the demo approves is approved" + (" (but those left to you)" if left else ""))

    def approve_when_registered(self, registrations: list, timeout: float) -> None:
        """Approve each registration's agreements once intake has recorded its team."""
        deadline = time.monotonic() + timeout
        pending = {r.team_name: r for r in registrations if AGREEMENT_NOT_APPROVED not in r.flags}
        while pending:
            ids = team_ids(self.ctx)
            for name in [n for n in pending if n in ids]:
                self._approve(ids[name], pending.pop(name))
            if not pending:
                return
            if time.monotonic() >= deadline:
                raise StandInError(f"organizer: intake has not recorded {', '.join(sorted(pending))} {max(timeout, 0):.0f} s after waiting began; "
                                   f"see the runs of {self.campaign.id}_registration_intake in the UI")
            time.sleep(self.poll_seconds)

    def _approve(self, team_id: str, registration) -> None:
        tasks = [t for t in registration.document.get("tasks", []) if self.campaign.task(t).requires_agreement]
        if not tasks:
            return
        conf = {"team_id": team_id, "tasks": tasks, "decision": "approve", "note": "demo: agreement checked"}
        run_id = _RUN_ID_UNSAFE.sub("-", f"demo_approval__{team_id}__{'_'.join(tasks)}")  # one run per decision, whatever the retries
        self.api.trigger(f"{self.campaign.id}_agreement_approval", conf, run_id=run_id)
        self.say(f"organizer: approved the agreements of {team_id} for {', '.join(tasks)}")


def _at(moment: dt.datetime) -> None:
    while (remaining := (moment - dt.datetime.now(UTC)).total_seconds()) > 0:
        time.sleep(min(remaining, 5.0))


def watch_dag_runs(api: AirflowApi, campaign_id: str, say: Callable[[str], None], stop: threading.Event,
                   poll_seconds: float = 5.0, patience_seconds: float = 300.0,
                   after_poll: Callable[[list[dict]], None] | None = None) -> None:
    """One line per DAG run of the campaign each time its state changes; ``after_poll`` (the
    rehearsal's report of what the runs did) gets the runs whose state changed in each poll.

    Each poll is retried by the API client; polls that keep failing for ``patience_seconds`` raise
    :class:`StandInError` (the API server is gone for good, and the demo would show nothing)."""
    seen: dict[tuple[str, str], str] = {}
    failing_since: float | None = None
    while not stop.is_set():
        try:
            runs = api.dag_runs(f"{campaign_id}_%")
        except StandInError as exc:
            failing_since = failing_since or time.monotonic()
            if time.monotonic() - failing_since > patience_seconds:
                raise StandInError(f"watcher: the Airflow API has not answered for {patience_seconds:.0f} s: {exc}") from exc
            stop.wait(poll_seconds)
            continue
        failing_since = None
        changed = [run for run in runs if seen.get((run["dag_id"], run["dag_run_id"])) != run["state"]]
        for run in changed:
            seen[(run["dag_id"], run["dag_run_id"])] = run["state"]
            say(f"{dt.datetime.now(UTC):%H:%M:%S} {run['dag_id']:<38} {run['run_type']:<16} {run['state']}")
        if after_poll is not None and changed:
            after_poll(changed)
        stop.wait(poll_seconds)

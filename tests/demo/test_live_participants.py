"""The live demo's stand-ins against an Airflow API that answers 500 now and then, and when they fail.

``make demo`` once lost its participants to one 500 from the API server (its SQLite database was
locked): the stand-in organizer's trigger raised, the participants' thread died, no run was uploaded
and the demo went on scoring nothing. Here the participants play registration, approval and upload
against :class:`FlakyAirflowApi` (real HTTP on loopback, every third request a 500, some answers lost
after the run was created), a real S3 (moto) and a real SMTP server, with the intake run as the
scheduler would run it. Every approval must reach the API exactly once and every run the store.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import threading
import time

import pytest

from include.campaign.config import load_campaign
from include.campaign.context import CampaignContext
from include.campaign.registration import intake
from devtools.demo import AFTER_DEV_RELEASE, LATE, build_demo, load_demo
from devtools.demo.live import AirflowApi, Organizer, Participants, watch_dag_runs
from devtools.demo.retry import StandInError
from devtools.demo.submit import team_ids
from devtools.devstack import write_demo_campaign
from tests.demo.conftest import CAMPAIGN_FILE
from tests.demo.flaky_api import FlakyAirflowApi

FAST = {"attempts": 6, "backoff": (0.05, 0.2)}


@pytest.fixture
def live_ctx(store, smtp_settings, mailbox, tmp_path):
    """A demo copy whose registration opened a moment ago, its data loaded into a fresh bucket."""
    start = dt.datetime.now(dt.timezone.utc).replace(microsecond=0) - dt.timedelta(seconds=5)
    campaign = load_campaign(write_demo_campaign(CAMPAIGN_FILE, tmp_path / "campaigns", start, step_seconds=600))
    ctx = CampaignContext(campaign, store, smtp_settings)
    demo = build_demo(campaign)
    load_demo(ctx, demo)
    return ctx, demo


def opening_registrations(demo) -> list:
    """The registrations that go up at opening and that the organizer approves."""
    return [r for r in demo.registrations if not r.flags]


def expected_approvals(ctx, demo) -> set[str]:
    """Team names whose agreements the stand-in organizer approves at opening."""
    return {r.team_name for r in opening_registrations(demo)
            if any(ctx.campaign.task(t).requires_agreement for t in r.document.get("tasks", []))}


def test_participants_get_through_an_api_that_fails_every_third_request(live_ctx):
    ctx, demo = live_ctx
    lines: list[str] = []
    with FlakyAirflowApi(fail_every=3, lose_answer_every=4) as server:
        participants = Participants(ctx, demo, lines.append)
        organizer = Organizer(ctx, demo, AirflowApi(server.url, "admin", "pw", **FAST), lines.append, poll_seconds=0.2)
        participants._register(lambda flags: not flags & {LATE, AFTER_DEV_RELEASE})
        intake(ctx)  # what the scheduler's intake DAG does meanwhile
        organizer.approve_when_registered(opening_registrations(demo), timeout=30)
        participants._upload_runs(late=False)

    dag_id = f"{ctx.campaign.id}_agreement_approval"
    approved = {conf["team_id"] for (dag, _), conf in server.dag_runs.items() if dag == dag_id}
    ids = team_ids(ctx)
    assert approved == {ids[name] for name in expected_approvals(ctx, demo)}, "every approval reached the API"
    assert len(server.dag_runs) == len(approved), "no approval triggered twice"
    assert server.statuses[500] >= 3 and server.statuses[409] >= 1, f"the server did misbehave: {server.statuses}"

    uploaded = ctx.store.list_keys(f"{ctx.campaign.id}/submissions/")
    expected_runs = [run for runs in demo.runs.values() for run in runs if not run.late and run.team in ids]
    assert expected_runs and len(uploaded) == len({(run.task, run.team, run.run_name) for run in expected_runs})
    assert any(line.startswith(f"participants: {len(expected_runs)} run(s) uploaded") for line in lines), lines


def test_an_api_that_keeps_failing_stops_the_organizer_with_a_clear_message(live_ctx):
    ctx, demo = live_ctx
    with FlakyAirflowApi(always_fail=True) as server:
        organizer = Organizer(ctx, demo, AirflowApi(server.url, "admin", "pw", attempts=3, backoff=(0.05, 0.1)), lambda line: None, poll_seconds=0.2)
        Participants(ctx, demo, lambda line: None)._register(lambda flags: not flags & {LATE, AFTER_DEV_RELEASE})
        intake(ctx)
        started = time.monotonic()
        with pytest.raises(StandInError) as raised:
            organizer.approve_when_registered(opening_registrations(demo), timeout=30)
    assert time.monotonic() - started < 10, "bounded: a few tries, then the error"
    message = str(raised.value)
    assert "still failing after 3 tries" in message and "HTTP 500" in message and "database is locked" in message, message
    assert server.statuses[500] == 3


def test_teams_that_intake_never_records_stop_the_organizer_by_name(live_ctx):
    ctx, demo = live_ctx
    with FlakyAirflowApi() as server:
        organizer = Organizer(ctx, demo, AirflowApi(server.url, "admin", "pw", **FAST), lambda line: None, poll_seconds=0.1)
        Participants(ctx, demo, lambda line: None)._register(lambda flags: not flags & {LATE, AFTER_DEV_RELEASE})
        # no intake runs: the teams never appear
        with pytest.raises(StandInError) as raised:
            organizer.approve_when_registered(opening_registrations(demo), timeout=0.5)
    assert "intake has not recorded" in str(raised.value)
    assert sorted(expected_approvals(ctx, demo))[0] in str(raised.value)


def test_runs_with_no_registered_team_stop_the_participants_instead_of_uploading_nothing(live_ctx):
    ctx, demo = live_ctx
    participants = Participants(ctx, demo, lambda line: None)
    with pytest.raises(StandInError, match="no team with runs to upload is registered"):
        participants._upload_runs(late=False)
    assert ctx.store.list_keys(f"{ctx.campaign.id}/submissions/") == []


def test_the_watcher_rides_out_failures_and_gives_up_on_a_dead_api():
    lines: list[str] = []
    stop = threading.Event()
    with FlakyAirflowApi(fail_every=2) as server:
        server.dag_runs[("imageclef2025_registration", "scheduled__1")] = {}
        watcher = threading.Thread(target=watch_dag_runs, args=(AirflowApi(server.url, "admin", "pw", **FAST), "imageclef2025", lines.append, stop, 0.05))
        watcher.start()
        deadline = time.monotonic() + 10
        while not lines and time.monotonic() < deadline:
            time.sleep(0.05)
        stop.set()
        watcher.join(timeout=10)
    assert lines and "imageclef2025_registration" in lines[0]

    with FlakyAirflowApi(always_fail=True) as server:
        with pytest.raises(StandInError, match="has not answered for"):
            watch_dag_runs(AirflowApi(server.url, "admin", "pw", attempts=2, backoff=(0.01, 0.02)), "imageclef2025", lines.append,
                           threading.Event(), poll_seconds=0.05, patience_seconds=0.5)


def test_the_organizer_approves_the_core_teams_and_the_one_after_the_dev_release_only(live_ctx):
    ctx, demo = live_ctx
    chosen = Organizer(ctx, demo, AirflowApi("http://127.0.0.1:9", "admin", "pw")).to_approve()
    assert {r.team_name for r in chosen} == {r.team_name for r in demo.registrations if not r.flags or r.flags == {AFTER_DEV_RELEASE}}
    assert all(not r.flags & {LATE} for r in chosen)


def test_the_organizer_leaves_the_last_teams_to_the_ui_and_waits_for_no_team_without_a_task(live_ctx, tmp_path):
    from devtools.demo_stack import small_campaign

    ctx, demo = live_ctx
    api = AirflowApi("http://127.0.0.1:9", "admin", "pw")
    everyone = Organizer(ctx, demo, api).to_approve()
    leaving = Organizer(ctx, demo, api, leave=1)
    assert leaving.to_approve() == everyone[:-1] and leaving.left_to_ui() == everyone[-1:]
    assert Organizer(ctx, demo, api).left_to_ui() == []

    one_task = load_campaign(small_campaign(tmp_path / "one", ("gans-attribution",)))
    small = build_demo(one_task)
    idle = [r.team_name for r in small.registrations if not r.document.get("tasks")]
    assert idle, "in a one-task campaign some core teams take no task"
    chosen = {r.team_name for r in Organizer(CampaignContext(one_task, ctx.store, ctx.smtp), small, api).to_approve()}
    assert chosen and not chosen & set(idle), "intake never records a registration without tasks: the organizer must not wait for it"


def test_participants_follow_the_calendars_spacing(tmp_path, live_ctx):
    ctx, demo = live_ctx
    assert Participants(ctx, demo).step == dt.timedelta(seconds=600)
    start = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    fast = load_campaign(write_demo_campaign(CAMPAIGN_FILE, tmp_path / "fast", start, step_seconds=15))
    assert Participants(CampaignContext(fast, ctx.store, ctx.smtp), demo).step == dt.timedelta(seconds=15)


def test_participants_wait_for_intake_before_uploading_runs_but_not_past_their_limit(live_ctx):
    ctx, demo = live_ctx
    one_task = dataclasses.replace(demo, runs={"multimodal-reasoning": demo.runs["multimodal-reasoning"]})
    lines: list[str] = []
    participants = Participants(ctx, one_task, lines.append)
    participants._register(lambda flags: LATE not in flags)
    recorded_at: list[float] = []
    late_intake = threading.Timer(2.0, lambda: (intake(ctx), recorded_at.append(time.monotonic())))  # the scheduler's intake, a little late
    late_intake.start()
    started = time.monotonic()
    participants._upload_runs(late=False, teams_until=dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=120))
    late_intake.join()
    assert time.monotonic() - started < 100, "it went on as soon as the teams were recorded, not at the limit"
    uploaded = ctx.store.list_objects(f"{ctx.campaign.id}/submissions/")
    assert uploaded and recorded_at, "the runs went up once intake had recorded the teams"
    assert not any("stay home" in line for line in lines), lines

    strangers = dataclasses.replace(one_task, runs={task: [dataclasses.replace(run, team="Nobody Lab") for run in runs] for task, runs in one_task.runs.items()})
    started = time.monotonic()
    with pytest.raises(StandInError, match="no team with runs to upload is registered"):
        Participants(ctx, strangers, lines.append)._upload_runs(
            late=False, teams_until=dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=1))
    assert time.monotonic() - started < 10, "bounded by teams_until"

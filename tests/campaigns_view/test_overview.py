"""What each panel of the organizers' Campaigns page shows for a given store state (the view model).

The state is built through the domain code over the real moto S3 server and the SMTP recorder:
registrations by the real intake, decisions by ``decide_agreement``, runs uploaded then collected
and scored, a refused address by an SMTP server that answers 550 for it.
"""
from __future__ import annotations

import datetime as dt

import pytest

from include.campaign.collection import collect
from include.campaign.overview import DagRunInfo, campaign_overview, campaign_summary, timeline
from include.campaign.registration import decide_agreement

from tests.campaigns_view.view_fixtures import (
    GOLD, context, make_campaign, register, reject_one, run_file, score, stage_gold, upload,
)

UTC = dt.timezone.utc


@pytest.fixture
def made_at():
    return dt.datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def ctx(store, smtp_settings, mailbox, made_at):
    return context(store, smtp_settings, make_campaign(made_at))


def test_timeline_states_follow_the_dag_runs_and_the_clock(ctx, made_at):
    campaign = ctx.campaign
    opens = campaign.milestone_time("registration_opens").astimezone(UTC)
    dev = campaign.milestone_time("dev_data_release").astimezone(UTC)
    runs = [
        DagRunInfo("viewlab_registration", "scheduled__open", opens, "success"),
        DagRunInfo("viewlab_data_release", "scheduled__dev", dev, "failed"),
        DagRunInfo("other_registration", "scheduled__x", opens, "success"),  # another campaign's run is ignored
    ]
    rows = timeline(ctx, runs)
    by_name = {}
    for row in rows:
        by_name.setdefault(row["milestone"], row)
    assert by_name["registration_opens"]["state"] == "done"
    assert by_name["registration_opens"]["run_id"] == "scheduled__open"
    assert by_name["dev_data_release"]["state"] == "failed"
    assert by_name["test_data_release"]["state"] == "not run"  # past, and no DAG run served it
    # beta's deadline passed an hour ago without a run; alpha's is the next moment
    beta_deadline = [r for r in rows if r["milestone"] == "run_deadline" and r["tasks"] == ["beta"]][0]
    assert beta_deadline["state"] == "not run"
    upcoming = [r for r in rows if r["state"] in ("next", "later")]
    assert upcoming[0]["state"] == "next" and upcoming[0]["milestone"] == "registration_closes" and upcoming[0]["tasks"] == ["alpha"]
    assert all(r["state"] == "later" for r in upcoming[1:])
    assert [r["at_utc"] for r in rows] == sorted(r["at_utc"] for r in rows)
    # dates in the campaign's zone and in UTC, reminders and conference dates included
    assert by_name["registration_opens"]["at_campaign"].endswith(("CET", "CEST"))
    assert any(r["label"].startswith("reminder: working-notes deadline") and r["dag_id"] == "viewlab_working_notes" for r in rows)
    assert by_name["conference_start"]["dag_id"] is None and by_name["conference_start"]["state"] == "later"
    assert campaign_summary(ctx)["next"]["label"] == "registration closes"


def test_registrations_panel_counts_teams_lists_waiting_agreements_and_rejections(ctx):
    first = register(ctx, "Team One", "one@example.org", ["alpha"])
    second = register(ctx, "Team Two", "two@example.org", ["alpha"])
    register(ctx, "Team Three", "three@example.org", ["alpha"])
    decide_agreement(ctx, first, "alpha", True, "olga")
    decide_agreement(ctx, second, "alpha", False, "olga", "unsigned page 2")
    reject_one(ctx)

    panel = campaign_overview(ctx)["registrations"]
    assert panel["teams"] == 3
    alpha = [t for t in panel["per_task"] if t["task"] == "alpha"][0]
    assert (alpha["teams"], alpha["approved"], alpha["refused"], alpha["pending"]) == (3, 1, 1, 1)
    beta = [t for t in panel["per_task"] if t["task"] == "beta"][0]
    assert beta["teams"] == 0 and not beta["requires_agreement"]
    assert [(p["team_name"], p["task"]) for p in panel["pending"]] == [("Team Three", "alpha")]
    assert panel["pending"][0]["agreement"].endswith("three-alpha.pdf")
    assert panel["rejected_total"] == 1
    assert panel["rejected"][0]["reasons"] and panel["rejected"][0]["document"].endswith("nowhere.json")


def test_submission_grid_before_and_after_the_deadline(store, smtp_settings, mailbox, made_at):
    campaign = make_campaign(made_at)
    ctx = context(store, smtp_settings, campaign)
    one = register(ctx, "Team One", "one@example.org", ["alpha"])
    two = register(ctx, "Team Two", "two@example.org", ["alpha"])
    decide_agreement(ctx, one, "alpha", True, "olga")
    decide_agreement(ctx, two, "alpha", True, "olga")
    upload(ctx, "alpha", one, "run-good", run_file(GOLD))
    upload(ctx, "alpha", one, "run-bad", run_file({"1": 0, "2": "maybe"}))
    upload(ctx, "alpha", two, "run-1", run_file({**GOLD, "1": 1}))
    upload(ctx, "alpha", two, "run-2", run_file(GOLD))
    upload(ctx, "alpha", two, "run-3", run_file(GOLD))  # over the limit of 2: the oldest is dropped
    upload(ctx, "beta", one, "run-late", run_file(GOLD))  # beta's deadline passed an hour ago

    before = {g["task"]: g for g in campaign_overview(ctx)["submissions"]}
    assert before["alpha"]["source"].startswith("uploads so far")
    assert {cell["state"] for cell in before["alpha"]["cells"].values()} == {"received"}
    assert before["alpha"]["counts"] == {"received": 5}

    after_deadline = context(store, smtp_settings, campaign, clock=campaign.milestone_time("run_deadline") + dt.timedelta(seconds=1))
    stage_gold(after_deadline, "alpha")
    collect(after_deadline, "alpha")
    collect(after_deadline, "beta")
    score(after_deadline, "alpha")
    grids = {g["task"]: g for g in campaign_overview(after_deadline)["submissions"]}
    cells = grids["alpha"]["cells"]
    assert grids["alpha"]["source"] == "collection at the deadline"
    assert cells[f"{one}/run-good"]["state"] == "valid"
    assert cells[f"{one}/run-bad"]["state"] == "invalid"
    assert " line 2: " in cells[f"{one}/run-bad"]["detail"] and '"maybe"' in cells[f"{one}/run-bad"]["detail"]  # the first problem, where
    assert cells[f"{two}/run-1"]["state"] == "over the limit"
    assert cells[f"{two}/run-2"]["state"] == "valid" and cells[f"{two}/run-3"]["state"] == "valid"
    assert grids["beta"]["cells"][f"{one}/run-late"]["state"] == "late"


def test_evaluations_panel_lists_versions_with_reason_who_and_diff_and_the_private_board(store, smtp_settings, mailbox, made_at):
    campaign = make_campaign(made_at)
    ctx = context(store, smtp_settings, campaign)
    one = register(ctx, "Team One", "one@example.org", ["alpha"])
    decide_agreement(ctx, one, "alpha", True, "olga")
    upload(ctx, "alpha", one, "run-a", run_file({**GOLD, "1": 1}))
    later = context(store, smtp_settings, campaign, clock=campaign.milestone_time("run_deadline") + dt.timedelta(seconds=1))
    stage_gold(later, "alpha")
    collect(later, "alpha")
    score(later, "alpha")
    later.store.put_bytes(later.layout.gold("alpha", "test") + "labels.csv", ("id,label\n" + "".join(f"{i},{v}\n" for i, v in {**GOLD, "1": 1}.items())).encode())
    score(later, "alpha", reason="gold label of image 1 fixed", by="olga")

    panel = {e["task"]: e for e in campaign_overview(later)["evaluations"]}["alpha"]
    assert [v["version"] for v in panel["versions"]] == ["v0002", "v0001"]
    newest = panel["versions"][0]
    assert (newest["reason"], newest["triggered_by"], newest["complete"]) == ("gold label of image 1 fixed", "olga", True)
    assert newest["changed"] == [f"{one}/run-a"]
    assert panel["latest"] == "v0002" and panel["published_version"] is None
    board = panel["leaderboard"]
    assert board["ranked_by"] == "gans_kappa" and board["metrics"] == ["gans_kappa", "gans_accuracy"]
    assert board["rows"][0]["team"] == one and board["rows"][0]["values"][1] == pytest.approx(1.0)


def test_mail_panel_counts_sent_messages_and_lists_undeliverable_addresses(store, smtp_settings, made_at):
    from dataclasses import replace

    from tests.faults.smtp_servers import BouncingRecorder, start

    recorder = BouncingRecorder()
    controller, port = start(recorder)
    try:
        ctx = context(store, replace(smtp_settings, port=port), make_campaign(made_at))
        register(ctx, "Team One", "one@example.org", ["alpha"])
        register(ctx, "Team Two", "two@example.org", ["alpha"])
        register(ctx, "Team Bounce", "bounce@example.org", ["alpha"])  # intake records the refused confirmation
        panel = campaign_overview(ctx)["mail"]
    finally:
        controller.stop()
    assert recorder.refused == ["bounce@example.org"]
    confirmations = [p for p in panel["sent"] if p["purpose"] == "registration-confirmation"][0]
    assert confirmations["total"] == 2  # the refused one is not counted as sent
    assert panel["total"] == sum(p["total"] for p in panel["sent"])
    [refused] = panel["undeliverable"]
    assert (refused["recipient"], refused["status"], refused["purpose"]) == ("bounce@example.org", "undeliverable", "registration-confirmation")
    assert "550" in refused["reason"]

    # an organizer has it sent again by deleting its marker: the page stops listing it
    ctx.store.delete(refused["marker"])
    assert campaign_overview(ctx)["mail"]["undeliverable"] == []

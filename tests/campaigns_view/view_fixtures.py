"""A small campaign in the real moto S3 server, brought to a known state through the domain code itself.

Two tasks: ``alpha`` (GANs detection, signed agreement required, 2 runs a team, deadline a minute
after the campaign is made) and ``beta`` (no agreement, registration closed and deadline passed an
hour ago, so every upload to it is late). Registrations go through the real intake, decisions through ``decide_agreement``, runs
through the real collection and scoring, mail through the real SMTP recorder.
"""
from __future__ import annotations

import datetime as dt
import json

from include.campaign.config import Campaign
from include.campaign.context import CampaignContext

UTC = dt.timezone.utc
ORGANIZER = "chair@lab.example.org"
GOLD = {"1": 0, "2": 1, "3": 1, "4": 0, "5": 1, "6": 0}


def make_campaign(now: dt.datetime) -> Campaign:
    day = dt.timedelta(days=1)
    deadline = now + dt.timedelta(seconds=60)
    schedule = {
        "registration_opens": now - 5 * day, "dev_data_release": now - 4 * day, "test_data_release": now - 3 * day,
        "registration_closes": deadline - dt.timedelta(seconds=10), "run_deadline": deadline, "results_release": deadline + day,
        "working_notes_deadline": deadline + 10 * day, "notification": deadline + 20 * day, "camera_ready": deadline + 25 * day,
        "conference_start": deadline + 30 * day, "conference_end": deadline + 33 * day,
    }
    return Campaign.model_validate({
        "id": "viewlab", "name": "View Lab 2026", "lab": "a test lab", "timezone": "Europe/Zurich",
        "organizers": [{"name": "Chair", "email": ORGANIZER}], "contact_email": ORGANIZER, "schedule": schedule,
        "tasks": [
            {"id": "alpha", "title": "Alpha detection", "run_format": "gans-detection-csv", "metrics": ["gans_kappa", "gans_accuracy"],
             "runs_allowed": 2, "requires_agreement": True},
            {"id": "beta", "title": "Beta detection", "run_format": "gans-detection-csv", "metrics": ["gans_kappa"], "runs_allowed": 3,
             "schedule": {"registration_closes": now - dt.timedelta(hours=2), "run_deadline": now - dt.timedelta(hours=1)}},
        ],
    })


def context(store, smtp_settings, campaign: Campaign, clock: dt.datetime | None = None) -> CampaignContext:
    """The campaign on the test's bucket; ``clock`` fixes what the domain code takes for now."""
    return CampaignContext(campaign, store, smtp_settings, clock=(lambda: clock) if clock else (lambda: dt.datetime.now(UTC)))


def register(ctx: CampaignContext, team_name: str, email: str, tasks: list[str]) -> str:
    """Through the real intake; returns the team id."""
    from include.campaign.registration import intake

    agreements = {}
    for task in tasks:
        if ctx.campaign.task(task).requires_agreement:
            name = f"{email.split('@')[0]}-{task}.pdf"
            ctx.store.put_bytes(ctx.layout.agreements() + name, f"%PDF-1.4 agreement of {email} for {task}\n".encode(), content_type="application/pdf")
            agreements[task] = f"registrations/agreements/{name}"
    document = {"team_name": team_name, "affiliation": "University of Tests", "country": "ch", "contact_name": f"{team_name} Contact",
                "contact_email": email, "tasks": tasks, **({"agreements": agreements} if agreements else {})}
    from devtools.demo.submit import confirm_on_submission

    key, raw = ctx.layout.registrations_inbox() + f"{email.split('@')[0]}.json", json.dumps(document).encode()
    ctx.store.put_bytes(key, raw, content_type="application/json")
    confirm_on_submission(ctx, key, raw, email, "test: contact confirmed")  # proof of address (issue 14)
    outcome = intake(ctx)
    assert len(outcome["accepted"]) == 1, outcome
    return outcome["accepted"][0]["team_id"]


def reject_one(ctx: CampaignContext) -> None:
    """A registration for a task that does not exist: intake rejects it with a reason."""
    from include.campaign.registration import intake

    document = {"team_name": "Nowhere", "affiliation": "U", "country": "ch", "contact_name": "N", "contact_email": "nowhere@example.org", "tasks": ["gamma"]}
    ctx.store.put_bytes(ctx.layout.registrations_inbox() + "nowhere.json", json.dumps(document).encode(), content_type="application/json")
    outcome = intake(ctx)
    assert len(outcome["rejected"]) == 1, outcome


def run_file(labels: dict[str, object]) -> bytes:
    return "".join(f"{i},{v}\n" for i, v in labels.items()).encode()


def upload(ctx: CampaignContext, task: str, team: str, run: str, data: bytes) -> None:
    ctx.store.put_bytes(ctx.layout.submissions(task, team) + run, data)


def stage_gold(ctx: CampaignContext, task: str) -> None:
    ctx.store.put_bytes(ctx.layout.gold(task, "test") + "labels.csv", ("id,label\n" + "".join(f"{i},{v}\n" for i, v in GOLD.items())).encode())


def score(ctx: CampaignContext, task: str, reason: str = "runs collected at the deadline", by: str = "asset event") -> dict:
    """What the scoring DAG does: plan, allocate, score each run, finalize."""
    from include.campaign import evaluation

    items = evaluation.plan(ctx, task)
    version = evaluation.new_version(ctx, task, reason, by)
    summaries = [evaluation.score_one(ctx, task, version, item) for item in items]
    return evaluation.finalize(ctx, task, version, summaries, reason, by)

"""Shared pieces of the lifecycle tests: a two-task campaign dated around the present, and its inputs.

``alpha`` needs a signed user agreement and allows 2 runs; ``beta`` needs none and allows 3. The
campaign is built in memory (the model, not a file), so each test can move its dates.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import urllib.request

import pytest

from include.campaign.config import Campaign
from include.campaign.context import CampaignContext

UTC = dt.timezone.utc
ORGANIZER = "chair@lab.example.org"
ALPHA_ORGANIZER = "alpha-lead@lab.example.org"
ANNOUNCE_LIST = "announce@list.example.org"


def make_campaign(now: dt.datetime, timezone: str = "UTC", **overrides: dict[str, dt.datetime]) -> Campaign:
    """Registration open since yesterday, both releases done, deadline in two days; ``alpha={...}`` moves alpha's dates."""
    day = dt.timedelta(days=1)
    schedule = {
        "registration_opens": now - 2 * day,
        "dev_data_release": now - day,
        "test_data_release": now - day / 2,
        "registration_closes": now + day,
        "run_deadline": now + 2 * day,
        "results_release": now + 3 * day,
        "working_notes_deadline": now + 10 * day,
        "notification": now + 20 * day,
        "camera_ready": now + 25 * day,
        "conference_start": now + 30 * day,
        "conference_end": now + 33 * day,
    }
    return Campaign.model_validate(
        {
            "id": "lifecycle",
            "name": "Lifecycle Lab 2025",
            "lab": "a test lab",
            "timezone": timezone,
            "organizers": [{"name": "Chair", "email": ORGANIZER}],
            "contact_email": ORGANIZER,
            "announce_to": [ANNOUNCE_LIST],
            "schedule": schedule,
            "links": {"download_expiry_hours": 2, "upload_expiry_hours": 3},
            "tasks": [
                {"id": "alpha", "title": "Alpha detection", "run_format": "gans-detection-csv", "metrics": ["gans_kappa"], "runs_allowed": 2,
                 "requires_agreement": True, "organizers": [{"name": "Alpha Lead", "email": ALPHA_ORGANIZER}], "schedule": overrides.get("alpha", {})},
                {"id": "beta", "title": "Beta captions", "run_format": "topicto-json", "metrics": ["picto_er"], "runs_allowed": 3, "schedule": overrides.get("beta", {})},
            ],
        }
    )


def now_utc() -> dt.datetime:
    return dt.datetime.now(UTC)


@pytest.fixture
def ctx(store, smtp_settings) -> CampaignContext:
    return CampaignContext(make_campaign(now_utc()), store, smtp_settings)


def context_with(ctx: CampaignContext, campaign: Campaign, smtp=None) -> CampaignContext:
    """The same store with other dates (or another SMTP server)."""
    return CampaignContext(campaign, ctx.store, smtp or ctx.smtp, ctx.clock)


def registration(team_name: str, email: str, tasks: list[str], agreements: dict[str, str] | None = None, **extra) -> dict:
    document = {"team_name": team_name, "affiliation": "University of Tests", "country": "fr", "contact_name": f"{team_name} Contact", "contact_email": email, "tasks": tasks}
    if agreements:
        document["agreements"] = agreements
    document.update(extra)
    return document


def submit(ctx: CampaignContext, name: str, document: dict | bytes, confirmed: bool = True) -> str:
    """Put a registration document into the inbox as a registration form would; unless told
    otherwise, its contact has already opened the confirmation link (see confirmation.py)."""
    from devtools.demo.submit import confirm_on_submission

    key = ctx.layout.registrations_inbox() + name
    data = document if isinstance(document, bytes) else json.dumps(document, indent=2).encode()
    ctx.store.put_bytes(key, data, content_type="application/json")
    if confirmed and isinstance(document, dict) and isinstance(document.get("contact_email"), str):
        confirm_on_submission(ctx, key, data, document["contact_email"].strip(), "test: contact confirmed")
    return key


def upload_agreement(ctx: CampaignContext, name: str) -> str:
    """A signed agreement PDF; returns the key a registration document gives for it."""
    ctx.store.put_bytes(ctx.layout.agreements() + name, b"%PDF-1.4 signed agreement\n", content_type="application/pdf")
    return f"registrations/agreements/{name}"


def register(ctx: CampaignContext, team_name: str, email: str, tasks: list[str]) -> str:
    """Register a team through the real intake and return its team id."""
    from include.campaign.registration import intake

    agreements = {task: upload_agreement(ctx, f"{email.split('@')[0]}-{task}.pdf") for task in tasks if ctx.campaign.task(task).requires_agreement}
    submit(ctx, f"{email.split('@')[0]}-{len(team_name)}.json", registration(team_name, email, tasks, agreements))
    outcome = intake(ctx)
    assert len(outcome["accepted"]) == 1, outcome
    return outcome["accepted"][0]["team_id"]


def stage(ctx: CampaignContext, task: str, split: str, files: dict[str, bytes], ground_truth: tuple[str, ...] = (), manifest_overrides: dict | None = None) -> None:
    """Stage files with a manifest of their sha256 sums (``manifest_overrides`` replaces entries by path)."""
    prefix = ctx.layout.staging(task, split)
    entries = []
    for path, data in files.items():
        ctx.store.put_bytes(prefix + path, data)
        entries.append({"path": path, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data), "ground_truth": path in ground_truth})
    for entry in entries:
        entry.update((manifest_overrides or {}).get(entry["path"], {}))
    ctx.store.put_json(ctx.layout.staging_manifest(task, split), {"files": entries})


def urls_in(body: str) -> list[str]:
    return re.findall(r"^(https?://\S+)\s*$", body, flags=re.MULTILINE)


def download(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as answer:
        return answer.read()


def upload(url: str, data: bytes) -> None:
    """What ``curl -T FILE URL`` does: a PUT of the raw bytes."""
    request = urllib.request.Request(url, data=data, method="PUT", headers={"Content-Type": "application/octet-stream"})
    with urllib.request.urlopen(request, timeout=10):
        pass


def bucket_state(store) -> list[tuple[str, str | None]]:
    """Every version of every object: a re-run that changes nothing leaves this list as it was."""
    return [(v.key, v.version_id) for v in store.list_versions("")]

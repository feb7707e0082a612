"""The portal's test harness: a campaign file dated around the present, the app over the moto S3
server and aiosmtpd (``tests/conftest.py``), and helpers that act as a participant would.

``alpha`` needs a signed agreement (2 runs), ``beta`` needs none (3 runs, at most 400 bytes each);
both use the GANs detection format (``id,label`` CSV), so a run is easy to write by hand.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import html
import json
import re
import secrets
import urllib.request
from pathlib import Path

import pytest
import yaml

from include.campaign.config import load_campaign
from include.campaign.context import CampaignContext

UTC = dt.timezone.utc
ORGANIZER = "chair@portal-lab.example.org"
SECRET = "test-secret-" + "x" * 40
PDF = b"%PDF-1.4\n% a signed agreement\n"
TEST_IDS = [f"img-{n:03d}" for n in range(1, 6)]


def campaign_document(now: dt.datetime, **schedule_changes) -> dict:
    day = dt.timedelta(days=1)
    schedule = {
        "registration_opens": now - 2 * day, "dev_data_release": now - day, "test_data_release": now - day / 2,
        "registration_closes": now + day, "run_deadline": now + 2 * day, "results_release": now + 3 * day,
        "working_notes_deadline": now + 10 * day, "notification": now + 20 * day, "camera_ready": now + 25 * day,
        "conference_start": now + 30 * day, "conference_end": now + 33 * day,
    }
    schedule.update(schedule_changes)
    return {
        "id": "portallab", "name": "Portal Lab 2026", "lab": "a test lab", "timezone": "Europe/Madrid",
        "organizers": [{"name": "Chair", "email": ORGANIZER}], "contact_email": ORGANIZER,
        "schedule": {name: value.isoformat() for name, value in schedule.items()},
        "tasks": [
            {"id": "alpha", "title": "Alpha detection", "run_format": "gans-detection-csv", "metrics": ["gans_kappa"], "runs_allowed": 2, "requires_agreement": True},
            {"id": "beta", "title": "Beta detection", "run_format": "gans-detection-csv", "metrics": ["gans_kappa"], "runs_allowed": 3, "run_limits": {"max_bytes": 400}},
        ],
    }


@pytest.fixture
def campaign_file(tmp_path) -> Path:
    folder = tmp_path / "campaigns"
    folder.mkdir()
    path = folder / "portallab.yaml"
    path.write_text(yaml.safe_dump(campaign_document(dt.datetime.now(UTC).replace(microsecond=0))), encoding="utf-8")
    return path


@pytest.fixture
def portal_env(monkeypatch):
    monkeypatch.setenv("CLEF_PORTAL_SECRET", SECRET)
    monkeypatch.setenv("CLEF_PORTAL_URL", "http://testserver")


@pytest.fixture
def ctx(campaign_file, store, smtp_settings, portal_env) -> CampaignContext:
    return CampaignContext(load_campaign(campaign_file), store, smtp_settings)


@pytest.fixture
def settings(campaign_file, s3_settings, smtp_settings, portal_env):
    from include.portal.settings import PortalSettings

    return PortalSettings(campaigns_dir=campaign_file.parent, s3=s3_settings, smtp=smtp_settings, secret=SECRET)


@pytest.fixture
def client(settings, store):
    from fastapi.testclient import TestClient

    from include.portal.app import create_app

    with TestClient(create_app(settings)) as test_client:
        yield test_client


# --- acting as a participant ------------------------------------------------------------------------


def form_token(page: str) -> str:
    match = re.search(r'name="csrf_token" value="([0-9a-f]+)"', page)
    assert match, "no CSRF field on the page"
    return match.group(1)


def registration_fields(team: str = "Team Alpha", email: str = "lead@alpha.example.org", tasks=("alpha", "beta")) -> dict:
    return {"team_name": team, "affiliation": "University of Tests", "country": "FR", "contact_name": f"{team} Lead", "contact_email": email, "tasks": list(tasks)}


def post_registration(client, fields: dict, files: dict | None = None, token: str | None = None):
    page = client.get("/c/portallab/register")
    data = dict(fields)
    data["csrf_token"] = form_token(page.text) if token is None else token
    multipart = [(name, (filename, content, "application/pdf")) for name, (filename, content) in (files or {}).items()] or [("none", ("", b"", "application/octet-stream"))]
    return client.post("/c/portallab/register", data=data, files=multipart)


def links_in(body: str) -> list[str]:
    return re.findall(r"https?://\S+", body)


def link_to(mailbox, recipient: str, page: str) -> str:
    for message in reversed(mailbox.messages):
        if recipient in message.recipients:
            for link in links_in(message.body):
                if f"/{page}?token=" in link:
                    return link
    raise AssertionError(f"no {page} link mailed to {recipient}: {[m.subject for m in mailbox.messages]}")


def confirm_by_link(client, link: str):
    path = link.replace("http://testserver", "")
    page = client.get(path)
    assert page.status_code == 200, page.text
    token = re.search(r'name="token" value="([^"]+)"', page.text).group(1)
    return client.post("/c/portallab/confirm", data={"csrf_token": form_token(page.text), "token": html.unescape(token)})


def register_team(client, ctx, mailbox, team="Team Alpha", email="lead@alpha.example.org", tasks=("alpha", "beta")) -> str:
    """Form, confirmation link, intake: returns the team id."""
    from include.campaign.registration import intake

    files = {"agreement_alpha": ("signed.pdf", PDF)} if "alpha" in tasks else None
    answer = post_registration(client, registration_fields(team, email, tasks), files)
    assert answer.status_code == 200, answer.text
    assert confirm_by_link(client, link_to(mailbox, email, "confirm")).status_code == 200
    outcome = intake(ctx)
    assert len(outcome["accepted"]) == 1, outcome
    return outcome["accepted"][0]["team_id"]


def sign_in(client, mailbox, email: str) -> None:
    link = link_to(mailbox, email, "sign-in")
    answer = client.get(link.replace("http://testserver", ""), follow_redirects=False)
    assert answer.status_code == 303, answer.text


def stage_and_release(ctx, task: str, split: str = "test", files: dict[str, bytes] | None = None) -> dict:
    from include.campaign.release import release

    files = files or {"images/list.txt": "\n".join(TEST_IDS).encode()}
    entries = []
    for path, data in files.items():
        ctx.store.put_bytes(ctx.layout.staging(task, split) + path, data)
        entries.append({"path": path, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)})
    ctx.store.put_bytes(ctx.layout.staging_manifest(task, split), json.dumps({"files": entries}).encode())
    labels = "id,label\n" + "".join(f"{image},{n % 2}\n" for n, image in enumerate(TEST_IDS))
    ctx.store.put_bytes(ctx.layout.gold(task, "test") + "labels.csv", labels.encode())
    return release(ctx, task, split)


def valid_run() -> bytes:
    return "".join(f"{image},{n % 2}\n" for n, image in enumerate(TEST_IDS)).encode()


def upload_forms(page: str) -> dict[str, tuple[str, dict[str, str]]]:
    """slot -> (action, hidden fields) of every upload form on the team page."""
    found = {}
    for match in re.finditer(r'<form class="upload" method="post" action="([^"]+)"[^>]*>(.*?)</form>', page, re.S):
        fields = {html.unescape(n): html.unescape(v) for n, v in re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', match.group(2))}
        slot = fields["key"].rsplit("/", 1)[1]
        found[slot] = (html.unescape(match.group(1)), fields)
    return found


def post_to_store(action: str, fields: dict[str, str], data: bytes, filename: str = "run.csv"):
    import httpx

    return httpx.post(action, data=fields, files={"file": (filename, data, "text/csv")}, follow_redirects=False, timeout=10)


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as answer:  # noqa: S310 - loopback test server
        return answer.read()


def bucket_state(store) -> list[tuple[str, str | None]]:
    return [(v.key, v.version_id) for v in store.list_versions(f"")]


def new_secret() -> str:
    return secrets.token_hex(24)

"""Fixtures of the fault tests, over the real moto S3 server.

- S3 faults: a misbehaving S3 endpoint in front of the moto server, and a store that reaches the
  bucket through it with short bounds (1 s to connect, 1 s per read, 2 attempts).
- SMTP faults: a scored task ready for results day; the SMTP side is chosen per test: the session's
  aiosmtpd recorder, or one of the misbehaving servers of :mod:`tests.faults.smtp_servers`.
"""
from __future__ import annotations

import dataclasses

import pytest

from include.campaign.config import parse_campaign
from include.campaign.context import CampaignContext
from include.campaign.mail import SmtpSettings
from include.campaign.store import ObjectStore, S3Settings
from tests.faults.s3_faults import FaultyS3
from tests.lifecycle.conftest import ctx  # noqa: F401  (fixture: the lifecycle campaign over the direct store)
from tests.scoring.scoring_fixtures import CAMPAIGN_YAML, GANS_GOLD, collect, gans_gold, gans_run, register, score_task, stage_gold

BOUNDS = {"connect_timeout": 1.0, "read_timeout": 1.0, "max_attempts": 2}
# One call gives up after 2 attempts of at most 1 s each plus botocore's backoff (< 1 s); a stage
# stops at its first failing call. The bound below leaves room for a loaded 2-core machine.
STAGE_BOUND_SECONDS = 20


@pytest.fixture(scope="session")
def faulty_s3(s3_endpoint):
    proxy = FaultyS3(s3_endpoint, hang_seconds=15).start()
    yield proxy
    proxy.stop()


@pytest.fixture
def faults(faulty_s3):
    faulty_s3.heal()
    yield faulty_s3
    faulty_s3.heal()


@pytest.fixture
def faulty_store(faults, s3_settings):
    """The test's bucket, reached through the misbehaving endpoint."""
    settings = S3Settings(bucket=s3_settings.bucket, endpoint_url=faults.endpoint, access_key_id=s3_settings.access_key_id,
                          secret_access_key=s3_settings.secret_access_key, **BOUNDS)
    return ObjectStore(settings)


@pytest.fixture
def faulty_ctx(ctx, faulty_store) -> CampaignContext:  # noqa: F811
    """The lifecycle campaign, its store calls going through the misbehaving endpoint."""
    return CampaignContext(ctx.campaign, faulty_store, ctx.smtp, ctx.clock)


TASK = "gans-detection"
ORGANIZER = "olga@example.org"
EMAILS = {"team-a": "alice@a.example", "team-b": "bounce@b.example", "team-c": "carol@c.example", "team-d": "dave@d.example"}
RUNS = {
    ("team-a", "alpha"): gans_run(GANS_GOLD),
    ("team-b", "bravo"): gans_run({**GANS_GOLD, "7": 0, "8": 1}),
    ("team-c", "charlie"): gans_run({**GANS_GOLD, "5": 0, "6": 1}),
    ("team-d", "delta"): gans_run({**GANS_GOLD, "1": 1}),
}


def settings(port: int, **overrides) -> SmtpSettings:
    """Short waits, so that a fault costs a test about a second."""
    values = {"host": "127.0.0.1", "port": port, "sender": "lab@clef.example.org", "timeout": 1, "connect_timeout": 1,
              "attempts": 3, "backoff_seconds": 0.05}
    values.update(overrides)
    known = {f.name for f in dataclasses.fields(SmtpSettings)}  # so the regression tests also run against older code
    return SmtpSettings(**{name: value for name, value in values.items() if name in known})


def with_smtp(ctx: CampaignContext, smtp: SmtpSettings) -> CampaignContext:
    return CampaignContext(ctx.campaign, ctx.store, smtp, ctx.clock)


@pytest.fixture
def scored(store, smtp_settings) -> CampaignContext:
    """Four teams with one run each, scored (v0001), not published; team-b's address bounces on a bouncing server."""
    ctx = CampaignContext(parse_campaign(CAMPAIGN_YAML, "democlef.yaml"), store, smtp_settings)
    stage_gold(ctx, TASK, gans_gold())
    collect(ctx, TASK, RUNS)
    for team, email in EMAILS.items():
        register(ctx, team, email)
    score_task(ctx, TASK)
    return ctx


def outbox_states(ctx: CampaignContext, purpose: str) -> dict[str, str]:
    """recipient → status of every outbox marker of a purpose."""
    states = {}
    for key in ctx.outbox.sent_markers(purpose):
        marker = ctx.store.get_json(key)
        states[marker["recipient"]] = marker.get("status", "sent")
    return states

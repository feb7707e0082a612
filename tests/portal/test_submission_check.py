"""The submission check on its own: refusals with a reason, late uploads, an SMTP outage, one e-mail per version."""
from __future__ import annotations

import dataclasses
import datetime as dt
import json

import pytest
import yaml

from include.campaign import submission_check
from include.campaign.config import parse_campaign
from devtools.demo.submit import confirm_on_submission
from include.campaign.mail import SmtpSettings
from include.campaign.registration import intake
from include.campaign.teams import DeliveryError

from tests.portal.conftest import campaign_document, registration_fields, stage_and_release, valid_run

EMAIL = "lead@alpha.example.org"


@pytest.fixture
def team(ctx, store):
    key, raw = ctx.layout.registrations_inbox() + "beta.json", json.dumps(registration_fields(tasks=["beta"])).encode()
    store.put_bytes(key, raw)
    confirm_on_submission(ctx, key, raw, EMAIL, "test")
    team_id = intake(ctx)["accepted"][0]["team_id"]
    stage_and_release(ctx, "beta", "test")
    return team_id


def _receipts(ctx, team_id):
    return {r["run"]: r for r in submission_check.team_receipts(ctx, "beta", team_id)}


def test_uploads_that_cannot_count_get_a_receipt_saying_why(ctx, store, mailbox, team):
    store.put_bytes(ctx.layout.submissions("beta", team) + "run-09", valid_run())  # beta has 3 slots
    store.put_bytes(ctx.layout.submissions("beta", team) + "run-02", b"")
    store.put_bytes(ctx.layout.submissions("beta", "nobody") + "run-01", valid_run())
    store.put_bytes(ctx.layout.submissions("beta") + "stray.csv", valid_run())
    report = submission_check.check(ctx, "beta")
    receipts = _receipts(ctx, team)
    assert "not a run slot of this task (slots: run-01 to run-03)" in receipts["run-09"]["reason"]
    assert "the upload is empty" in receipts["run-02"]["reason"]
    assert "no registered team 'nobody'" in submission_check.team_receipts(ctx, "beta", "nobody")[0]["reason"]
    assert report["ignored"] == [f"{ctx.layout.submissions('beta')}stray.csv: not of the form submissions/<task>/<team>/<run>"]
    assert sorted(m.subject for m in mailbox.messages if EMAIL in m.recipients and "REFUSED" in m.subject) == [
        "Portal Lab 2026: beta run-02 received, REFUSED", "Portal Lab 2026: beta run-09 received, REFUSED"]


def test_an_upload_after_the_deadline_is_received_but_late(ctx, store, mailbox, team, campaign_file):
    store.put_bytes(ctx.layout.submissions("beta", team) + "run-01", valid_run())
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    document = campaign_document(now, registration_closes=now - dt.timedelta(hours=2), run_deadline=now - dt.timedelta(hours=1))
    after_deadline = dataclasses.replace(ctx, campaign=parse_campaign(yaml.safe_dump(document)))
    submission_check.check(after_deadline, "beta")
    receipt = _receipts(ctx, team)["run-01"]
    assert receipt["status"] == "late" and "it does not count" in receipt["reason"] and len(receipt["sha256"]) == 64


def test_an_smtp_outage_keeps_the_receipt_and_sends_its_mail_once_later(ctx, store, mailbox, team):
    from devtools.devstack import free_port

    store.put_bytes(ctx.layout.submissions("beta", team) + "run-01", valid_run())
    down = dataclasses.replace(ctx, smtp=SmtpSettings(host="127.0.0.1", port=free_port(), timeout=1, attempts=1, backoff_seconds=0))
    with pytest.raises(DeliveryError):
        submission_check.check(down, "beta")
    assert _receipts(ctx, team)["run-01"]["status"] == "valid" and mailbox.messages == [m for m in mailbox.messages if "received" not in m.subject]
    assert submission_check.check(ctx, "beta")["checked"] == []  # the receipt stays; only the mail was missing
    assert submission_check.check(ctx, "beta")["mail"]["sent"] == 0
    assert [m.subject for m in mailbox.messages].count("Portal Lab 2026: beta run-01 received, valid") == 1


def test_each_new_version_of_a_slot_gets_its_own_receipt(ctx, store, mailbox, team):
    key = ctx.layout.submissions("beta", team) + "run-01"
    store.put_bytes(key, b"img-001,3\n")
    submission_check.check(ctx, "beta")
    store.put_bytes(key, valid_run())
    submission_check.check(ctx, "beta")
    statuses = [r["status"] for r in submission_check.team_receipts(ctx, "beta", team)]
    assert sorted(statuses) == ["invalid", "valid"]
    assert [m.subject for m in mailbox.messages if "run-01" in m.subject] == ["Portal Lab 2026: beta run-01 received, INVALID", "Portal Lab 2026: beta run-01 received, valid"]
